// A Runtime for tests: records what the command asked of the process; never changes this one.
import type { Runtime } from "../../src/runtime.ts";

/** `calls` lists "normalJit" and "backgroundLoop" in order; the group switch is refused (a test process keeps its group). */
export function fakeRuntime(overrides: Partial<Runtime> = {}): Runtime & { readonly calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    normalJit: () => void calls.push("normalJit"),
    backgroundLoop: () => void calls.push("backgroundLoop"),
    switchGroup: () => ({ ok: false, reason: "not in unit tests" }),
    ...overrides,
  };
}
