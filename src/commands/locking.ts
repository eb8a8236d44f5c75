import type { Backend } from "../backends/backend.ts";
import { describeHolder, KERNEL_LOCK, WATCH_MARKER } from "../backends/lock.ts";
import { runtimeError } from "../errors.ts";
import type { World } from "../world.ts";

/** How long a command waits for another one's read-decide-write (or a confirm window) to end. */
export const LOCK_WAIT_MS = 10_000;

export interface LockOptions {
  /** The command named to whoever waits for this one: apply, remove, watch. */
  readonly command: string;
  /** apply and remove: refuse while a `watch` (other than this process) runs in the namespace. */
  readonly besideWatch: "refuse" | "allow";
}

/**
 * Run `fn` — one whole read-decide-write of the kernel's rules — holding the namespace's kernel
 * lock (src/backends/lock.ts): a second command waits up to LOCK_WAIT_MS, then fails naming the
 * holder, so two runs never act on the same stale read. Whether a watch runs is checked inside the
 * lock, so a watch starting meanwhile cannot slip between the check and the write.
 */
export async function withKernelLock<T>(world: World, options: LockOptions, fn: () => Promise<T>): Promise<T> {
  const acquired = await world.lock(KERNEL_LOCK, options.command, LOCK_WAIT_MS);
  if (!acquired.ok) {
    throw runtimeError(
      `another domainwall command is changing the rules in this network namespace: ${describeHolder(acquired.holder)} still held the lock after ${LOCK_WAIT_MS / 1000}s; nothing was changed`,
    );
  }
  try {
    if (options.besideWatch === "refuse") {
      const watch = await world.lockHolder(WATCH_MARKER);
      if (watch !== undefined && !(typeof watch === "object" && watch.pid === world.pid)) {
        throw runtimeError(
          `a domainwall watch is running in this network namespace (${describeHolder(watch)}) and keeps its own rules loaded: stop it (or change its configuration) instead of running '${options.command}' beside it; nothing was changed`,
        );
      }
    }
    return await fn();
  } finally {
    acquired.release();
  }
}

/** `watch`: every change the loop makes to the kernel (updateSets, a full apply, remove) under the kernel lock. */
export function lockedBackend(world: World, backend: Backend): Backend {
  const locked = <T>(fn: () => Promise<T>) => withKernelLock(world, { command: "watch", besideWatch: "allow" }, fn);
  return {
    ...backend,
    apply: (policy) => locked(() => backend.apply(policy)),
    updateSets: (policy, loaded) => locked(() => backend.updateSets(policy, loaded)),
    remove: () => locked(() => backend.remove()),
    restore: (snapshot) => locked(() => backend.restore(snapshot)),
  };
}
