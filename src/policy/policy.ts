import type { Config } from "../config/config.ts";
import { resolveError } from "../errors.ts";
import { cidr, compareCidr, contains, parseCidr, sortByCidr, type Cidr, type Family } from "../net/ip.ts";
import type { LocalNet } from "../net/interfaces.ts";
import { answerGateOf, refusedAnswer, type AnswerGate } from "./answer-gate.ts";
import type { HostResolution } from "../dns/resolve.ts";
import { portElements, type PortElement, type PortEntry } from "./ports.ts";
import { proxyPortSets, type ProxyPortSet, type ProxySetNames } from "./proxy-sets.ts";

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
  /**
   * The IPv6 prefixes on this namespace's links (`net/interfaces.ts`, read when the policy is
   * built): outgoing neighbour discovery may go there besides link-local and link-scope multicast.
   */
  readonly onLink: readonly Cidr[];
  /**
   * This namespace's own addresses, on-link networks and gateways (`net/interfaces.ts`, read when
   * the policy is built): with `--refuse-private-answers`, DNS may not open them. Not rendered.
   */
  readonly localNets?: readonly LocalNet[];
  /** Inbound TCP ports; empty means inbound traffic is left untouched. */
  readonly inboundPorts: readonly number[];
  /**
   * `--forward`: the egress policy also filters traffic forwarded through this machine (containers
   * or VMs it hosts). Absent or false: forwarded traffic is not filtered.
   */
  readonly forward?: boolean;
  /**
   * `reject` answers refused traffic (TCP reset, ICMP admin-prohibited) so clients fail at once.
   * `audit` (--audit) refuses nothing: what would be dropped is recorded and counted, then accepted.
   */
  readonly verdict: "drop" | "reject" | "audit";
  /**
   * `watch --dns-proxy`: port-53 traffic goes to the proxy on loopback `port`, except from sockets
   * of group `gid` (the proxy's own), which alone may reach the resolvers; the proxy's answers
   * admit addresses into timeout sets.
   */
  readonly proxy?: ProxyRules;
  /** With `proxy`: what its answers admit, and where. */
  readonly proxyAdmission?: ProxyAdmission;
}

export interface ProxyRules {
  readonly port: number;
  readonly gid: number;
  /**
   * The timeout sets of entries listed with ports (see `proxyPortSets`), each accepted only on its
   * ports; absent when no entry has ports (then only proxy_v4/proxy_v6, every port).
   */
  readonly portSets?: readonly ProxyPortSet[];
}

