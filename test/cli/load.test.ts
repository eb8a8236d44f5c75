import { expect, test } from "bun:test";
import { LONG_ALLOW_FILE, loadConfig } from "../../src/cli/load.ts";

test("a long allow file turns the JIT's normal policy on, a short one does not", async () => {
  for (const [length, calls] of [
    [LONG_ALLOW_FILE, 1],
    [LONG_ALLOW_FILE - 20, 0],
  ] as const) {
    const line = "192.0.2.1\n";
    const text = line.repeat(Math.floor(length / line.length)) + "#".repeat(length % line.length);
    let normalJit = 0;
    const world = { env: {}, readFile: async () => text, normalJit: () => void normalJit++ };
    const flags = new Map([["allow-file", { kind: "value", name: "allow-file", from: "--allow-file", text: "/etc/allow.txt" }]]);
    await loadConfig(world, "render", flags as never).catch(() => undefined);
    expect({ length: text.length, normalJit }).toEqual({ length, normalJit: calls });
  }
});
