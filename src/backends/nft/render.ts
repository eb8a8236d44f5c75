import type { Cidr } from "../../net/ip.ts";
import { sourceComment, type Policy, type PortElement, type SetElement } from "../../policy/policy.ts";
import { chainsOf, DENIED_RECORD, unreachable, type Chain, type Direction, type Rule } from "../../policy/rules.ts";
import { formatPortRange, PROTOCOLS, type PortRange } from "../../net/port-range.ts";
import type { ProxyPortSet } from "../../policy/proxy-sets.ts";
import type { ProxyCarryOver } from "../backend.ts";

/** domainwall owns exactly this table and never touches any other. */
export const NFT_TABLE = "domainwall";
export const NFT_FAMILY = "inet";
const TABLE = `${NFT_FAMILY} ${NFT_TABLE}`;

/** Neighbour discovery (see `Rule`): on-link only, by hop limit 255. */
const ND_TYPES = "{ nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert }";
const MLD = {
  output: "icmpv6 type { mld-listener-report, mld-listener-done, mld2-listener-report } ip6 daddr ff02::/16 ip6 hoplimit 1 accept",
  input: "icmpv6 type mld-listener-query ip6 saddr fe80::/10 ip6 hoplimit 1 accept",
} as const;

/**
 * One line per element, aligned, with a `#` comment naming the hosts or settings it came from; as
 * one string (no newline at the end), so a set of 100,000 elements is not copied from array to array.
 */
const elementLines = <E extends Pick<SetElement, "sources">>(elements: readonly E[], indent: string, texts: readonly string[]): string => {
  let width = 0;
  for (const t of texts) width = Math.max(width, t.length);
  const pad = Array.from({ length: width + 1 }, (_, n) => " ".repeat(n));
  const lines: string[] = [];
  // join: each line a flat string (a template literal would make a rope for the final join to take apart)
  for (let i = 0; i < elements.length; i++)
    lines.push([indent, texts[i], ",", pad[width - texts[i]!.length], " # ", sourceComment(elements[i]!)].join(""));
  return lines.join("\n");
};

/** `203.0.113.0/24 . tcp . 443`, `198.51.100.8 . udp . 8000-8100`: a port set's element. */
const portText = (e: PortElement): string =>
  `${e.cidr.text} . ${e.ports.protocol} . ${e.ports.first}${e.ports.last === e.ports.first ? "" : `-${e.ports.last}`}`;

/** The prefix length of the IPv6 networks kept in their own hash set: a subnet's (RFC 4291 interface ids). */
export const NET64 = 64;
/** `ip6 daddr` with its interface id cleared: what `allow_net64_v6` is looked up with. */
const NET64_MASK = "ffff:ffff:ffff:ffff::";

/** Elements with their texts (what the set's lines print), in the order given. */
interface Texted<E> {
  readonly elements: E[];
  readonly texts: string[];
}
const texted = <E>(): Texted<E> => ({ elements: [], texts: [] });

/**
 * `elements` (one family, in the order given) by where they go, with their texts: single
 * addresses (/32, /128), IPv6 /64 networks (the network address: `allow_net64_v6` is looked up with
 * the interface id cleared), and the other networks. One pass that reads each element's network
 * once.
 */
function byKind(elements: readonly SetElement[]): {
  addresses: Texted<SetElement>;
  net64: Texted<SetElement>;
  networks: Texted<SetElement>;
} {
  const kinds = { addresses: texted<SetElement>(), net64: texted<SetElement>(), networks: texted<SetElement>() };
  for (const e of elements) {
    const { family, prefix, text } = e.cidr;
    const kind = prefix === (family === 4 ? 32 : 128) ? kinds.addresses : family === 6 && prefix === NET64 ? kinds.net64 : kinds.networks;
    kind.elements.push(e);
    kind.texts.push(kind === kinds.net64 ? net64Text(text) : text);
  }
  return kinds;
}

/**
 * A hash set of this many elements or more is declared with a `size`: the kernel then builds a hash
 * table of that size at once instead of one that grows while the elements go in (faster to load).
 * The size is a limit, room for twice the elements (`hashSetSize`): a `watch` update that would pass
 * it fails like any failed update and is retried as a full load, which sizes the sets anew.
 */
