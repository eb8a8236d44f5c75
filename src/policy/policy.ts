import type { Config } from "../config/config.ts";
import { resolveError } from "../errors.ts";
import { cidr, compareCidr, contains, makeCidr, parseAddress, sortByCidr, type Cidr, type Family } from "../net/ip.ts";
import type { HostResolution } from "../dns/resolve.ts";
import { privateReason, resolverNetworks, underDomain } from "./private.ts";
import { portElements, type PortElement, type PortEntry } from "./ports.ts";

export type { PortElement } from "./ports.ts";

/** One element of an allow set, with the names or settings it came from (rendered as a comment). */
export interface SetElement {
  readonly cidr: Cidr;
  readonly sources: readonly string[];
}

/** The port sets of one policy, one per family (see `Policy.allowPorts`). */
export interface PortSets {
  readonly v4: readonly PortElement[];
  readonly v6: readonly PortElement[];
}

/** Which ASCII characters a comment may hold as they are: `\w` and `.:/@+=,- `. */
const PLAIN: readonly boolean[] = Array.from({ length: 128 }, (_, c) => /[\w.:/@+=,\- ]/.test(String.fromCharCode(c)));

/**
 * The `#` comment of an element: where it came from. Sources are host names (validated), setting
 * names and file paths with line numbers; a path is the user's text, so anything but plain
 * characters becomes `?` and a comment can never end its line or carry ruleset syntax.
 */
export const sourceComment = (element: Pick<SetElement, "sources">): string => {
  const text = element.sources.length === 1 ? (element.sources[0] ?? "") : element.sources.join(", ");
  // The same as the replace below, without running a regular expression for each of 100,000 elements.
  for (let i = 0; i < text.length; i++) if (!PLAIN[text.charCodeAt(i)]) return text.replace(/[^\w.:/@+=,\- ]/g, "?");
  return text;
};

/**
 * What the firewall enforces, independent of the backend that renders it. Outbound: established and
 * related traffic, loopback, ICMPv6 neighbour discovery, DNS to `dns`, and the allow sets; the rest
 * is dropped (or rejected) and counted. Inbound is filtered only when `inboundPorts` is not empty.
 */
export interface Policy {
  readonly allowV4: readonly SetElement[];
  readonly allowV6: readonly SetElement[];
  /**
   * What the entries listed with ports open (`api.example.com:443`, `203.0.113.0/24:8000-8100/udp`):
   * network, protocol and port range, disjoint and sorted (see `portElements`). Absent when no entry
   * of the configuration has ports, so a policy without ports renders exactly as before; present
   * (maybe empty) as soon as one has, so `watch` always finds the sets it updates.
   */
  readonly allowPorts?: PortSets;
  /** Where DNS (UDP and TCP port 53) may go: anywhere (the original's behaviour) or the resolvers only. */
  readonly dns: { readonly kind: "any" } | { readonly kind: "servers"; readonly v4: readonly Cidr[]; readonly v6: readonly Cidr[] };
  /** Inbound TCP ports; empty means inbound traffic is left untouched. */
  readonly inboundPorts: readonly number[];
  /**
   * `--forward`: the egress policy also filters traffic forwarded through this machine (containers
   * or VMs it hosts). Absent or false: forwarded traffic is not filtered.
   */
  readonly forward?: boolean;
  /** `reject` answers refused traffic (TCP reset, ICMP admin-prohibited) so clients fail at once. */
  readonly verdict: "drop" | "reject";
}

export interface PolicySummary {
  readonly namesResolved: number;
  readonly namesSkipped: number;
  readonly namesFailed: number;
  readonly ipv4: number;
  readonly ipv6: number;
  readonly ports: readonly number[];
}

/**
 * Addresses a DNS answer may never open on its own: loopback, unspecified, link-local (which holds
 * the cloud metadata service 169.254.169.254), multicast, reserved, and AWS's IPv6 metadata address.
 * IPv4-mapped and NAT64 IPv6 answers are checked by the IPv4 address they embed.
 */
