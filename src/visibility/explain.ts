import type { DeniedDestination, LoadedStatus } from "../status.ts";
import type { Destination } from "../config/destination.ts";
import { formatEntry, parsePortRange } from "../config/port-spec.ts";
import { formatPortRange, type PortRange } from "../net/port-range.ts";
import { cidr, compareCidr, contains, formatAddress, parseAddress, parseCidr } from "../net/ip.ts";

/**
 * What allows an address: a name or network on every port (`"all"`) or on the port ranges of its
 * entries with ports (those that hold the asked port, or all of them when no port was asked); or
 * the DNS proxy's admission with its expiry and the ports of the set that holds it.
 */
export type AllowedBy =
  | { readonly kind: "name"; readonly name: string; readonly ports: "all" | readonly PortRange[] }
  | { readonly kind: "cidr"; readonly cidr: string; readonly ports: "all" | readonly PortRange[] }
  /**
   * `--dns-proxy`: the proxy admitted it into `set` because it told an app this address in an
   * answer for `names` (matched by `entries`; both empty when no running watch knows them), for
   * `expiresInSeconds` more (the kernel's count), on the ports the kernel's rules open to that set.
   */
  | {
      readonly kind: "proxy";
      readonly names: readonly string[];
      readonly entries: readonly string[];
      readonly set: string;
      readonly expiresInSeconds: number;
      readonly ports: "all" | readonly PortRange[];
    }
  /** DNS (port 53) to a resolver the policy allows, or anywhere with `--dns-servers any`. */
  | { readonly kind: "dns"; readonly resolvers: "any" | string; readonly ports: readonly [53] }
  /** This namespace's own address or loopback: the packet leaves through `lo`, which the output chain accepts. */
  | { readonly kind: "local"; readonly ports: "all" };

