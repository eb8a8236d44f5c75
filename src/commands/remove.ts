import type { Context } from "./context.ts";
import { withKernelLock } from "./locking.ts";

/**
 * `remove`: delete what domainwall loaded in every backend that works here (whatever --backend
 * says: a policy loaded by the other one must not survive a remove), under the kernel lock
 * (refused beside a running watch); succeeds when nothing is loaded.
 */
export async function removeCommand({ world, log, backend, others }: Context): Promise<void> {
  const [chosen, other] = await Promise.all([backend(), others()]);
  if (other.unseen !== undefined) log.warn(`cannot check ${other.unseen} for a domainwall policy: if one is loaded there, it stays`);
  const removed = await withKernelLock(world, { command: "remove", besideWatch: "refuse" }, async () => {
    const found: string[] = [];
    for (const each of [chosen, ...other.backends]) {
      if ((await each.snapshot()) !== undefined) found.push(each.name);
      await each.remove();
    }
    return found;
  });
  log.success(
    removed.length === 0 ? "nothing to remove: domainwall had no rules here" : `removed domainwall's rules (${removed.join(" and ")})`,
  );
}
