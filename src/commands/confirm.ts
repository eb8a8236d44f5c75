import { runtimeError } from "../errors.ts";
import { pendingFile, type Context } from "./context.ts";

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

/**
 * The port of the SSH connection this command runs under (from `SSH_CONNECTION`: client address,
 * client port, server address, server port), or undefined outside SSH.
 */
export function sshServerPort(sshConnection: string | undefined): number | undefined {
  const port = Number(sshConnection?.trim().split(/\s+/)[3]);
  return Number.isInteger(port) && port > 0 && port <= 65535 ? port : undefined;
}

/** `confirm`: the waiting apply's rules stay (its pending file goes); exit 1 when none waits. */
export async function confirmCommand({ world, log }: Context): Promise<void> {
  if (!(await world.removeFile(pendingFile(world.env)))) throw runtimeError("no apply is waiting for confirmation");
  log.success("confirmed");
}
