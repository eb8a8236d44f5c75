import { runtimeError } from "./errors.ts";

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The process seam: run a command with optional stdin and collect its output. Tests pass a fake. */
export type Run = (command: string, args: readonly string[], stdin?: string) => Promise<RunResult>;

/** The real `Run`: `Bun.spawn` with PATH lookup; a missing executable is an apply error (exit 1). */
export const runProcess: Run = async (command, args, stdin) => {
  const spawn = () =>
    Bun.spawn([command, ...args], {
      stdin: stdin === undefined ? "ignore" : new Blob([stdin]),
      stdout: "pipe",
      stderr: "pipe",
    });
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn();
  } catch (error) {
    throw runtimeError(`cannot run ${command}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
};
