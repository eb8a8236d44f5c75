import type { Cidr } from "../../net/ip.ts";
import { sourceComment, type Policy, type SetElement } from "../../policy/policy.ts";
import { chainsOf, unreachable, type Chain, type Direction, type Rule } from "../../policy/rules.ts";

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
const elementLines = (elements: readonly SetElement[], indent: string): string => {
  let width = 0;
  for (const e of elements) width = Math.max(width, e.cidr.text.length);
  const pad = Array.from({ length: width + 1 }, (_, n) => " ".repeat(n));
  const lines: string[] = [];
  // join: each line a flat string (a template literal would make a rope for the final join to take apart)
  for (const e of elements) lines.push([indent, e.cidr.text, ",", pad[width - e.cidr.text.length], " # ", sourceComment(e)].join(""));
  return lines.join("\n");
};

const renderElements = (elements: readonly SetElement[]): string[] =>
  elements.length === 0 ? [] : ["\t\telements = {", elementLines(elements, "\t\t\t"), "\t\t}"];

/** Interval sets hold CIDRs; auto-merge folds overlapping entries that the kernel would otherwise refuse. */
const renderSet = (name: string, type: string, elements: readonly SetElement[]): string[] => [
  `\tset ${name} {`,
  `\t\ttype ${type}`,
  "\t\tflags interval",
  "\t\tauto-merge",
  ...renderElements(elements),
  "\t}",
];

/**
 * The sets where the kernel records denied destinations (`record-denied`): one per direction and
 * family, keyed by (remote address, protocol, port). Each is bounded: once full, new destinations
 * are not recorded (the packet is still dropped and counted) until old ones time out. `update`
 * refreshes an element's timeout on each packet, so its age is `timeout - expires` (last seen), and
 * the `counter` in the statement counts its packets and bytes.
 */
export const DENIED = { size: 4096, timeoutSeconds: 3600 } as const;
export const deniedSetName = (direction: Direction, family: 4 | 6) => `denied_${direction}_v${family}`;