export const SIZED_FROM = 4096;
/** The `size` of a hash set of `count` elements: the power of two at or above twice the count. */
export const hashSetSize = (count: number): number => 2 ** Math.ceil(Math.log2(2 * count));

/**
 * A /64's element in `allow_net64_v6`: its network address. A /64's canonical text (net/ip.ts) is
 * always `address/64`: the address is cut off it (not checked char by char nor printed again from
 * the words for each of 40,000, which the profile showed).
 */
const net64Text = (text: string): string => text.slice(0, text.length - NET64_SUFFIX_LENGTH);
const NET64_SUFFIX_LENGTH = `/${NET64}`.length;

/**
 * The sets of a policy: the every-port sets always, the port sets when some entry has ports. Every
 * port: single addresses (what names resolve to, most of an allow list) in plain hash sets
 * (`allow_addr_v4`, `allow_addr_v6`), IPv6 /64 networks (a subnet each, the usual IPv6 entry) in the
 * hash set `allow_net64_v6` looked up with the packet's interface id cleared, the other networks in
 * interval sets (`allow_v4`, `allow_v6`). A hash set takes less of nft's and the kernel's time and
 * memory to load than the two interval ends of each element, and a packet's lookup is one hash
 * probe. An element inside a network of another set is in both: the same packets match either way.
 */
function setsOf(policy: Policy): {
  name: string;
  type: string;
  interval: boolean;
  merge: boolean;
  size?: number;
  lines: (indent: string) => string;
  linesOf: (indent: string, only: ReadonlySet<string>) => string;
  texts: readonly string[];
  empty: boolean;
}[] {
  const set = <E extends Pick<SetElement, "sources">>(
    name: string,
    type: string,
    interval: boolean,
    merge: boolean,
    { elements, texts }: Texted<E>,
  ) => ({
    name,
    type,
    interval,
    merge,
    ...(!interval && elements.length >= SIZED_FROM && { size: hashSetSize(elements.length) }),
    lines: (indent: string) => elementLines(elements, indent, texts),
    /** Only the elements whose text is in `only` (the ones a change adds). */
    linesOf: (indent: string, only: ReadonlySet<string>) => {
      const picked = texts.flatMap((t, i) => (only.has(t) ? [i] : []));
      return elementLines(
        picked.map((i) => elements[i]!),
        indent,
        picked.map((i) => texts[i]!),
      );
    },
    texts,
    empty: elements.length === 0,
  });
  const v4 = byKind(policy.allowV4);
  const v6 = byKind(policy.allowV6);
  const ports = (elements: readonly PortElement[]): Texted<PortElement> => ({ elements: [...elements], texts: elements.map(portText) });
  return [
    set("allow_addr_v4", "ipv4_addr", false, false, v4.addresses),
    set("allow_addr_v6", "ipv6_addr", false, false, v6.addresses),
    set("allow_net64_v6", "ipv6_addr", false, false, v6.net64),
    set("allow_v4", "ipv4_addr", true, true, v4.networks),
    set("allow_v6", "ipv6_addr", true, true, v6.networks),
    ...(policy.allowPorts
      ? [
          set("allow_ports_v4", "ipv4_addr . inet_proto . inet_service", true, false, ports(policy.allowPorts.v4)),
          set("allow_ports_v6", "ipv6_addr . inet_proto . inet_service", true, false, ports(policy.allowPorts.v6)),
        ]
      : []),
  ];
}

/**
 * Interval sets hold CIDRs (and port ranges); auto-merge folds overlapping CIDRs that the kernel
 * would otherwise refuse. It does not merge concatenations (nft 1.0.6 accepts the flag and still
 * refuses an element inside another), so the port sets go without it: their elements are disjoint
 * already (policy/ports.ts). The hash sets (addresses, /64s) need neither: their elements are unique (policy).
 */
