import * as v from "valibot";
import { formatPortRange } from "../net/port-range.ts";
import { cidr, compareCidr } from "../net/ip.ts";
import { lastAnswerOf, sameAddresses, type NameState, type RefreshState } from "./refresh.ts";
import type { WatchSnapshot } from "./watcher.ts";
import type { ProxyReport } from "./dns-proxy.ts";
import { MAX_NAMES } from "../backends/nft/admitter.ts";

/**
 * What a running `watch` leaves in the run directory for `domainwall status`: each name, the
 * addresses it holds in the allowlist and when it was last resolved. Written after every cycle
 * that looked something up; removed when the watch stops.
 */
export const WATCH_STATE_FILE = "watch.json";

const NameReportSchema = v.strictObject({
  name: v.pipe(v.string(), v.maxLength(253)),
  addresses: v.array(v.pipe(v.string(), v.maxLength(43))),
  /** The ports the name opens (`443/tcp`, `8000-8100/udp`); absent: every port. */
  ports: v.optional(v.array(v.pipe(v.string(), v.maxLength(16)))),
  /** Milliseconds since the epoch of the last answer (addresses or "no such name"); null before the first. */
  lastResolved: v.nullable(v.number()),
  /** Consecutive failed lookups; the name keeps its addresses meanwhile. */
  failing: v.pipe(v.number(), v.integer(), v.minValue(0)),
  lastError: v.nullable(v.pipe(v.string(), v.maxLength(500))),
});

const count = v.pipe(v.number(), v.integer(), v.minValue(0));
const names = (max: number) => v.pipe(v.array(v.pipe(v.string(), v.maxLength(255))), v.maxLength(max));

/** Refused names the state file keeps (the most asked). */
const REFUSED_SHOWN = 20;
/** Admitted addresses the state file names (`explain`); the rest are explained from the kernel alone. */
export const ADMITTED_SHOWN = 1000;

/** `--dns-proxy`: the proxy's state for `status` and `explain`. */
const ProxyStateSchema = v.strictObject({
  port: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535)),
  gid: count,
  queries: v.record(v.pipe(v.string(), v.maxLength(16)), count),
  upstreamErrors: count,
  admitted: v.strictObject({ v4: count, v6: count }),
  expiredTotal: count,
  /** The most asked refused names, at most REFUSED_SHOWN. */
  refused: v.array(v.strictObject({ name: v.pipe(v.string(), v.maxLength(255)), qtype: v.pipe(v.string(), v.maxLength(16)), count })),
  refusedOther: count,
  /** The list it answers for now. */
  list: v.optional(
    v.strictObject({
      names: v.array(v.pipe(v.string(), v.maxLength(253))),
      wildcards: v.array(v.pipe(v.string(), v.maxLength(256))),
      /** The entries listed with ports and the two sets each admits into (the others: proxy_v4, proxy_v6). */
      ported: v.optional(
        v.record(
          v.pipe(v.string(), v.maxLength(256)),
          v.strictObject({ v4: v.pipe(v.string(), v.maxLength(255)), v6: v.pipe(v.string(), v.maxLength(255)) }),
        ),
      ),
    }),
  ),
  /** The process answering the DNS proxy's queries, and the supervisor holding its sockets (absent: not supervised). */
  workerPid: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  supervisorPid: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  /** The admitted addresses with the latest names and entries that admitted them, at most ADMITTED_SHOWN (the kernel has them all). */
  addresses: v.optional(
    v.pipe(
      v.array(
        v.strictObject({
          address: v.pipe(v.string(), v.maxLength(43)),
          /** The kernel set that holds it (an address may be in two: one entry's every-port set, another's port set). */
          set: v.optional(v.pipe(v.string(), v.maxLength(255))),
          names: names(MAX_NAMES),
          entries: names(MAX_NAMES),
        }),
      ),
      v.maxLength(ADMITTED_SHOWN),
    ),
  ),
});

const WatchStateSchema = v.strictObject({
  version: v.literal(1),
  pid: v.pipe(v.number(), v.integer(), v.minValue(1)),
  backend: v.pipe(v.string(), v.maxLength(32)),
  /** Milliseconds since the epoch. */
  writtenAt: v.number(),
  names: v.array(NameReportSchema),
  proxy: v.optional(ProxyStateSchema),
});

export type WatchState = v.InferOutput<typeof WatchStateSchema>;

/** The two clocks: the watch loop's monotonic one and the wall clock, read at the same moment. */
export interface Clocks {
  readonly monotonicMs: number;
  readonly epochMs: number;
}

/**
 * A name's addresses in `compareCidr` order. A name's address map is replaced whenever it is looked
 * up (the last-seen times move) but mostly holds the same addresses, and the file is written every
 * few seconds: sorted lists are kept by their addresses' text, those of the last write only.
 */
let sortedLast = new Map<string, string[]>();
function sortedOf(addresses: NameState["addresses"], kept: Map<string, string[]>): string[] {
  const key = [...addresses.keys()].join(" ");
  const sorted =
    kept.get(key) ??
    sortedLast.get(key) ??
    [...addresses.keys()]
      .map(cidr)
      .sort(compareCidr)
      .map((c) => c.text);
  kept.set(key, sorted);
  return sorted;
}

