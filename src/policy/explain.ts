import type { DeniedDestination, LoadedStatus } from "../backends/backend.ts";
import type { Destination } from "../config/destination.ts";
import { cidr, compareCidr, contains, parseCidr } from "../net/ip.ts";

/**
 * What allows an address. `ports` is "all" for every entry today; per-name ports (and a DNS-proxy
 * admission with its expiry) will add their own kinds and port lists here.
 */
export type AllowedBy =
  | { readonly kind: "name"; readonly name: string; readonly ports: "all" }
  | { readonly kind: "cidr"; readonly cidr: string; readonly ports: "all" }
  /** DNS (port 53) to a resolver the policy allows, or anywhere with `--dns-servers any`. */
  | { readonly kind: "dns"; readonly resolvers: "any" | string; readonly ports: readonly [53] };

/** The answer for one address of the destination. */
export interface AddressExplanation {
  readonly address: string;
  readonly allowed: boolean;
  /** Every loaded entry that allows it (empty when denied). */
  readonly by: readonly AllowedBy[];
  /** Why not, when denied. */
  readonly reason?: string;
  /** What the kernel recorded for it as denied (outbound), when it did. */
  readonly denied: readonly DeniedDestination[];
}

export interface Explanation {
  readonly destination: string;
  readonly allowed: boolean;
  /** False in audit mode: a denied destination is let through anyway (and recorded). */
  readonly enforcing: boolean;
  /** For a name: whether it is in the loaded allowlist and where its addresses came from. */
  readonly name?: { readonly name: string; readonly listed: boolean; readonly addressesFrom: "watch" | "apply" | "dns" };
  readonly addresses: readonly AddressExplanation[];
  /** The explanation in one sentence. */
  readonly summary: string;
}

/** Whether a loaded entry (`192.0.2.0/24`, `203.0.113.10`, `192.0.2.1-192.0.2.9`) holds `address`. */
export function entryHolds(entry: string, address: string): boolean {
  const inner = cidr(address);
  const dash = entry.indexOf("-");
  if (dash < 0) {
    const outer = parseCidr(entry);
    return outer.ok && contains(outer.cidr, inner);
  }
  const [first, last] = [parseCidr(entry.slice(0, dash)), parseCidr(entry.slice(dash + 1))];
  return first.ok && last.ok && first.cidr.family === inner.family && compareCidr(first.cidr, inner) <= 0 && compareCidr(inner, last.cidr) <= 0;
}

export const describeTarget = (d: Destination): string => {
  const host = d.host.kind === "name" ? d.host.name : d.host.address.includes(":") && d.port !== undefined ? `[${d.host.address}]` : d.host.address;
  return d.port === undefined ? host : `${host}:${d.port}${d.protocol === "udp" ? "/udp" : ""}`;
};

/**
 * One address against the loaded rules: the allow sets (by name when `names` held the address,
 * else by the loaded network), then DNS to the resolvers for port 53. Pure.
 */
export function explainAddress(status: LoadedStatus, address: string, destination: Destination, names: readonly { name: string; addresses: readonly string[] }[]): AddressExplanation {
  const loaded = status.allowed.filter((entry) => entryHolds(entry, address));
  const byName = loaded.length > 0 ? names.filter((n) => n.addresses.includes(address)).map((n): AllowedBy => ({ kind: "name", name: n.name, ports: "all" })) : [];
  const byCidr = byName.length > 0 ? [] : loaded.map((entry): AllowedBy => ({ kind: "cidr", cidr: entry, ports: "all" }));
  const dnsHolds = status.dns === "any" || status.dns.some((entry) => entryHolds(entry, address));
  const byDns: AllowedBy[] = destination.port === 53 && dnsHolds ? [{ kind: "dns", resolvers: status.dns === "any" ? "any" : address, ports: [53] }] : [];
  const by = [...byName, ...byCidr, ...byDns];
  const denied = (status.denied ?? []).filter((d) => d.direction === "out" && d.address === address && (destination.port === undefined || d.port === destination.port));
  const reason = by.length > 0 ? undefined : dnsHolds && destination.port === undefined ? "not in the allowlist; only DNS (port 53) to it is allowed, as a resolver" : "not in the allowlist";
  return { address, allowed: by.length > 0, by, ...(reason !== undefined && { reason }), denied };
}

const describeBy = (by: AllowedBy): string =>
  by.kind === "name" ? `the name ${by.name} (every port)` : by.kind === "cidr" ? `${by.cidr.includes("/") || by.cidr.includes("-") ? "the network" : "the address"} ${by.cidr} (every port)` : by.resolvers === "any" ? "DNS to any resolver (--dns-servers any)" : "DNS to this resolver (port 53)";

/** The whole answer for a destination whose addresses are known (an address, or a name's addresses). */
export function explain(status: LoadedStatus, destination: Destination, addresses: readonly string[], names: readonly { name: string; addresses: readonly string[] }[], name?: Explanation["name"]): Explanation {
  const target = describeTarget(destination);
  const results = addresses.map((address) => explainAddress(status, address, destination, names));
  const allowed = results.length > 0 && results.every((r) => r.allowed);
  const parts = results.map((r) => (r.allowed ? `${r.address} is allowed by ${r.by.map(describeBy).join(" and ")}` : `${r.address} is denied: ${r.reason}`));
  const listed = name === undefined ? "" : name.listed ? `${name.name} is in the allowlist; ` : `${name.name} is not in the allowlist; `;
  const none = name !== undefined && results.length === 0 ? `${name.name} has no addresses ${name.listed ? "loaded now" : "in DNS"}` : "";
  const audit = !status.enforcing && !allowed ? " (audit mode: let through anyway, and recorded)" : "";
  const summary = `${allowed ? "allowed" : "denied"}: ${target}: ${listed}${none}${parts.join("; ")}${audit}`;
  return { destination: target, allowed, enforcing: status.enforcing, ...(name !== undefined && { name }), addresses: results, summary };
}