const renderSet = (set: ReturnType<typeof setsOf>[number]): string[] => [
  `\tset ${set.name} {`,
  `\t\ttype ${set.type}`,
  ...(set.size === undefined ? [] : [`\t\tsize ${set.size}`]),
  ...(set.interval ? ["\t\tflags interval"] : []),
  ...(set.merge ? ["\t\tauto-merge"] : []),
  ...(set.empty ? [] : ["\t\telements = {", set.lines("\t\t\t"), "\t\t}"]),
  "\t}",
];

/**
 * The sets where the kernel records denied destinations (`record-denied`): one per direction and
 * family, keyed by (remote address, protocol, port). Each is bounded: once full, new destinations
 * are not recorded (the packet is still dropped and counted) until old ones time out. `update`
 * refreshes an element's timeout on each packet, so its age is `timeout - expires` (last seen), and
 * the `counter` in the statement counts its packets and bytes.
 */
export const deniedSetName = (direction: Direction, family: 4 | 6) => `denied_${direction}_v${family}`;

const renderDeniedSet = (direction: Direction, family: 4 | 6): string[] => [
  `\tset ${deniedSetName(direction, family)} {`,
  `\t\ttype ${family === 4 ? "ipv4_addr" : "ipv6_addr"} . inet_proto . inet_service`,
  `\t\tsize ${DENIED_RECORD.size}`,
  "\t\tflags dynamic,timeout",
  `\t\ttimeout ${DENIED_RECORD.timeoutSeconds / 3600}h`,
  "\t}",
];

/** Out: the destination and its port; in: the source and our port. ICMP and other protocols: port 0. */
function recordLines(direction: Direction): string[] {
  const remote = direction === "out" ? "daddr" : "saddr";
  return [4, 6].flatMap((family) => {
    const address = `${family === 4 ? "ip" : "ip6"} ${remote}`;
    const set = `@${deniedSetName(direction, family as 4 | 6)}`;
    return [
      `meta l4proto { tcp, udp } update ${set} { ${address} . meta l4proto . th dport counter }`,
      `meta l4proto != { tcp, udp } update ${set} { ${address} . meta l4proto . 0 counter }`,
    ];
  });
}

const anonymousSet = (cidrs: readonly Cidr[]) => `{ ${cidrs.map((c) => c.text).join(", ")} }`;

const TCP_UDP = "meta l4proto { tcp, udp }";

function dnsRules(dns: Policy["dns"], gid: number | undefined): string[] {
  const port53 = `${gid === undefined ? "" : `meta skgid ${gid} `}${TCP_UDP} th dport 53`;
  if (dns.kind === "any") return [`${port53} accept`];
  return [
    ...(dns.v4.length > 0 ? [`${port53} ip daddr ${anonymousSet(dns.v4)} accept`] : []),
    ...(dns.v6.length > 0 ? [`${port53} ip6 daddr ${anonymousSet(dns.v6)} accept`] : []),
  ];
}

/** `tcp dport 443`, `tcp dport { 80, 443, 8000-8100 }`: one match per protocol of a port list. */
function portMatches(ports: readonly PortRange[]): string[] {
  return PROTOCOLS.flatMap((protocol) => {
    const of = ports.filter((p) => p.protocol === protocol).map((p) => `${p.first}${p.last === p.first ? "" : `-${p.last}`}`);
    if (of.length === 0) return [];
    return [`${protocol} dport ${of.length === 1 ? of[0] : `{ ${of.join(", ")} }`}`];
  });
}

/** A port set of the DNS proxy: its addresses, on its ports only. */
const proxyPortRules = (set: ProxyPortSet): string[] =>
  portMatches(set.ports).flatMap((match) => [`ip daddr @${set.v4} ${match} accept`, `ip6 daddr @${set.v6} ${match} accept`]);

/**
 * The DNS proxy's rules on the resolvers' side (see `zone-proxy-queries` and
 * `refuse-new-from-resolvers`): `side` is the resolver's address (daddr for the proxy's queries,
 * saddr for what comes from the resolvers), never on loopback, by family; one rule per family that
 * has resolvers (every non-loopback address for "any"), `match` before and `action` after.
 */
