import type { Context } from "./context.ts";
import { withKernelLock } from "./locking.ts";

/** `remove`: delete what domainwall loaded, under the kernel lock (refused beside a running watch); succeeds when nothing is. */
export async function removeCommand({ world, log, backend }: Context): Promise<void> {
  const chosen = await backend();
  await withKernelLock(world, { command: "remove", besideWatch: "refuse" }, () => chosen.remove());
  log.success("removed domainwall's rules (if any were loaded)");
}
