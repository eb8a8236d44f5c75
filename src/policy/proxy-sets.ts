import { comparePortRange, formatPortRange, type PortRange } from "../net/port-range.ts";

/** The DNS proxy's sets for the addresses of one family: their names in the table. */
export interface ProxySetNames {
  readonly v4: string;
  readonly v6: string;
}

/** The sets for entries listed without ports: an admitted address opens every port and protocol. */
export const EVERY_PORT_SETS: ProxySetNames = { v4: "proxy_v4", v6: "proxy_v6" };

/**
 * Timeout sets for the addresses admitted for entries listed with ports (`api.example.com:443`,
 * `*.pypi.org:443`): one pair per distinct list of port ranges, so an address opens only the ports
 * of the entry that matched its query. Few entries, fewer distinct specs: a pair each is cheap.
 */
export interface ProxyPortSet extends ProxySetNames {
  /** Sorted and unique. */
  readonly ports: readonly PortRange[];
  /** The list entries that admit into it, sorted (the render's `#` comment). */
  readonly entries: readonly string[];
}

/** Set names stay well under the kernel's 255 characters; longer specs are named by a hash. */
const MAX_SPEC_NAME = 64;

/** FNV-1a, 32 bits: a stable short name for a long port spec. */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return hash.toString(16).padStart(8, "0");
}

/**
 * `tcp443`, `tcp80_tcp443_udp8000-8100`: the set name's tail, named after the ports themselves, so
 * that a restart with other ports never carries an address over into a set that now opens
 * something else (a set is carried over only to the set of the same name).
 */
function specName(ports: readonly PortRange[]): string {
  const text = ports.map((p) => `${p.protocol}${p.first}${p.last === p.first ? "" : `-${p.last}`}`).join("_");
  return text.length <= MAX_SPEC_NAME ? text : `h${fnv1a(text)}`;
}

/** The matcher's name for a list entry: a query name is absolute, so `api.example.` is `api.example`. */
export const proxyEntryOf = (entry: string): string => (entry.endsWith(".") ? entry.slice(0, -1) : entry);

/**
 * Which sets each list entry of the DNS proxy admits into, by the matcher's entry (`proxyEntryOf`).
 * An entry listed both with and without ports (`api.example` and `api.example.:443` are one entry
 * to the proxy) opens every port, as config does for one name; otherwise its ports add up.
 * `sets` is sorted by name, for a deterministic render.
 */
export function proxyPortSets(
  entries: readonly string[],
  hostPorts: ReadonlyMap<string, readonly PortRange[]>,
): { sets: ProxyPortSet[]; byEntry: Map<string, ProxySetNames> } {
  const ports = new Map<string, Map<string, PortRange> | "every">();
  for (const entry of entries) {
    const key = proxyEntryOf(entry);
    const listed = hostPorts.get(entry);
    const known = ports.get(key);
    if (listed === undefined) ports.set(key, "every");
    else if (known !== "every") {
      const merged = known ?? new Map<string, PortRange>();
      for (const range of listed) merged.set(formatPortRange(range), range);
      ports.set(key, merged);
    }
  }
  const sets = new Map<string, { ports: PortRange[]; entries: string[] }>();
  const byEntry = new Map<string, ProxySetNames>();
  for (const [entry, known] of ports) {
    if (known === "every") {
      byEntry.set(entry, EVERY_PORT_SETS);
      continue;
    }
    const sorted = [...known.values()].sort(comparePortRange);
    const same = (set: { ports: PortRange[] }) => set.ports.map(formatPortRange).join() === sorted.map(formatPortRange).join();
    let name = specName(sorted);
    // Two long specs with one hash (never seen, but possible) get names of their own.
    for (let n = 2; sets.has(name) && !same(sets.get(name)!); n++) name = `${specName(sorted)}_${n}`;
    const set = sets.get(name) ?? { ports: sorted, entries: [] };
    set.entries.push(entry);
    sets.set(name, set);
    byEntry.set(entry, { v4: `proxy_v4_${name}`, v6: `proxy_v6_${name}` });
  }
  return {
    sets: [...sets]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, set]) => ({ v4: `proxy_v4_${name}`, v6: `proxy_v6_${name}`, ports: set.ports, entries: set.entries.sort() })),
    byEntry,
  };
}

/** The port sets as the table declares them (names and ports, not which entries admit into them): equal keys, equal declarations. */
export const proxySetsKey = (sets: readonly ProxyPortSet[]): string =>
  JSON.stringify(sets.map((set) => [set.v4, set.v6, set.ports.map(formatPortRange)]));