function resolverRules(resolvers: Policy["dns"], side: "daddr" | "saddr", match: string, action: string): string[] {
  const family = (ip: "ip" | "ip6", loopback: string, cidrs: readonly Cidr[] | undefined): string[] =>
    cidrs?.length === 0
      ? []
      : [`${match} ${ip} ${side} != ${loopback}${cidrs === undefined ? "" : ` ${ip} ${side} ${anonymousSet(cidrs)}`} ${action}`];
  return [
    ...family("ip", "127.0.0.0/8", resolvers.kind === "any" ? undefined : resolvers.v4),
    ...family("ip6", "::1", resolvers.kind === "any" ? undefined : resolvers.v6),
  ];
}

/** One rule of the neutral list as nft statements (the allowed addresses live in the sets). */
function ruleLines(rule: Rule, hook: Chain["hook"]): string[] {
  const direction = hook === "input" ? "iifname" : "oifname";
  switch (rule.kind) {
    case "established":
      return ["ct state established,related accept"];
    case "invalid":
      return ["ct state invalid drop"];
    case "loopback":
      return [`${direction} "lo" accept`];
    case "neighbour-discovery":
      return [
        `icmpv6 type ${ND_TYPES}${rule.destinations === undefined ? "" : ` ip6 daddr ${anonymousSet(rule.destinations)}`} ip6 hoplimit 255 accept`,
      ];
    case "listener-discovery":
      return [MLD[hook === "input" ? "input" : "output"]];
    case "dns":
      return dnsRules(rule.dns, rule.gid);
    case "keep-loopback-destination":
      return ["ip daddr 127.0.0.0/8 return", "ip6 daddr ::1 return"];
    case "keep-group":
      return [`meta skgid ${rule.gid} return`];
    case "redirect-dns":
      return [`${TCP_UDP} th dport 53 redirect to :${rule.port}`];
    case "proxy-guard":
      return [
        `${TCP_UDP} th dport 53 meta skgid != ${rule.gid} ip daddr != 127.0.0.0/8 drop`,
        `${TCP_UDP} th dport 53 meta skgid != ${rule.gid} ip6 daddr != ::1 drop`,
        `ip saddr 127.0.0.1 ${TCP_UDP} th sport ${rule.port} meta skgid != ${rule.gid} drop`,
        `ip6 saddr ::1 ${TCP_UDP} th sport ${rule.port} meta skgid != ${rule.gid} drop`,
        `oifname "lo" ${TCP_UDP} th sport 53 fib saddr type != local drop`,
      ];
    case "zone-proxy-queries":
      return resolverRules(rule.resolvers, "daddr", `meta skgid ${rule.gid} ${TCP_UDP} th dport 53`, `ct original zone set ${rule.zone}`);
    case "refuse-forged-on-loopback":
      return [
        `iifname "lo" ${TCP_UDP} th sport 53 fib saddr type != local ct status & dnat == 0 counter drop`,
        `iifname "lo" ct direction reply ct status dnat ${TCP_UDP} th sport ${rule.port} counter drop`,
      ];
    case "refuse-new-from-resolvers":
      return resolverRules(rule.resolvers, "saddr", `${TCP_UDP} th sport 53`, "ct state new drop");
    case "proxy-port":
      return [`ip daddr 127.0.0.1 ${TCP_UDP} th dport ${rule.port} accept`, `ip6 daddr ::1 ${TCP_UDP} th dport ${rule.port} accept`];
    case "proxy-admitted":
      return ["ip daddr @proxy_v4 accept", "ip6 daddr @proxy_v6 accept", ...rule.portSets.flatMap(proxyPortRules)];
    case "allowed":
      return [
        "ip daddr @allow_addr_v4 accept",
        "ip6 daddr @allow_addr_v6 accept",
        `ip6 daddr & ${NET64_MASK} @allow_net64_v6 accept`,
        "ip daddr @allow_v4 accept",
        "ip6 daddr @allow_v6 accept",
      ];
    case "allowed-ports":
      return ["ip daddr . meta l4proto . th dport @allow_ports_v4 accept", "ip6 daddr . meta l4proto . th dport @allow_ports_v6 accept"];
    case "record-denied":
      return recordLines(rule.direction);
    case "inbound-ports":
      return [`tcp dport { ${rule.ports.join(", ")} } accept`];
    case "verdict":
      if (rule.verdict === "accept") return [`counter name "${rule.counter}" accept`];
      return rule.verdict === "drop"
        ? [`counter name "${rule.counter}" drop`]
        : [
            `meta l4proto tcp counter name "${rule.counter}" reject with tcp reset`,
            `counter name "${rule.counter}" reject with icmpx type admin-prohibited`,
          ];
    default:
      return unreachable(rule);
  }
}

