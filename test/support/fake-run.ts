import type { Run, RunResult } from "../../src/run.ts";

export interface RunCall {
  readonly command: string;
  readonly args: readonly string[];
  readonly stdin?: string;
}

/**
 * A fake process runner: records every call and answers from a script. `respond` gets each call
 * and returns its result (default: success with empty output).
 */
export function fakeRun(respond: (call: RunCall) => Partial<RunResult> | Promise<Partial<RunResult>> = () => ({})) {
  const calls: RunCall[] = [];
  const run: Run = async (command, args, stdin) => {
    const call = { command, args: [...args], stdin };
    calls.push(call);
    return { code: 0, stdout: "", stderr: "", ...(await respond(call)) };
  };
  return { run, calls };
}

/**
 * `--backend auto` asks the kernel before anything else: a read (`list tables`), and only when that
 * fails, a checked probe transaction.
 */
export const isBackendProbe = (call: RunCall): boolean =>
  call.command === "nft" &&
  ((call.args.includes("--check") && call.stdin === "table inet domainwall_probe\n") || call.stdin === "list tables\n");
