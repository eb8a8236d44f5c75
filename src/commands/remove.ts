import type { Context } from "./context.ts";

/** `remove`: delete what domainwall loaded; succeeds when nothing is. */
export async function removeCommand({ log, backend }: Context): Promise<void> {
  await (await backend()).remove();
  log.success("removed domainwall's rules (if any were loaded)");
}