/**
 * The DNS proxy's redirect runs at -100 (dstnat's value; nft 1.0.6 accepts the name `dstnat` only
 * in prerouting), before the output filter (0) sees the packet; its zone chain at raw (-300),
 * before conntrack (-200) looks the packet up; its input guard beside the filter (policy accept).
 */
const CHAIN_NAME = { nat: "dns_redirect", zone: "dns_zone_out", guard: "dns_guard_in" } as const;
const renderChain = (chain: Chain): string[] => [
  `\tchain ${chain.type === "filter" ? chain.hook : CHAIN_NAME[chain.type]} {`,
  chain.type === "nat"
    ? `\t\ttype nat hook ${chain.hook} priority -100; policy accept;`
    : chain.type === "filter"
      ? `\t\ttype filter hook ${chain.hook} priority filter; policy drop;`
      : `\t\ttype filter hook ${chain.hook} priority ${chain.type === "zone" ? "raw" : "filter"}; policy accept;`,
  ...chain.rules.flatMap((rule) => ruleLines(rule, chain.hook)).map((line) => `\t\t${line}`),
  "\t}",
];

/**
 * The DNS proxy's admitted addresses: sets with a timeout per element (the answer's TTL, clamped,
 * plus grace), kept apart from the interval allow sets (timeouts and auto-merge do not mix).
 * `elements` carries what was admitted over a table replace (an `elements = { ... }` line of
 * validated addresses, or "").
 */
const renderTimeoutSet = (name: string, type: string, elements: string, comment?: string): string[] => [
  `\tset ${name} {${comment === undefined ? "" : ` # ${comment}`}`,
  `\t\ttype ${type}`,
  "\t\tflags timeout",
  ...(elements === "" ? [] : [`\t\t${elements}`]),
  "\t}",
];

/** The DNS proxy's timeout sets: every port, then one pair per port spec with a comment naming its ports and entries. */
function proxySets(proxy: NonNullable<Policy["proxy"]>, carryOver: ProxyCarryOver): string[] {
  return [
    ...renderTimeoutSet("proxy_v4", "ipv4_addr", carryOver.v4),
    ...renderTimeoutSet("proxy_v6", "ipv6_addr", carryOver.v6),
    ...(proxy.portSets ?? []).flatMap((set) => {
      const comment = `${set.ports.map(formatPortRange).join(", ")}: ${set.entries.join(", ")}`; // entries are validated names and wildcards
      return [
        ...renderTimeoutSet(set.v4, "ipv4_addr", carryOver.ports?.get(set.v4) ?? "", comment),
        ...renderTimeoutSet(set.v6, "ipv6_addr", carryOver.ports?.get(set.v6) ?? "", comment),
      ];
    }),
  ];
}

/**
 * The whole ruleset as one `nft -f` file: create-if-missing, delete, re-create. The kernel applies
 * the file as a single transaction, so the old table is replaced atomically or not at all.
 * Deterministic: same policy, same bytes.
 */
export function renderNft(policy: Policy, carryOver: ProxyCarryOver = { v4: "", v6: "" }): string {
  const chains = chainsOf(policy);
  const lines = [
    "#!/usr/sbin/nft -f",
    "# domainwall: generated ruleset, loaded as one transaction. Do not edit.",
    `table ${TABLE}`,
    `delete table ${TABLE}`,
    `table ${TABLE} {`,
    ...chains.flatMap((chain) => counterOf(chain)).flatMap((name) => [`\tcounter ${name} {`, "\t}"]),
    ...setsOf(policy).flatMap(renderSet),
    ...(policy.proxy === undefined ? [] : proxySets(policy.proxy, carryOver)),
    ...[...new Set(chains.flatMap(recordedDirections))].flatMap((direction) => [
      ...renderDeniedSet(direction, 4),
      ...renderDeniedSet(direction, 6),
    ]),
    ...chains.flatMap(renderChain),
    "}",
  ];
  return `${lines.join("\n")}\n`;
}

