import type { LoadedStatus, ProxySet } from "../status.ts";
import type { Destination } from "../config/destination.ts";
import { formatPortRange, type PortRange } from "../net/port-range.ts";
import { compileMatcher } from "../proxy/match.ts";
import { describeTarget, explain, type ExplainSources, type Explanation, type ProxyNames } from "./explain.ts";

/** What a running `watch --dns-proxy` left in its state file: the list it answers for and what it admitted. */
export interface ProxyWatchState {
  readonly list: {
    readonly names: readonly string[];
    readonly wildcards: readonly string[];
    /** Entries listed with ports and the sets they admit into; undefined when the watch does not say (older state). */
    readonly ported?: Readonly<Record<string, { readonly v4: string; readonly v6: string }>>;
  };
  readonly addresses: readonly {
    readonly address: string;
    readonly set?: string;
    readonly names: readonly string[];
    readonly entries: readonly string[];
  }[];
}

/** The names and entries a running watch says admitted an address into a set (any set when the state does not name it). */
export const proxyNamesOf =
  (watch: Pick<ProxyWatchState, "addresses"> | undefined): ProxyNames =>
  (address, set) =>
    watch?.addresses.find((a) => a.address === address && (a.set === undefined || a.set === set));

/** A name as DNS compares it: `ALLOWED.X.` is `allowed.x` (a trailing dot only says the name is absolute). */
export const canonicalName = (name: string): string => (name.endsWith(".") ? name.slice(0, -1) : name).toLowerCase();

/**
 * The ports the kernel opens to what `entry` admits: its sets' (proxy_v4/proxy_v6 unless the watch
 * says it is listed with ports); undefined when the watch does not say which sets.
 */
function entryPorts(status: LoadedStatus, watch: ProxyWatchState, entry: string): "all" | PortRange[] | undefined {
  if (watch.list.ported === undefined) return undefined;
  const sets = watch.list.ported[entry] ?? { v4: "proxy_v4", v6: "proxy_v6" };
  const held = (status.proxySets ?? []).filter((s: ProxySet) => s.name === sets.v4 || s.name === sets.v6);
  if (held.some((s) => s.ports === "all")) return "all";
  const ranges = new Map<string, PortRange>();
  for (const s of held) for (const r of s.ports as readonly PortRange[]) ranges.set(formatPortRange(r), r);
  return [...ranges.values()];
}

/**
 * A name under `--dns-proxy`, never looked up (an unlisted name must not leave the host): a listed
 * name or a wildcard's match is allowed by its entry, its addresses admitted when an app asks (those
 * admitted now are explained one by one); an unlisted name gets NXDOMAIN from the proxy. Without a
 * running watch nothing answers the redirected queries, so no name resolves. Pure.
 */
export function explainProxyName(
  status: LoadedStatus,
  destination: Destination & { readonly host: { readonly kind: "name" } },
  watch: ProxyWatchState | undefined,
  sources: Omit<ExplainSources, "proxyNames"> = {},
): Explanation {
  const name = canonicalName(destination.host.name);
  const target = describeTarget(destination);
  const denied = (why: string, audit: string): Explanation => ({
    destination: target,
    allowed: false,
    enforcing: status.enforcing,
    name: { name, listed: false, addressesFrom: "proxy" },
    addresses: [],
    summary: `denied: ${target}: ${why} (not looked up)${status.enforcing ? "" : audit}`,
  });
  if (watch === undefined) {
    return denied(`DNS goes to the DNS proxy here, but no watch --dns-proxy runs: DNS fails closed, so ${name} does not resolve`, "");
  }
  const compiled = compileMatcher([...watch.list.names, ...watch.list.wildcards]);
  const entry = compiled.ok ? compiled.match(name) : undefined;
  if (entry === undefined) {
    return denied(
      `${name} is not in the DNS proxy's list: the proxy answers NXDOMAIN for it`,
      " (audit mode: the proxy forwards it anyway, and records it)",
    );
  }
  // Its addresses the kernel still holds (the state file is a few seconds old), each explained.
  const admitted = watch.addresses
    .filter((a) => a.names.includes(name) && status.proxy?.some((e) => e.address === a.address && e.expiresInSeconds > 0))
    .map((a) => a.address);
  const now = explain(status, destination, admitted, [], undefined, { ...sources, proxyNames: proxyNamesOf(watch) });
  const parts = now.summary.slice(`${now.allowed ? "allowed" : "denied"}: ${target}: `.length);
  const ports = entryPorts(status, watch, entry);
  const asked =
    destination.port === undefined ? undefined : { protocol: destination.protocol, first: destination.port, last: destination.port };
  const opens =
    ports === undefined ||
    ports === "all" ||
    asked === undefined ||
    ports.some((r) => r.protocol === asked.protocol && r.first <= asked.first && asked.first <= r.last);
  const onPorts =
    ports === undefined || ports === "all" ? "" : ` on ${ports.length === 0 ? "no port" : ports.map(formatPortRange).join(", ")} only`;
  // Addresses admitted now are what a connect reaches (one may be open on more ports for another entry); else the entry's ports.
  const allowed = admitted.length > 0 ? now.allowed : opens;
  const intro = opens
    ? `${name} is allowed by the DNS proxy's entry ${entry}: its addresses are admitted when an app asks${onPorts}`
    : `${name} is in the DNS proxy's list (entry ${entry}), but its addresses are admitted${onPorts}: not open on ${formatPortRange(asked!)}`;
  return {
    ...now,
    allowed,
    name: { name, listed: true, addressesFrom: "proxy", entry },
    summary: `${allowed ? "allowed" : "denied"}: ${target}: ${intro}; ${admitted.length === 0 ? "none is admitted now" : `now ${parts}`}${allowed || status.enforcing ? "" : " (audit mode: let through anyway, and recorded)"}`,
  };
}
