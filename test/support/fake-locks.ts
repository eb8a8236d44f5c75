import type { Holder } from "../../src/backends/lock.ts";
import type { World } from "../../src/world.ts";

/**
 * Namespace locks in memory, for a fake World: `held` maps a lock's name to its holder (seed it to
 * play another process holding one). Taking a held lock fails at once (the real wait is tested in
 * test/backends/lock.test.ts); `taken` records every lock this process took, in order.
 */
export function fakeLocks(
  pid: number,
  held = new Map<string, Holder>(),
): Pick<World, "lock" | "lockHolder"> & { held: Map<string, Holder>; taken: string[] } {
  const taken: string[] = [];
  return {
    held,
    taken,
    lock: async (name, command) => {
      const holder = held.get(name);
      if (holder !== undefined) return { ok: false, holder };
      held.set(name, { pid, command });
      taken.push(`${name} (${command})`);
      return { ok: true, release: () => void held.delete(name) };
    },
    lockHolder: async (name) => held.get(name),
  };
}