/** The directions whose denied destinations a chain records. */
const recordedDirections = (chain: Chain): Direction[] =>
  chain.rules.flatMap((rule) => (rule.kind === "record-denied" ? [rule.direction] : []));

/** The named counters a chain's rules count into. */
const counterOf = (chain: Chain): string[] => chain.rules.flatMap((rule) => (rule.kind === "verdict" ? [rule.counter] : []));

/**
 * Only the allow sets, for `watch`: flush them (the port sets too, when the policy has them) and add the new elements, in one file and so one
 * transaction. Chains, counters and conntrack are untouched: established connections and the drop
 * counts carry on. `auto-merge` folds overlapping elements here as it does in `renderNft`. Fails
 * (and changes nothing) when the table is not loaded.
 */
export function renderNftSetUpdate(policy: Policy): string {
  const sets = setsOf(policy);
  const lines = [
    "#!/usr/sbin/nft -f",
    "# domainwall: new allow sets, loaded as one transaction. Do not edit.",
    ...sets.map((set) => `flush set ${TABLE} ${set.name}`),
    ...sets.flatMap((set) => (set.empty ? [] : [`add element ${TABLE} ${set.name} {`, set.lines("\t"), "}"])),
  ];
  return `${lines.join("\n")}\n`;
}

/**
 * `watch`'s usual update, from the sets `before` holds (the loaded policy) to `after`'s, as one
 * transaction that names only what changed: in the hash sets (single addresses, /64s) the elements
 * gone are deleted and the new ones added; an interval set that changed is flushed and filled
 * (auto-merge may hold a merged range where the policy has two, so deleting one is not exact).
 * Each hash set also has one element it keeps deleted and added back. The kernel refuses the whole
 * transaction if a deleted element is not there (a set flushed or changed from outside): the caller
 * then falls back to renderNftSetUpdate, so the next update refills such a set as before.
 * Undefined when the sets are the same. A different set list (port sets added or gone) is
 * renderNftSetUpdate itself.
 */
export function renderNftSetDelta(before: Policy, after: Policy): string | undefined {
  const old = new Map(setsOf(before).map((set) => [set.name, set]));
  const sets = setsOf(after);
  if (sets.length !== old.size || sets.some((set) => old.get(set.name)?.interval !== set.interval)) return renderNftSetUpdate(after);
  const lines: string[] = [];
  let changed = false;
  for (const set of sets) {
    const was = old.get(set.name)!;
    const [had, has] = [new Set(was.texts), new Set(set.texts)];
    const gone = was.texts.filter((t) => !has.has(t));
    const added = new Set(set.texts.filter((t) => !had.has(t)));
    const differs = gone.length > 0 || added.size > 0;
    changed ||= differs;
    if (set.interval) {
      if (differs)
        lines.push(`flush set ${TABLE} ${set.name}`, ...(set.empty ? [] : [`add element ${TABLE} ${set.name} {`, set.lines("\t"), "}"]));
      continue;
    }
    // One element the set keeps, deleted and added back: if the set was flushed (or lost it) from
    // outside, the kernel refuses the whole transaction and the caller flushes and refills.
    const kept = set.texts.find((t) => had.has(t));
    if (kept !== undefined) gone.push(kept), added.add(kept);
    if (gone.length > 0) lines.push(`delete element ${TABLE} ${set.name} {`, gone.map((t) => `\t${t},`).join("\n"), "}");
    if (added.size > 0) lines.push(`add element ${TABLE} ${set.name} {`, set.linesOf("\t", added), "}");
  }
  if (!changed) return undefined;
  return ["#!/usr/sbin/nft -f", "# domainwall: changes to the allow sets, loaded as one transaction. Do not edit.", ...lines, ""].join(
    "\n",
  );
}

/** Deletes the table in one transaction; succeeds whether or not it exists. */
export function renderNftRemove(): string {
  return `table ${TABLE}\ndelete table ${TABLE}\n`;
}