/** What the DNS proxy admits, derived once from the configuration (see `buildPolicy`). */
export interface ProxyAdmission {
  /** The names and wildcards the proxy answers for (the rest get NXDOMAIN, or pass in audit mode). */
  readonly list: { readonly names: readonly string[]; readonly wildcards: readonly string[] };
  /** Which sets each list entry's answers go into, by the matcher's entry (`proxyEntryOf`). */
  readonly admitInto: ReadonlyMap<string, ProxySetNames>;
  /** What an answer may admit (the same gate as the resolver path's). */
  readonly gate: AnswerGate;
  /** `--audit`: unlisted names are forwarded and admitted, and recorded. */
  readonly audit: boolean;
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
 * A DNS answer as a full-length CIDR: an address and nothing else (no `/prefix`), strictly parsed.
 * Its text is kept when it already is canonical (nearly every answer), not printed again.
 */
const parseAnswer = (text: string): Cidr | undefined => {
  const parsed = text.includes("/") ? undefined : parseCidr(text);
  return parsed?.ok ? parsed.cidr : undefined;
};

interface Entry {
  readonly cidr: Cidr;
  readonly source: string;
}

/**
 * One element per network, sorted, its sources sorted and unique, from `sorted` (in `compareCidr`
 * order, as config's allow list is) and `more` (any order). One pass over `sorted`, which can hold
 * 100,000 entries (an allow file's are allocated in sorted order, net/cidr-columns.ts, so the pass
 * reads memory in order).
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
    if (order < 0)
      return collect(
        sortByCidr(sorted, (e) => e.cidr),
        more,
      );
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

/** The families a failed resolution names; one that does not say is taken as both failing. */
const failedFamiliesOf = (r: Extract<HostResolution, { status: "failed" }>): readonly Family[] => r.failedFamilies ?? [4, 6];

/**
 * A name one of whose families failed while the other returned addresses (an AAAA query refused or
 * SERVFAILed while A answers): it is resolved, with those addresses; `watch` keeps retrying the
 * failed family. A name fails only when no family gave an address and at least one failed.
 */
const isPartial = (r: HostResolution): r is Extract<HostResolution, { status: "failed" }> =>
  r.status === "failed" && failedFamiliesOf(r).length < 2 && r.addresses.length > 0;

/**
 * Whether DNS failed and not one name resolved: at least one name failed and none has an address.
 * `--on-resolve-error=warn` means "go on without the names that failed", not "load a policy that
 * allows nothing by name" — that is an outage caused by DNS, and exits 1 like any other failure.
 */
export function noNameResolved(resolutions: readonly HostResolution[]): boolean {
  const failed = resolutions.some((r) => r.status === "failed" && !isPartial(r));
  return failed && resolutions.every((r) => r.status === "empty" || r.addresses.length === 0);
}

/**
 * The apply-time gates on one resolution: throws a resolution error (exit 1) for names that failed
 * (unless `--on-resolve-error=warn`, and even then when no name resolved at all) or, with
 * `--strict`, names that have no addresses; `outcome` says what that means for the command
 * ("nothing was loaded"). Otherwise the names to allow, and a warning for each one left out or
 * only partly resolved.
 */
export function admitResolutions(
  config: Config,
  resolutions: readonly HostResolution[],
  outcome = "nothing was loaded",
): { names: NameAddresses[]; warnings: string[]; counts: NameCounts } {
  const warnings: string[] = [];
  const failed = resolutions.filter((r): r is Extract<HostResolution, { status: "failed" }> => r.status === "failed" && !isPartial(r));
  const partial = resolutions.filter(isPartial);
  const empty = resolutions.filter((r) => r.status === "empty");
  const failures = () => failed.map((r) => `${r.host} (${r.error})`).join(", ");
  if (failed.length > 0 && config.onResolveError === "fail") throw resolveError(`could not resolve ${failures()}; ${outcome}`);
  if (noNameResolved(resolutions)) {
    throw resolveError(
      `no name resolved and DNS failed for ${failures()}: even with --on-resolve-error=warn this would allow nothing by name; ${outcome}`,
    );
  }
  if (empty.length > 0 && config.strict) {
    throw resolveError(`--strict: ${empty.map((r) => r.host).join(", ")} has no addresses; ${outcome}`);
  }
  for (const r of partial) {
    const [family] = failedFamiliesOf(r);
    warnings.push(
      `${r.host}: ${family === 4 ? "A" : "AAAA"} lookup failed (${r.error}); allowing its IPv${family === 4 ? 6 : 4} addresses only`,
    );
  }
  for (const r of failed) warnings.push(`${r.host}: lookup failed (${r.error}); continuing without it (--on-resolve-error=warn)`);
  for (const r of empty) warnings.push(`${r.host}: no such name or no addresses; skipped`);
  const names = resolutions.flatMap((r) => (r.status === "empty" ? [] : [{ host: r.host, addresses: r.addresses }]));
  const namesResolved = resolutions.filter((r) => r.status === "resolved").length + partial.length;
  return { names, warnings, counts: { namesResolved, namesSkipped: empty.length, namesFailed: failed.length } };
}

/**
 * Turn validated configuration and each name's addresses into the policy. Pure: every decision
 * about what is allowed is made here (refused answers, --allow, sorting). With the DNS proxy the
 * names' addresses are admitted into its timeout sets instead (watch does that), so the allow sets
 * hold only `--allow`, the allow file and IP literals: pass no names.
 */
export function buildPolicy(
  config: Config,
  names: readonly NameAddresses[],
  resolvers: readonly Cidr[],
  onLink: readonly Cidr[] = [],
  localNets: readonly LocalNet[] = [],
): { policy: Policy; warnings: string[]; refusedNames: string[] } {
  const warnings: string[] = [];
  /** Names that had addresses, every one of them refused: not counted as resolved. */
  const refusedNames: string[] = [];
  const fromDns: Entry[] = [];
  const withPorts: PortEntry[] = [];
  const gate = answerGateOf(config, resolvers, localNets);
  for (const resolution of names) {
    const ports = config.hostPorts.get(resolution.host);
    const before = fromDns.length + withPorts.length;
    for (const answer of resolution.addresses) {
      const address = parseAnswer(answer.address);
      if (address === undefined || address.family !== answer.family) {
        warnings.push(`${resolution.host}: ignoring malformed DNS answer ${JSON.stringify(answer.address)}`);
        continue;
      }
      const refused = refusedAnswer(gate, resolution.host, address);
      if (refused?.kind === "forbidden" || refused?.kind === "mapped") {
        const hint = refused.kind === "forbidden" ? "; list it in --allow to permit it" : "";
        // Loopback is always allowed (rules.ts): localhost's 127.0.0.1 needs no word.
        if (!isLoopback(address)) warnings.push(`${resolution.host}: not allowing ${address.text} (${refused.reason}) from DNS${hint}`);
        continue;
      }
      if (refused?.kind === "private") {
        warnings.push(
          `${resolution.host}: not allowing ${address.text} (${refused.reason}) from DNS (--refuse-private-answers); list its domain in --private-domains or the address in --allow to permit it`,
        );
        continue;
      }
      if (ports === undefined) fromDns.push({ cidr: address, source: resolution.host });
      else for (const range of ports) withPorts.push({ cidr: address, ports: range, source: resolution.host });
    }
    if (resolution.addresses.length > 0 && fromDns.length + withPorts.length === before) refusedNames.push(resolution.host);
  }
  // With the proxy, names are admitted into its sets (proxy.portSets for those with ports), not these.
  const ported = (config.dnsProxy === undefined && config.hostPorts.size > 0) || config.allow.some((entry) => entry.ports !== undefined);
  const everyPort = ported ? config.allow.filter((entry) => entry.ports === undefined) : config.allow;
  if (ported)
    for (const entry of config.allow)
      if (entry.ports !== undefined) withPorts.push({ cidr: entry.cidr, ports: entry.ports, source: entry.source });
  const elements = collect(everyPort, fromDns);
  const firstV6 = elements.findIndex((e) => e.cidr.family === 6);
  const allowV4 = firstV6 < 0 ? elements : elements.slice(0, firstV6);
  const allowV6 = firstV6 < 0 ? [] : elements.slice(firstV6);
  const servers = collect(
    [],
    resolvers.map((cidr) => ({ cidr, source: "" })),
  ).map((e) => e.cidr);
  const portSet = ported ? portElements(withPorts) : [];
  const firstPortV6 = portSet.findIndex((e) => e.cidr.family === 6);
  const policy: Policy = {
    allowV4,
    allowV6,
    ...(ported && {
      allowPorts: { v4: firstPortV6 < 0 ? portSet : portSet.slice(0, firstPortV6), v6: firstPortV6 < 0 ? [] : portSet.slice(firstPortV6) },
    }),
    dns:
      config.dnsServers.kind === "any"
        ? { kind: "any" }
        : { kind: "servers", v4: servers.filter((c) => c.family === 4), v6: servers.filter((c) => c.family === 6) },
    onLink,
    ...(localNets.length > 0 && { localNets }),
    inboundPorts: config.ports,
    ...(config.forward && { forward: true }),
    verdict: config.audit ? "audit" : config.reject ? "reject" : "drop",
    ...(config.dnsProxy && proxyRules(config, config.dnsProxy, gate)),
  };
  return { policy, warnings, refusedNames };
}

const LOOPBACK = [cidr("127.0.0.0/8"), cidr("::1")];
const isLoopback = (address: Cidr): boolean => LOOPBACK.some((range) => contains(range, address));

/**
 * The proxy's part of the policy, derived here once: its port and group and a timeout set pair per
 * distinct port spec of the list (what the table declares), which sets each entry's answers go
 * into, and the answer gate.
 */
function proxyRules(
  config: Config,
  proxy: { readonly port: number; readonly gid: number },
  gate: AnswerGate,
): { proxy: ProxyRules; proxyAdmission: ProxyAdmission } {
  const { sets, byEntry } = proxyPortSets([...config.hosts, ...config.wildcards], config.hostPorts);
  return {
    proxy: { port: proxy.port, gid: proxy.gid, ...(sets.length > 0 && { portSets: sets }) },
    proxyAdmission: { list: { names: config.hosts, wildcards: config.wildcards }, admitInto: byEntry, gate, audit: config.audit },
  };
}
const networks = (elements: readonly PortElement[] = []): number => new Set(elements.map((e) => e.cidr.text)).size;

/** Addresses and networks allowed, on every port or on some: what the summary counts. */
export const summarize = (counts: NameCounts, policy: Policy): PolicySummary => ({
  ...counts,
  ipv4: policy.allowV4.length + networks(policy.allowPorts?.v4),
  ipv6: policy.allowV6.length + networks(policy.allowPorts?.v6),
  ports: policy.inboundPorts,
});
