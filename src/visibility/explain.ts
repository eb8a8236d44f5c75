import type { AllowedEntry, DeniedDestination, LoadedStatus } from "../backends/backend.ts";
import type { Destination } from "../config/destination.ts";
import { formatEntry, formatPortRange, type PortRange } from "../config/port-spec.ts";
import { cidr, compareCidr, contains, parseCidr } from "../net/ip.ts";

/**
 * What allows an address: a name or network on every port (`"all"`) or on the port ranges of its
 * entries with ports (those that hold the asked port, or all of them when no port was asked); or
 * the DNS proxy's admission with its expiry.
 */
export type AllowedBy =
  | { readonly kind: "name"; readonly name: string; readonly ports: "all" | readonly PortRange[] }
  | { readonly kind: "cidr"; readonly cidr: string; readonly ports: "all" | readonly PortRange[] }
  /**
   * `--dns-proxy`: the proxy admitted it because it told an app this address in an answer for
   * `names` (matched by `entries`; both empty when no running watch knows them), for
   * `expiresInSeconds` more (the kernel's count).
   */
  | {
      readonly kind: "proxy";
      readonly names: readonly string[];
      readonly entries: readonly string[];
      readonly expiresInSeconds: number;
      readonly ports: "all";
    }
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
  readonly name?: {
    readonly name: string;
    readonly listed: boolean;
    readonly addressesFrom: "watch" | "apply" | "dns" | "proxy";
    readonly entry?: string;
  };
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
  return (
    first.ok && last.ok && first.cidr.family === inner.family && compareCidr(first.cidr, inner) <= 0 && compareCidr(inner, last.cidr) <= 0
  );
}

export const describeTarget = (d: Destination): string => {
  const host =
    d.host.kind === "name" ? d.host.name : d.host.address.includes(":") && d.port !== undefined ? `[${d.host.address}]` : d.host.address;
  return d.port === undefined ? host : `${host}:${d.port}${d.protocol === "udp" ? "/udp" : ""}`;
};

/** The ranges of `ports` that hold the destination's port and protocol; all of them when no port was asked. */
const rangesFor = (ports: readonly PortRange[], destination: Destination): PortRange[] =>
  destination.port === undefined
    ? [...ports]
    : ports.filter((r) => r.protocol === destination.protocol && r.first <= destination.port! && destination.port! <= r.last);

/**
 * Which ports the loaded entries holding an address open to the destination: every port (an entry
 * without ports holds it), these ranges, or none (`open` empty) while `listed` says which ranges
 * the address does have.
 */
function portsOpen(
  entries: readonly AllowedEntry[],
  destination: Destination,
): { everyPort: readonly AllowedEntry[]; open: PortRange[]; listed: PortRange[] } {
  const everyPort = entries.filter((e) => e.ports === "all");
  const listed = entries.flatMap((e) => (e.ports === "all" ? [] : e.ports));
  return { everyPort, open: rangesFor(listed, destination), listed };
}

/** What a running watch knows of the DNS proxy's admissions: the names and entries that admitted an address. */
export type ProxyNames = (address: string) => { readonly names: readonly string[]; readonly entries: readonly string[] } | undefined;

/** The DNS proxy's admission of `address`, when the kernel holds it with time left. */
function byProxy(status: LoadedStatus, address: string, proxyNames: ProxyNames): AllowedBy[] {
  const element = status.proxy?.find((e) => e.expiresInSeconds > 0 && entryHolds(e.address, address));
  if (element === undefined) return [];
  const known = proxyNames(element.address);
  return [
    { kind: "proxy", names: known?.names ?? [], entries: known?.entries ?? [], expiresInSeconds: element.expiresInSeconds, ports: "all" },
  ];
}

/**
 * One address against the loaded rules: the allow sets (by name when `names` held the address,
 * else by the loaded network) on every port or on the ports of the entries listed with ports, then
 * DNS to the resolvers for port 53. Pure.
 */
