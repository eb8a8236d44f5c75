import type { Cidr } from "../../net/ip.ts";
import { sourceComment, type Policy, type SetElement } from "../../policy/policy.ts";

/** domainwall owns exactly this table and never touches any other. */
export const NFT_TABLE = "domainwall";
export const NFT_FAMILY = "inet";
const TABLE = `${NFT_FAMILY} ${NFT_TABLE}`;

/**
 * ICMPv6 neighbour discovery is not tracked by conntrack, so `ct state established,related` never
 * matches it; without these IPv6 stops working. Hop limit 255 proves the packet is on-link (RFC 4861).
 */
const ND_TYPES = "{ nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert }";
/**
 * Multicast listener discovery (RFC 4890 4.4.1: not to be dropped), untracked like ND: the host's
 * own reports and dones go out to link-scope groups with hop limit 1, so they cannot leave the
 * link; a router's queries come in from a link-local address with hop limit 1.
 */
const MLD_OUT = "icmpv6 type { mld-listener-report, mld-listener-done, mld2-listener-report } ip6 daddr ff02::/16 ip6 hoplimit 1 accept";
const MLD_IN = "icmpv6 type mld-listener-query ip6 saddr fe80::/10 ip6 hoplimit 1 accept";

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

const anonymousSet = (cidrs: readonly Cidr[]) => `{ ${cidrs.map((c) => c.text).join(", ")} }`;

function dnsRules(policy: Policy): string[] {
  const dns = "meta l4proto { tcp, udp } th dport 53";
  if (policy.dns.kind === "any") return [`${dns} accept`];
  return [
    ...(policy.dns.v4.length > 0 ? [`${dns} ip daddr ${anonymousSet(policy.dns.v4)} accept`] : []),
    ...(policy.dns.v6.length > 0 ? [`${dns} ip6 daddr ${anonymousSet(policy.dns.v6)} accept`] : []),
  ];
}

function finalRules(counter: string, verdict: Policy["verdict"]): string[] {
  if (verdict === "drop") return [`counter name "${counter}" drop`];
  return [
    `meta l4proto tcp counter name "${counter}" reject with tcp reset`,
    `counter name "${counter}" reject with icmpx type admin-prohibited`,
  ];
}

const chain = (name: string, hook: string, rules: readonly string[]): string[] => [
  `\tchain ${name} {`,
  `\t\ttype filter hook ${hook} priority filter; policy drop;`,
  ...rules.map((rule) => `\t\t${rule}`),
  "\t}",
];

/**
 * The whole ruleset as one `nft -f` file: create-if-missing, delete, re-create. The kernel applies
 * the file as a single transaction, so the old table is replaced atomically or not at all.
 * Deterministic: same policy, same bytes.
 */
export function renderNft(policy: Policy): string {
  const trafficIn = policy.inboundPorts.length > 0;
  const lines = [
    "#!/usr/sbin/nft -f",
    "# domainwall: generated ruleset, loaded as one transaction. Do not edit.",
    `table ${TABLE}`,
    `delete table ${TABLE}`,
    `table ${TABLE} {`,
    "\tcounter output_dropped {",
    "\t}",
    ...(trafficIn ? ["\tcounter input_dropped {", "\t}"] : []),
    ...renderSet("allow_v4", "ipv4_addr", policy.allowV4),
    ...renderSet("allow_v6", "ipv6_addr", policy.allowV6),
    ...chain("output", "output", [
      "ct state established,related accept",
      "ct state invalid drop",
      'oifname "lo" accept',
      `icmpv6 type ${ND_TYPES} ip6 hoplimit 255 accept`,
      MLD_OUT,
      ...dnsRules(policy),
      "ip daddr @allow_v4 accept",
      "ip6 daddr @allow_v6 accept",
      ...finalRules("output_dropped", policy.verdict),
    ]),
    ...(trafficIn
      ? chain("input", "input", [
          "ct state established,related accept",
          "ct state invalid drop",
          'iifname "lo" accept',
          `icmpv6 type ${ND_TYPES} ip6 hoplimit 255 accept`,
          MLD_IN,
          `tcp dport { ${policy.inboundPorts.join(", ")} } accept`,
          'counter name "input_dropped" drop',
        ])
      : []),
    "}",
  ];
  return `${lines.join("\n")}\n`;
}

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