const renderDeniedSet = (direction: Direction, family: 4 | 6): string[] => [
  `\tset ${deniedSetName(direction, family)} {`,
  `\t\ttype ${family === 4 ? "ipv4_addr" : "ipv6_addr"} . inet_proto . inet_service`,
  `\t\tsize ${DENIED.size}`,
  "\t\tflags dynamic,timeout",
  `\t\ttimeout ${DENIED.timeoutSeconds / 3600}h`,
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

/** One rule of the neutral list as nft statements (the allowed addresses live in the sets). */
function ruleLines(rule: Rule, hook: Chain["hook"]): string[] {
  const direction = hook === "output" ? "oifname" : "iifname";
  switch (rule.kind) {
    case "established":
      return ["ct state established,related accept"];
    case "invalid":
      return ["ct state invalid drop"];
    case "loopback":
      return [`${direction} "lo" accept`];
    case "neighbour-discovery":
      return [`icmpv6 type ${ND_TYPES}${rule.destinations === undefined ? "" : ` ip6 daddr ${anonymousSet(rule.destinations)}`} ip6 hoplimit 255 accept`];
    case "listener-discovery":
      return [MLD[hook]];
    case "dns":
      return dnsRules(rule.dns, rule.gid);
    case "keep-loopback-destination":
      return ["ip daddr 127.0.0.0/8 return", "ip6 daddr ::1 return"];
    case "keep-group":
      return [`meta skgid ${rule.gid} return`];
    case "redirect-dns":
      return [`${TCP_UDP} th dport 53 redirect to :${rule.port}`];
    case "proxy-port":
      return [`ip daddr 127.0.0.1 ${TCP_UDP} th dport ${rule.port} accept`, `ip6 daddr ::1 ${TCP_UDP} th dport ${rule.port} accept`];
    case "proxy-admitted":
      return ["ip daddr @proxy_v4 accept", "ip6 daddr @proxy_v6 accept"];
    case "allowed":
      return ["ip daddr @allow_v4 accept", "ip6 daddr @allow_v6 accept"];
    case "record-denied":
      return recordLines(rule.direction);
    case "inbound-ports":
      return [`tcp dport { ${rule.ports.join(", ")} } accept`];
    case "verdict":
      if (rule.verdict === "accept") return [`counter name "${rule.counter}" accept`];
      return rule.verdict === "drop"
        ? [`counter name "${rule.counter}" drop`]
        : [`meta l4proto tcp counter name "${rule.counter}" reject with tcp reset`, `counter name "${rule.counter}" reject with icmpx type admin-prohibited`];
    default:
      return unreachable(rule);
  }
}

/**
 * The DNS proxy's redirect runs at -100 (dstnat's value; nft 1.0.6 accepts the name `dstnat` only
 * in prerouting), before the output filter (0) sees the packet.
 */
const renderChain = (chain: Chain): string[] => [
  `\tchain ${chain.type === "nat" ? "dns_redirect" : chain.hook} {`,
  chain.type === "nat" ? `\t\ttype nat hook ${chain.hook} priority -100; policy accept;` : `\t\ttype filter hook ${chain.hook} priority filter; policy drop;`,
  ...chain.rules.flatMap((rule) => ruleLines(rule, chain.hook)).map((line) => `\t\t${line}`),
  "\t}",
];

/**
 * The DNS proxy's admitted addresses: sets with a timeout per element (the answer's TTL, clamped,
 * plus grace), kept apart from the interval allow sets (timeouts and auto-merge do not mix).
 * `elements` carries what was admitted over a table replace (an `elements = { ... }` line of
 * validated addresses, or "").
 */
const renderTimeoutSet = (name: string, type: string, elements: string): string[] => [
  `\tset ${name} {`,
  `\t\ttype ${type}`,
  "\t\tflags timeout",
  ...(elements === "" ? [] : [`\t\t${elements}`]),
  "\t}",
];

/** What the DNS proxy admitted, to carry over a table replace (see `renderTimeoutSet`). */
export interface ProxyCarryOver {
  readonly v4: string;
  readonly v6: string;
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
    ...renderSet("allow_v4", "ipv4_addr", policy.allowV4),
    ...renderSet("allow_v6", "ipv6_addr", policy.allowV6),
    ...(policy.proxy === undefined ? [] : [...renderTimeoutSet("proxy_v4", "ipv4_addr", carryOver.v4), ...renderTimeoutSet("proxy_v6", "ipv6_addr", carryOver.v6)]),
    ...chains.flatMap(recordedDirections).flatMap((direction) => [...renderDeniedSet(direction, 4), ...renderDeniedSet(direction, 6)]),
    ...chains.flatMap(renderChain),
    "}",
  ];
  return `${lines.join("\n")}\n`;
}

/** The directions whose denied destinations a chain records. */
const recordedDirections = (chain: Chain): Direction[] => chain.rules.flatMap((rule) => (rule.kind === "record-denied" ? [rule.direction] : []));

/** The named counters a chain's rules count into. */
const counterOf = (chain: Chain): string[] => chain.rules.flatMap((rule) => (rule.kind === "verdict" ? [rule.counter] : []));

/**
 * Only the allow sets, for `watch`: flush both and add the new elements, in one file and so one
 * transaction. Chains, counters and conntrack are untouched: established connections and the drop
 * counts carry on. `auto-merge` folds overlapping elements here as it does in `renderNft`. Fails
 * (and changes nothing) when the table is not loaded.
 */
export function renderNftSetUpdate(policy: Policy): string {
  const sets = [
    { name: "allow_v4", elements: policy.allowV4 },
    { name: "allow_v6", elements: policy.allowV6 },
  ];
  const lines = [
    "#!/usr/sbin/nft -f",
    "# domainwall: new allow sets, loaded as one transaction. Do not edit.",
    ...sets.map((set) => `flush set ${TABLE} ${set.name}`),
    ...sets.flatMap((set) =>
      set.elements.length === 0 ? [] : [`add element ${TABLE} ${set.name} {`, elementLines(set.elements, "\t"), "}"],
    ),
  ];
  return `${lines.join("\n")}\n`;
}

/** Deletes the table in one transaction; succeeds whether or not it exists. */
export function renderNftRemove(): string {
  return `table ${TABLE}\ndelete table ${TABLE}\n`;
}
