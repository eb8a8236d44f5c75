import { expect, test } from "bun:test";
import { backgroundExecEnv } from "../src/background-env.ts";

const cases: { name: string; env: Record<string, string | undefined>; expected: Record<string, string | undefined> }[] = [
  {
    name: "turns the optimising compiler off and slows mimalloc's hole purging, keeping the rest",
    env: { PATH: "/usr/bin", HOME: "/root" },
    expected: { PATH: "/usr/bin", HOME: "/root", BUN_JSC_useDFGJIT: "0", MIMALLOC_PURGE_HOLES_MIN_INTERVAL: "5000" },
  },
  {
    name: "an operator's own mimalloc setting wins",
    env: { MIMALLOC_PURGE_HOLES_MIN_INTERVAL: "100" },
    expected: { BUN_JSC_useDFGJIT: "0", MIMALLOC_PURGE_HOLES_MIN_INTERVAL: "100" },
  },
  {
    name: "the compiler is off in the program started again, whatever was set (the marker that it has started again)",
    env: { BUN_JSC_useDFGJIT: "1" },
    expected: { BUN_JSC_useDFGJIT: "0", MIMALLOC_PURGE_HOLES_MIN_INTERVAL: "5000" },
  },
];

for (const { name, env, expected } of cases) test(name, () => expect(backgroundExecEnv(env)).toEqual(expected));

test("leaves the environment it is given as it was", () => {
  const env = { PATH: "/usr/bin" };
  backgroundExecEnv(env);
  expect(env).toEqual({ PATH: "/usr/bin" });
});