export function explainAddress(
  status: LoadedStatus,
  address: string,
  destination: Destination,
  names: readonly { name: string; addresses: readonly string[] }[],
  proxyNames: ProxyNames = () => undefined,
): AddressExplanation {
  const holding = status.allowed.filter((entry) => entryHolds(entry.network, address));
  const { everyPort, open, listed } = portsOpen(holding, destination);
  const ports: "all" | readonly PortRange[] | undefined = everyPort.length > 0 ? "all" : open.length > 0 ? open : undefined;
  const held = ports === undefined ? [] : names.filter((n) => n.addresses.includes(address));
  const byName = held.map((n): AllowedBy => ({ kind: "name", name: n.name, ports: ports! }));
  const byCidr =
    ports === undefined || byName.length > 0
      ? []
      : everyPort.length > 0
        ? everyPort.map((e): AllowedBy => ({ kind: "cidr", cidr: e.network, ports: "all" }))
        : holding.flatMap((e): AllowedBy[] => {
            const ranges = e.ports === "all" ? [] : rangesFor(e.ports, destination);
            return ranges.length > 0 ? [{ kind: "cidr", cidr: e.network, ports: ranges }] : [];
          });
  const dnsHolds = status.dns === "any" || status.dns.some((entry) => entryHolds(entry, address));
  const byDns: AllowedBy[] =
    destination.port === 53 && dnsHolds ? [{ kind: "dns", resolvers: status.dns === "any" ? "any" : address, ports: [53] }] : [];
  const by = [...byName, ...byCidr, ...byProxy(status, address, proxyNames), ...byDns];
  const denied = (status.denied ?? []).filter(
    (d) => d.direction === "out" && d.address === address && (destination.port === undefined || d.port === destination.port),
  );
  const asked =
    destination.port === undefined
      ? ""
      : formatPortRange({ protocol: destination.protocol, first: destination.port, last: destination.port });
  const notListed =
    status.proxy === undefined
      ? "not in the allowlist"
      : "not in the allowlist, and the DNS proxy has not admitted it (no answer for an allowed name told an app this address, or its time ran out)";
  const reason =
    by.length > 0
      ? undefined
      : listed.length > 0
        ? `not open on ${asked}: the allowlist opens it on ${listed.map(formatPortRange).join(", ")} only`
        : dnsHolds && destination.port === undefined
          ? `${notListed}; only DNS (port 53) to it is allowed, as a resolver`
          : notListed;
  return { address, allowed: by.length > 0, by, ...(reason !== undefined && { reason }), denied };
}

const describeProxy = (by: Extract<AllowedBy, { kind: "proxy" }>): string => {
  const told =
    by.names.length === 0
      ? "an allowed name's answer told an app this address (which name is not known: no running watch says)"
      : `${by.names.join(", ")} (entry ${by.entries.join(", ")}) told an app this address`;
  return `the DNS proxy: ${told}; it stays admitted for ${by.expiresInSeconds}s more`;
};

const describeBy = (by: AllowedBy): string => {
  if (by.kind === "proxy") return describeProxy(by);
  if (by.kind === "dns") return by.resolvers === "any" ? "DNS to any resolver (--dns-servers any)" : "DNS to this resolver (port 53)";
  const target = by.kind === "name" ? by.name : by.cidr;
  if (by.ports !== "all") return by.ports.map((ports) => formatEntry({ target, ports })).join(", ");
  return by.kind === "name"
    ? `the name ${by.name} (every port)`
    : `${by.cidr.includes("/") || by.cidr.includes("-") ? "the network" : "the address"} ${by.cidr} (every port)`;
};

/** The whole answer for a destination whose addresses are known (an address, or a name's addresses). */
export function explain(
  status: LoadedStatus,
  destination: Destination,
  addresses: readonly string[],
  names: readonly { name: string; addresses: readonly string[] }[],
  name?: Explanation["name"],
  proxyNames?: ProxyNames,
): Explanation {
  const target = describeTarget(destination);
  const results = addresses.map((address) => explainAddress(status, address, destination, names, proxyNames));
  const allowed = results.length > 0 && results.every((r) => r.allowed);
  const parts = results.map((r) =>
    r.allowed ? `${r.address} is allowed by ${r.by.map(describeBy).join(" and ")}` : `${r.address} is denied: ${r.reason}`,
  );
  const listed = name === undefined ? "" : name.listed ? `${name.name} is in the allowlist; ` : `${name.name} is not in the allowlist; `;
  const none =
    name === undefined || results.length > 0
      ? ""
      : name.listed
        ? `skipped: ${name.name} had no addresses when it was last resolved (no such name, or no A/AAAA records), so nothing is allowed for it`
        : `${name.name} has no addresses in DNS`;
  const audit = !status.enforcing && !allowed ? " (audit mode: let through anyway, and recorded)" : "";
  const summary = `${allowed ? "allowed" : "denied"}: ${target}: ${listed}${none}${parts.join("; ")}${audit}`;
  return { destination: target, allowed, enforcing: status.enforcing, ...(name !== undefined && { name }), addresses: results, summary };
}