/** The file's content for a snapshot of the loop. Pure. */
export function watchStateOf(snapshot: WatchSnapshot, clocks: Clocks, pid: number, backend: string, proxy?: ProxyReport): WatchState {
  const wall = (monotonic: number) => Math.round(clocks.epochMs - (clocks.monotonicMs - monotonic));
  const lastResolvedOf = (state: NameState) => {
    const answered = lastAnswerOf(state);
    return answered === undefined ? null : wall(answered);
  };
  const kept = new Map<string, string[]>();
  const names = [...snapshot.state].map(([name, state]) => ({
    name,
    ...(snapshot.hostPorts.has(name) && { ports: (snapshot.hostPorts.get(name) ?? []).map(formatPortRange) }),
    addresses: sortedOf(state.addresses, kept),
    lastResolved: lastResolvedOf(state),
    failing: state.failures,
    lastError: state.failures > 0 ? (state.lastError ?? null) : null,
  }));
  sortedLast = kept;
  return { version: 1, pid, backend, writtenAt: Math.round(clocks.epochMs), names, ...(proxy && { proxy: proxyStateOf(proxy) }) };
}

function proxyStateOf(proxy: ProxyReport): NonNullable<WatchState["proxy"]> {
  const refused = [...proxy.stats.refusedNames]
    .map(([name, r]) => ({ name, qtype: r.qtype, count: r.count }))
    .sort((a, b) => b.count - a.count || (a.name < b.name ? -1 : 1));
  return {
    port: proxy.port,
    gid: proxy.gid,
    queries: { ...proxy.stats.queries },
    upstreamErrors: proxy.stats.upstreamErrors,
    admitted: proxy.elements,
    expiredTotal: proxy.expiredTotal,
    refused: refused.slice(0, REFUSED_SHOWN),
    refusedOther: proxy.stats.refusedOther + Math.max(0, refused.length - REFUSED_SHOWN),
    list: {
      names: [...proxy.list.names],
      wildcards: [...proxy.list.wildcards],
      ported: Object.fromEntries([...proxy.portedEntries].map(([entry, sets]) => [entry, { v4: sets.v4, v6: sets.v6 }])),
    },
    ...(proxy.workerPid !== undefined && { workerPid: proxy.workerPid }),
    ...(proxy.supervisorPid !== undefined && { supervisorPid: proxy.supervisorPid }),
    addresses: proxy.admitted
      .slice(0, ADMITTED_SHOWN)
      .map((e) => ({ address: e.address, set: e.set, names: e.names.slice(-MAX_NAMES), entries: e.entries.slice(-MAX_NAMES) })),
  };
}

/**
 * The file is rewritten after a cycle at once when something `status` shows other than a time
 * changed (a name's addresses, its failures, the list), otherwise at most this often: with 300
 * names and a 5 s TTL a cycle runs every second, and most only move the "resolved" times.
 */
export const STATE_REFRESH_MS = 5000;

/** Whether the state file is due after a cycle, given when and from which state it was last written. Pure. */
export function stateWriteDue(
  last: { readonly at: number; readonly state: RefreshState } | undefined,
  state: RefreshState,
  now: number,
): boolean {
  if (last === undefined || now - last.at >= STATE_REFRESH_MS || last.state.size !== state.size) return true;
  for (const [host, name] of state) {
    const before = last.state.get(host);
    if (before === undefined || before.failures !== name.failures || before.lastError !== name.lastError || !sameAddresses(before, name))
      return true;
  }
  return false;
}

/** The file as `status` reads it: anything that does not match the schema is ignored (undefined). */
export function parseWatchState(text: string): WatchState | undefined {
  try {
    const parsed = v.safeParse(WatchStateSchema, JSON.parse(text));
    return parsed.success ? parsed.output : undefined;
  } catch {
    return undefined;
  }
}

const ago = (ms: number): string => {
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return `${Math.round(s * 10) / 10}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 360) / 10}h ago`;
};
const printable = (text: string): string => text.replace(/[\u0000-\u001f\u007f]/g, "?");
const iso = (epochMs: number): string => new Date(epochMs).toISOString().replace(/\.\d+Z$/, "Z");

/** `status` lines for a running watch: one per name, in configuration order. */
export function describeWatchState(state: WatchState, epochNow: number): string[] {
  const lines = [`watch (pid ${state.pid}), as of ${ago(epochNow - state.writtenAt)}:`];
  for (const n of state.names) {
    const addresses = n.addresses.length > 0 ? n.addresses.map(printable).join(", ") : "no addresses";
    const resolved = n.lastResolved === null ? "never resolved" : `resolved ${ago(epochNow - n.lastResolved)} at ${iso(n.lastResolved)}`;
    const failing =
      n.failing > 0
        ? `; last ${n.failing === 1 ? "lookup" : `${n.failing} lookups`} failed: ${printable(n.lastError ?? "unknown error")}`
        : "";
    const ports = n.ports === undefined ? "" : ` (${n.ports.map(printable).join(", ")})`;
    lines.push(`  ${printable(n.name)}${ports}: ${addresses}; ${resolved}${failing}`);
  }
  const p = state.proxy;
  if (p !== undefined) {
    const queries = Object.entries(p.queries)
      .map(([outcome, n]) => `${n} ${printable(outcome)}`)
      .join(", ");
    lines.push(
      `DNS proxy: running on 127.0.0.1 and ::1 port ${p.port} (group ${p.gid}); queries: ${queries}; upstream errors: ${p.upstreamErrors}`,
      `  admitted now: ${p.admitted.v4} IPv4, ${p.admitted.v6} IPv6 (${p.expiredTotal} expired since start)`,
      p.refused.length === 0
        ? "  refused names: none"
        : `  refused names: ${p.refused.map((r) => `${printable(r.name)} ${printable(r.qtype)} x${r.count}`).join(", ")}${p.refusedOther > 0 ? ` and ${p.refusedOther} more` : ""}`,
    );
  }
  return lines;
}
