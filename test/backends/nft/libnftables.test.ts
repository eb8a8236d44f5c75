// The in-process executor without the kernel; against the kernel (next to the nft binary) in
// test/e2e/libnftables.test.ts.
import { describe, expect, test } from "bun:test";
import { loadLibnftables } from "../../../src/backends/nft/libnftables.ts";

describe("libnftables executor without the kernel", () => {
  test("a script with a NUL character is refused: C would see only the part before it", async () => {
    const loaded = loadLibnftables();
    if (!loaded.ok) throw new Error(loaded.reason);
    await expect(loaded.executor.run("table inet domainwall\0delete table inet domainwall\n")).rejects.toThrow("contains a NUL character");
  });

  test("no run after close", async () => {
    const loaded = loadLibnftables();
    if (!loaded.ok) throw new Error(loaded.reason);
    await loaded.executor.close();
    await expect(loaded.executor.run("list tables\n")).rejects.toThrow("the executor is closed");
  });
});