const FORBIDDEN_FROM_DNS: readonly { readonly cidr: Cidr; readonly what: string }[] = [
  { cidr: cidr("0.0.0.0/8"), what: "unspecified" },
  { cidr: cidr("127.0.0.0/8"), what: "loopback" },
  { cidr: cidr("169.254.0.0/16"), what: "link-local (cloud metadata)" },
  { cidr: cidr("224.0.0.0/4"), what: "multicast" },
  { cidr: cidr("240.0.0.0/4"), what: "reserved/broadcast" },
  { cidr: cidr("::/128"), what: "unspecified" },
  { cidr: cidr("::1/128"), what: "loopback" },
  { cidr: cidr("fe80::/10"), what: "link-local" },
  { cidr: cidr("ff00::/8"), what: "multicast" },
  { cidr: cidr("fd00:ec2::254/128"), what: "cloud metadata" },
];
const EMBEDDING_V4 = [cidr("::ffff:0:0/96"), cidr("64:ff9b::/96")];

function forbiddenReason(address: Cidr): string | undefined {
  const embedding = EMBEDDING_V4.find((range) => contains(range, address));
  const checked = embedding ? makeCidr(4, address.words.slice(3), 32) : address;
  return FORBIDDEN_FROM_DNS.find((range) => contains(range.cidr, checked))?.what;
}

interface Entry {
  readonly cidr: Cidr;
  readonly source: string;
}

/**
 * One element per network, sorted, its sources sorted and unique, from `sorted` (in `compareCidr`
 * order, as config's allow list is) and `more` (any order). One pass over `sorted`, which can hold
 * 100,000 entries: each visit of an entry in sorted order is a cache miss, as they were allocated
 * in the order of the file.
 */
function collect(sorted: readonly Entry[], more: readonly Entry[]): SetElement[] {
  const others = sortByCidr(more, (e) => e.cidr);
  const elements: { cidr: Cidr; sources: string[] }[] = [];
  let last: { cidr: Cidr; sources: string[] } | undefined;
  for (let i = 0, j = 0; i < sorted.length || j < others.length; ) {
    const a = sorted[i];
    const b = others[j];
    const next = (b === undefined || (a !== undefined && compareCidr(a.cidr, b.cidr) <= 0) ? sorted[i++] : others[j++]) as Entry;
    const order = last === undefined ? 1 : compareCidr(next.cidr, last.cidr);
    if (order < 0) return collect(sortByCidr(sorted, (e) => e.cidr), more);
    if (order > 0 || last === undefined) elements.push((last = { cidr: next.cidr, sources: [next.source] }));
    else if (!last.sources.includes(next.source)) last.sources.push(next.source);
  }
  for (const element of elements) if (element.sources.length > 1) element.sources.sort();
  return elements;
}

/** A name and the addresses it stands for now (answered by DNS, or kept by `watch`). */
export interface NameAddresses {
  readonly host: string;
  readonly addresses: readonly { readonly address: string; readonly family: Family }[];
}

/** How many names resolved, were skipped (no such name) or failed: for the summary. */
export type NameCounts = Pick<PolicySummary, "namesResolved" | "namesSkipped" | "namesFailed">;

/**
 * The apply-time gates on one resolution: throws a resolution error (exit 1) for names that failed
 * (unless `--on-resolve-error=warn`) or, with `--strict`, names that have no addresses; `outcome`
 * says what that means for the command ("nothing was loaded"). Otherwise the names to allow, and
 * a warning for each one left out.
 */
export function admitResolutions(config: Config, resolutions: readonly HostResolution[], outcome = "nothing was loaded"): { names: NameAddresses[]; warnings: string[]; counts: NameCounts } {
  const warnings: string[] = [];
  const failed = resolutions.filter((r) => r.status === "failed");
  const empty = resolutions.filter((r) => r.status === "empty");
  if (failed.length > 0 && config.onResolveError === "fail") {
    throw resolveError(`could not resolve ${failed.map((r) => `${r.host} (${r.error})`).join(", ")}; ${outcome}`);
  }
  if (empty.length > 0 && config.strict) {
    throw resolveError(`--strict: ${empty.map((r) => r.host).join(", ")} has no addresses; ${outcome}`);
  }
  for (const r of failed) warnings.push(`${r.host}: lookup failed (${r.error}); continuing without it (--on-resolve-error=warn)`);
  for (const r of empty) warnings.push(`${r.host}: no such name or no addresses; skipped`);
  const names = resolutions.flatMap((r) => (r.status === "empty" ? [] : [{ host: r.host, addresses: r.addresses }]));
  return { names, warnings, counts: { namesResolved: resolutions.filter((r) => r.status === "resolved").length, namesSkipped: empty.length, namesFailed: failed.length } };
}

