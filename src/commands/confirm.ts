import { runtimeError } from "../errors.ts";
import { checkRunDir, pendingFile, type Context } from "./context.ts";

/**
 * Safe apply on a machine reached over SSH: after loading new rules, wait for a confirmation and
 * otherwise put the previous rules back. `domainwall confirm` (from another shell) removes the
 * pending file; a keypress on the applying terminal decides too.
 */
export type Outcome = "confirmed" | "reverted" | "timeout";

export interface ConfirmIo {
  readonly pendingExists: () => Promise<boolean>;
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => number;
  /** Settles with "keep" or "revert" when the operator decides on the terminal (or a signal asks to revert); may never settle. */
  readonly decision: Promise<"keep" | "revert">;
}

const POLL_MS = 100;

export async function waitForConfirmation(withinMs: number, io: ConfirmIo): Promise<Outcome> {
  const deadline = io.now() + withinMs;
  let decided: "keep" | "revert" | undefined;
  void io.decision.then((d) => (decided = d));
  while (io.now() < deadline) {
    if (decided === "keep") return "confirmed";
    if (decided === "revert") return "reverted";
    if (!(await io.pendingExists())) return "confirmed";
    await Promise.race([io.sleep(Math.min(POLL_MS, Math.max(0, deadline - io.now()))), io.decision]);
  }
  return decided === "keep" ? "confirmed" : "timeout";
}

/** What `apply --confirm-within` writes to the pending file: its PID, so a stale file can be told apart. */
export const pendingText = (pid: number) => `an apply is waiting for confirmation (pid ${pid})\n`;

/** The PID a pending file names; undefined when it names none. */
export function pendingPid(text: string): number | undefined {
  const pid = Number(/\(pid (\d{1,10})\)/.exec(text)?.[1]);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * The PID of the apply that waits for confirmation, or undefined when none does. A pending file
 * whose process has gone (an apply killed before its rollback) is stale: removed, with a warning.
 */
export async function livePending({ world, log }: Pick<Context, "world" | "log">): Promise<number | undefined> {
  const path = pendingFile(world.env);
  const text = await world.readFile(path);
  if (text === undefined) return undefined;
  const pid = pendingPid(text);
  if (pid !== undefined && world.processAlive(pid)) return pid;
  log.warn(
    `removing the stale ${path}: ${pid === undefined ? "it names no process" : `pid ${pid} is not running (killed before its rollback?)`}`,
  );
  await world.removeFile(path);
  return undefined;
}

/** `confirm`: the waiting apply's rules stay (its pending file goes); exit 1 when none waits. */
export async function confirmCommand(ctx: Context): Promise<void> {
  await checkRunDir(ctx.world);
  if ((await livePending(ctx)) === undefined || !(await ctx.world.removeFile(pendingFile(ctx.world.env))))
    throw runtimeError("no apply is waiting for confirmation");
  ctx.log.success("confirmed");
}
