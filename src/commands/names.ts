import * as v from "valibot";
import type { Logger } from "../log.ts";
import { messageOf } from "../messages.ts";
import type { NameAddresses } from "../policy/policy.ts";
import { parseWatchState, WATCH_STATE_FILE, type WatchState } from "../watch/state.ts";
import type { World } from "../world.ts";
import type { HeldName } from "../visibility/explain.ts";
import { formatPortRange, type PortRange } from "../net/port-range.ts";
import { watchStateFile } from "./context.ts";

/**
 * What the last `apply` (or a `watch` when it stopped) resolved each name to, left in the run
 * directory so `status`, `explain` and `suggest` can name the addresses the kernel shows. The
 * kernel keeps addresses only; without this file (another container, another run directory) they
 * show addresses alone.
 */
export const NAMES_FILE = "names.json";

const NamesFileSchema = v.strictObject({
  version: v.literal(1),
  /** Milliseconds since the epoch. */
  writtenAt: v.number(),
  names: v.array(
    v.strictObject({
      name: v.pipe(v.string(), v.maxLength(253)),
      addresses: v.array(v.pipe(v.string(), v.maxLength(43))),
      /** The ports its entry opens (`443/tcp`), or "all"; absent in files written before ports were kept. */
      ports: v.optional(v.union([v.literal("all"), v.array(v.pipe(v.string(), v.maxLength(16)))])),
    }),
  ),
});

/** Each name and its addresses, from a running watch's state, else from the last apply's file. */
export interface KnownNames {
  readonly from: "watch" | "apply" | "none";
  readonly names: readonly HeldName[];
  /** The running watch's state, for `status`. */
  readonly watch?: WatchState;
}

/** The names that held `address`, in configuration order, then those a running DNS proxy admitted it for. */
export const namesOf = (known: KnownNames, address: string): string[] => [
  ...new Set([
    ...known.names.filter((n) => n.addresses.includes(address)).map((n) => n.name),
    ...(known.watch?.proxy?.addresses ?? []).filter((a) => a.address === address).flatMap((a) => a.names),
  ]),
];

/** Write the names file after a load; a run directory that cannot be written only costs names in `status`. */
export async function saveNames(
  world: World,
  log: Logger,
  names: readonly NameAddresses[],
  hostPorts: ReadonlyMap<string, readonly PortRange[]>,
): Promise<void> {
  const path = watchStateFile(world.env, NAMES_FILE);
  const content = {
    version: 1,
    writtenAt: world.epochNow(),
    names: names.map((n) => {
      const ports = hostPorts.get(n.host);
      return {
        name: n.host,
        addresses: n.addresses.map((a) => a.address),
        ports: ports === undefined ? "all" : ports.map(formatPortRange),
      };
    }),
  };
  try {
    await world.writeFile(path, JSON.stringify(content));
  } catch (error) {
    log.warn(`cannot write ${path} (status will show addresses without their names): ${messageOf(error)}`);
  }
}

/** A running watch's state, else the last apply's names; anything unreadable or malformed is passed over. */
export async function knownNames(world: World): Promise<KnownNames> {
  const read = (name: string) => world.readFile(watchStateFile(world.env, name)).catch(() => undefined);
  const watchText = await read(WATCH_STATE_FILE);
  const watch = watchText === undefined ? undefined : parseWatchState(watchText);
  // A watch's name without ports opens every port.
  if (watch !== undefined && world.processAlive(watch.pid))
    return { from: "watch", names: watch.names.map((n) => ({ name: n.name, addresses: n.addresses, ports: n.ports ?? "all" })), watch };
  const text = await read(NAMES_FILE);
  if (text === undefined) return { from: "none", names: [] };
  try {
    const parsed = v.safeParse(NamesFileSchema, JSON.parse(text));
    return parsed.success ? { from: "apply", names: parsed.output.names } : { from: "none", names: [] };
  } catch {
    return { from: "none", names: [] };
  }
}
