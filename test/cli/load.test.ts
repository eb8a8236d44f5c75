import { expect, test } from "bun:test";
import { LONG_ALLOW_FILE, loadConfig } from "../../src/cli/load.ts";

test("a long allow file turns the JIT's normal policy on, a short one does not", async () => {
  for (const [length, calls] of [
    [LONG_ALLOW_FILE, 1],
    [LONG_ALLOW_FILE - 20, 0],
  ] as const) {
    // One comment line: the length is what counts, and a comment costs the parse nothing.
    const text = "#".repeat(length);
    let normalJit = 0;
    const world = { env: {}, readFile: async () => text, normalJit: () => void normalJit++ };
    const flags = new Map([["allow-file", { kind: "value", name: "allow-file", from: "--allow-file", text: "/etc/allow.txt" }]]);
    await loadConfig(world, "render", flags as never).catch(() => undefined);
    expect({ length: text.length, normalJit }).toEqual({ length, normalJit: calls });
  }
});