/**
 * Turn validated configuration and each name's addresses into the policy. Pure: every decision
 * about what is allowed is made here (refused answers, --allow, sorting).
 */
export function buildPolicy(config: Config, names: readonly NameAddresses[], resolvers: readonly Cidr[]): { policy: Policy; warnings: string[] } {
  const warnings: string[] = [];
  const fromDns: Entry[] = [];
  const withPorts: PortEntry[] = [];
  const resolverNets = config.refusePrivateAnswers ? resolverNetworks(resolvers) : [];
  for (const resolution of names) {
    const ports = config.hostPorts.get(resolution.host);
    for (const answer of resolution.addresses) {
      const parsed = parseAddress(answer.address);
      if (parsed === undefined || parsed.family !== answer.family) {
        warnings.push(`${resolution.host}: ignoring malformed DNS answer ${JSON.stringify(answer.address)}`);
        continue;
      }
      const address = makeCidr(parsed.family, parsed.words, parsed.family === 4 ? 32 : 128);
      const reason = forbiddenReason(address);
      if (reason !== undefined && !config.allow.some((allowed) => contains(allowed.cidr, address))) {
        warnings.push(`${resolution.host}: not allowing ${address.text} (${reason}) from DNS; list it in --allow to permit it`);
        continue;
      }
      const refused = config.refusePrivateAnswers && !underDomain(resolution.host, config.privateDomains) ? privateReason(address, resolverNets) : undefined;
      if (refused !== undefined && !config.allow.some((allowed) => contains(allowed.cidr, address))) {
        warnings.push(`${resolution.host}: not allowing ${address.text} (${refused}) from DNS (--refuse-private-answers); list its domain in --private-domains or the address in --allow to permit it`);
        continue;
      }
      if (ports === undefined) fromDns.push({ cidr: address, source: resolution.host });
      else for (const range of ports) withPorts.push({ cidr: address, ports: range, source: resolution.host });
    }
  }
  const ported = config.hostPorts.size > 0 || config.allow.some((entry) => entry.ports !== undefined);
  const everyPort = ported ? config.allow.filter((entry) => entry.ports === undefined) : config.allow;
  if (ported) for (const entry of config.allow) if (entry.ports !== undefined) withPorts.push({ cidr: entry.cidr, ports: entry.ports, source: entry.source });
  const elements = collect(everyPort, fromDns);
  const firstV6 = elements.findIndex((e) => e.cidr.family === 6);
  const allowV4 = firstV6 < 0 ? elements : elements.slice(0, firstV6);
  const allowV6 = firstV6 < 0 ? [] : elements.slice(firstV6);
  const servers = collect([], resolvers.map((cidr) => ({ cidr, source: "" }))).map((e) => e.cidr);
  const portSet = ported ? portElements(withPorts) : [];
  const firstPortV6 = portSet.findIndex((e) => e.cidr.family === 6);
  const policy: Policy = {
    allowV4,
    allowV6,
    ...(ported && { allowPorts: { v4: firstPortV6 < 0 ? portSet : portSet.slice(0, firstPortV6), v6: firstPortV6 < 0 ? [] : portSet.slice(firstPortV6) } }),
    dns:
      config.dnsServers.kind === "any"
        ? { kind: "any" }
        : { kind: "servers", v4: servers.filter((c) => c.family === 4), v6: servers.filter((c) => c.family === 6) },
    inboundPorts: config.ports,
    ...(config.forward && { forward: true }),
    verdict: config.reject ? "reject" : "drop",
  };
  return { policy, warnings };
}

/** How many networks a port set holds (one network may hold several port ranges). */
const networks = (elements: readonly PortElement[] = []): number => new Set(elements.map((e) => e.cidr.text)).size;

/** Addresses and networks allowed, on every port or on some: what the summary counts. */
export const summarize = (counts: NameCounts, policy: Policy): PolicySummary => ({
  ...counts,
  ipv4: policy.allowV4.length + networks(policy.allowPorts?.v4),
  ipv6: policy.allowV6.length + networks(policy.allowPorts?.v6),
  ports: policy.inboundPorts,
});