/** The answer for one address of the destination. */
export interface AddressExplanation {
  readonly address: string;
  /** An IPv4-mapped address (`::ffff:203.0.113.10`): the IPv4 address a connect to it goes out to, which is what is explained. */
  readonly sentAs?: string;
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

/** What a running watch knows of the DNS proxy's admissions: the names and entries that admitted an address into a set. */
export type ProxyNames = (
  address: string,
  set: string,
) => { readonly names: readonly string[]; readonly entries: readonly string[] } | undefined;

/**
 * A name and the addresses it holds, with the ports of its entry: every port, these ranges
 * (`443/tcp`), or undefined when not known (a names file written before ports were kept).
 */
export interface HeldName {
  readonly name: string;
  readonly addresses: readonly string[];
  readonly ports?: "all" | readonly string[];
}

/** What else an answer reads besides the kernel's rules: names of admissions, and this namespace's own addresses. */
export interface ExplainSources {
  readonly proxyNames?: ProxyNames;
  /** This namespace's own addresses and loopback networks (visibility/local.ts). */
  readonly local?: readonly string[];
}

const overlaps = (a: PortRange, b: PortRange) => a.protocol === b.protocol && a.first <= b.last && b.first <= a.last;

/** The ranges of a name's entry (`443/tcp`...); a range that does not parse is left out. */
const rangesOfName = (ports: readonly string[]): PortRange[] =>
  ports.flatMap((text) => {
    const parsed = parsePortRange(text);
    return parsed.ok ? [parsed.ports] : [];
  });

/** `::ffff:203.0.113.10` → `203.0.113.10`: a connect to an IPv4-mapped address goes out as IPv4 (undefined: not one). */
export function unmapped(address: string): string | undefined {
  const parsed = parseAddress(address);
  if (parsed?.family !== 6) return undefined;
  const [a, b, c, d] = parsed.words;
  if (a !== 0 || b !== 0 || c !== 0xffff || d === undefined) return undefined;
  return formatAddress(4, [d]);
}

/**
 * The names holding `address`, each on the ports of its own entry that the kernel opens to the
 * address: an every-port name only where an every-port set holds it, a name with ports only on its
 * ranges that a port set holds (and that hold the asked port). Unknown ports: what the kernel opens.
 */
function byNames(
  names: readonly HeldName[],
  address: string,
  destination: Destination,
  kernel: { everyPort: boolean; ranges: readonly PortRange[] },
): AllowedBy[] {
  const open = rangesFor(kernel.ranges, destination);
  return names.flatMap((n): AllowedBy[] => {
    if (!n.addresses.includes(address)) return [];
    if (n.ports === undefined) {
      const ports = kernel.everyPort ? "all" : open.length > 0 ? open : undefined;
      return ports === undefined ? [] : [{ kind: "name", name: n.name, ports }];
    }
    if (n.ports === "all") return kernel.everyPort ? [{ kind: "name", name: n.name, ports: "all" }] : [];
    const ranges = rangesFor(rangesOfName(n.ports), destination).filter((r) => open.some((k) => overlaps(k, r)));
    return ranges.length > 0 ? [{ kind: "name", name: n.name, ports: ranges }] : [];
  });
}

/** The DNS proxy's admissions of `address` that the kernel holds with time left, each on its set's ports. */
function byProxy(status: LoadedStatus, address: string, destination: Destination, proxyNames: ProxyNames): AllowedBy[] {
  return (status.proxy ?? []).flatMap((element): AllowedBy[] => {
    if (element.expiresInSeconds <= 0 || !entryHolds(element.address, address)) return [];
    const ports = element.ports === "all" ? "all" : rangesFor(element.ports, destination);
    if (ports !== "all" && ports.length === 0) return [];
    const known = proxyNames(element.address, element.set);
    return [
      {
        kind: "proxy",
        names: known?.names ?? [],
        entries: known?.entries ?? [],
        set: element.set,
        expiresInSeconds: element.expiresInSeconds,
        ports,
      },
    ];
  });
}

/** Why an address the kernel holds on some ports only is not open on the asked one. */
function notOpenReason(status: LoadedStatus, address: string, asked: string, allowRanges: readonly PortRange[], proxyNames: ProxyNames) {
  const proxied = (status.proxy ?? []).filter(
    (e) => e.expiresInSeconds > 0 && e.ports !== "all" && e.ports.length > 0 && entryHolds(e.address, address),
  );
  if (allowRanges.length === 0 && proxied.length === 0) return undefined;
  const parts = [
    ...(allowRanges.length > 0 ? [`the allowlist opens it on ${allowRanges.map(formatPortRange).join(", ")} only`] : []),
    ...proxied.map((e) => {
      const known = proxyNames(e.address, e.set);
      const who =
        known === undefined || known.names.length === 0 ? "" : ` (for ${known.names.join(", ")}, entry ${known.entries.join(", ")})`;
      return `the DNS proxy admitted it on ${(e.ports as readonly PortRange[]).map(formatPortRange).join(", ")} only${who}`;
    }),
  ];
  return `not open on ${asked}: ${parts.join("; ")}`;
}

/**
 * One address against the loaded rules, as the kernel decides: a local address leaves through lo;
 * then the allow sets (each name on its own entry's ports, else the loaded networks), the DNS
 * proxy's admissions on their sets' ports, and DNS to the resolvers for port 53. Pure.
 */
export function explainAddress(
  status: LoadedStatus,
  asked: string,
  destination: Destination,
  names: readonly HeldName[],
  sources: ExplainSources = {},
): AddressExplanation {
  const proxyNames = sources.proxyNames ?? (() => undefined);
  const sentAs = unmapped(asked);
  const address = sentAs ?? asked;
  const holding = status.allowed.filter((entry) => entryHolds(entry.network, address));
  const everyPort = holding.filter((e) => e.ports === "all");
  const allowRanges = holding.flatMap((e) => (e.ports === "all" ? [] : e.ports));
  const byName = byNames(names, address, destination, { everyPort: everyPort.length > 0, ranges: allowRanges });
  const byCidr: AllowedBy[] = [
    ...(byName.some((b) => b.ports === "all") ? [] : everyPort.map((e): AllowedBy => ({ kind: "cidr", cidr: e.network, ports: "all" }))),
    ...(byName.length > 0
      ? []
      : holding.flatMap((e): AllowedBy[] => {
          const ranges = e.ports === "all" ? [] : rangesFor(e.ports, destination);
          return ranges.length > 0 ? [{ kind: "cidr", cidr: e.network, ports: ranges }] : [];
        })),
  ];
  const local = status.acceptsLoopback !== false && (sources.local ?? []).some((entry) => entryHolds(entry, address));
  const dnsHolds = status.dns === "any" || status.dns.some((entry) => entryHolds(entry, address));
  const byDns: AllowedBy[] =
    destination.port === 53 && dnsHolds ? [{ kind: "dns", resolvers: status.dns === "any" ? "any" : address, ports: [53] }] : [];
  const by: AllowedBy[] = [
    ...(local ? [{ kind: "local", ports: "all" } as const] : []),
    ...byName,
    ...byCidr,
    ...byProxy(status, address, destination, proxyNames),
    ...byDns,
  ];
  const denied = (status.denied ?? []).filter(
    (d) => d.direction === "out" && d.address === address && (destination.port === undefined || d.port === destination.port),
  );
  const askedPort =
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
      : (notOpenReason(status, address, askedPort, allowRanges, proxyNames) ??
        (dnsHolds && destination.port === undefined ? `${notListed}; only DNS (port 53) to it is allowed, as a resolver` : notListed));
  return {
    address: asked,
    ...(sentAs !== undefined && { sentAs }),
    allowed: by.length > 0,
    by,
    ...(reason !== undefined && { reason }),
    denied,
  };
}

const describeProxy = (by: Extract<AllowedBy, { kind: "proxy" }>): string => {
  const told =
    by.names.length === 0
      ? "an allowed name's answer told an app this address (which name is not known: no running watch says)"
      : `${by.names.join(", ")} (entry ${by.entries.join(", ")}) told an app this address`;
  const ports = by.ports === "all" ? "every port" : by.ports.map(formatPortRange).join(", ");
  return `the DNS proxy: ${told}; it stays admitted for ${by.expiresInSeconds}s more (${ports})`;
};

const describeBy = (by: AllowedBy): string => {
  if (by.kind === "proxy") return describeProxy(by);
  if (by.kind === "local") return "this namespace's own address or loopback (it leaves through lo, which is accepted; every port)";
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
  names: readonly HeldName[],
  name?: Explanation["name"],
  sources: ExplainSources = {},
): Explanation {
  const target = describeTarget(destination);
  const results = addresses.map((address) => explainAddress(status, address, destination, names, sources));
  const allowed = results.length > 0 && results.every((r) => r.allowed);
  const parts = results.map((r) =>
    [
      r.sentAs === undefined ? r.address : `${r.address} (IPv4-mapped: a connect to it goes out as IPv4 to ${r.sentAs})`,
      r.allowed ? ` is allowed by ${r.by.map(describeBy).join(" and ")}` : ` is denied: ${r.reason}`,
    ].join(""),
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
