import type { Family } from "../../net/ip.ts";
import { sourceComment, type Policy } from "../../policy/policy.ts";

/** domainwall's own chains; the built-in chains only get one jump each, and keep their policies. */
export const OUTPUT_CHAIN = "DOMAINWALL-OUTPUT";
export const INPUT_CHAIN = "DOMAINWALL-INPUT";

/** What of ours is in a family's filter table now, read from `*-save` before writing. */
export interface IptablesState {
  /** How many `-j DOMAINWALL-OUTPUT` / `-j DOMAINWALL-INPUT` jumps the built-in chains hold. */
  readonly outputJumps: number;
  readonly inputJumps: number;
  readonly outputChain: boolean;
  readonly inputChain: boolean;
  /**
   * Our chains that someone else's rule jumps to (anything but the plain jump from OUTPUT/INPUT,
   * e.g. `-A FORWARD -i eth0 -j DOMAINWALL-INPUT`). The kernel refuses to delete a referenced chain,
   * and we never touch another's rule: such a chain is emptied instead of deleted (an empty chain
   * returns to its caller).
   */
  readonly referenced?: readonly string[];
}

/** A namespace where domainwall never ran: what `render` assumes. */
export const FRESH: IptablesState = { outputJumps: 0, inputJumps: 0, outputChain: false, inputChain: false };

const ND = ["router-solicitation", "router-advertisement", "neighbour-solicitation", "neighbour-advertisement"];

/**
 * ICMPv6 neighbour discovery is untracked by conntrack; hop limit 255 proves it is on-link.
 * (IPv4's ARP is not IP and never reaches these chains.)
 */
const ndRules = (chain: string, family: Family) =>
  family === 6 ? ND.map((type) => `-A ${chain} -p ipv6-icmp -m icmp6 --icmpv6-type ${type} -m hl --hl-eq 255 -j ACCEPT`) : [];

/**
 * Multicast listener discovery (RFC 4890 4.4.1), as the nft renderer does: reports (131, 143) and
 * dones (132) out to link-scope groups with hop limit 1; queries (130) in from link-local sources.
 */
const mldRules = (chain: string, family: Family, direction: "-o" | "-i") =>
  family !== 6
    ? []
    : direction === "-o"
      ? [131, 132, 143].map((type) => `-A ${chain} -d ff02::/16 -p ipv6-icmp -m icmp6 --icmpv6-type ${type} -m hl --hl-eq 1 -j ACCEPT`)
      : [`-A ${chain} -s fe80::/10 -p ipv6-icmp -m icmp6 --icmpv6-type 130 -m hl --hl-eq 1 -j ACCEPT`];

const common = (chain: string, family: Family, loopback: "-o" | "-i") => [
  `-A ${chain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
  `-A ${chain} -m conntrack --ctstate INVALID -j DROP`,
  `-A ${chain} ${loopback} lo -j ACCEPT`,
  ...ndRules(chain, family),
  ...mldRules(chain, family, loopback),
];

const dnsRules = (policy: Policy, family: Family): string[] => {
  const dns = (proto: string, dest: string) => `-A ${OUTPUT_CHAIN}${dest} -p ${proto} -m ${proto} --dport 53 -j ACCEPT`;
  if (policy.dns.kind === "any") return [dns("udp", ""), dns("tcp", "")];
  const servers = family === 4 ? policy.dns.v4 : policy.dns.v6;
  return servers.flatMap((server) => [dns("udp", ` -d ${server.text}`), dns("tcp", ` -d ${server.text}`)]);
};

const finalRules = (chain: string, family: Family, verdict: Policy["verdict"]): string[] =>
  verdict === "drop"
    ? [`-A ${chain} -j DROP`]
    : [
        `-A ${chain} -p tcp -j REJECT --reject-with tcp-reset`,
        `-A ${chain} -j REJECT --reject-with ${family === 4 ? "icmp-admin-prohibited" : "icmp6-adm-prohibited"}`,
      ];

/** Make exactly one jump from `builtin` to `chain`: add a missing one, drop extras. */
function jump(builtin: string, chain: string, present: number, wanted: boolean): string[] {
  const target = wanted ? 1 : 0;
  if (present < target) return [`-I ${builtin} 1 -j ${chain}`];
  return Array.from({ length: present - target }, () => `-D ${builtin} -j ${chain}`);
}

/**
 * The `iptables-legacy-restore --noflush` (or ip6tables) input for one family: the same policy as
 * the nft ruleset, rule for rule. `:CHAIN - [0:0]` creates or flushes only our chain; everything is
 * one commit, so each family changes atomically. One rule per allowed address (see README: limits).
 */
export function renderIptables(policy: Policy, family: Family, state: IptablesState = FRESH): string {
  const allowed = family === 4 ? policy.allowV4 : policy.allowV6;
  const inbound = policy.inboundPorts.length > 0;
  const lines = [
    `# domainwall: generated ${family === 4 ? "iptables" : "ip6tables"}-legacy-restore --noflush input (IPv${family}). Do not edit.`,
    "*filter",
    `:${OUTPUT_CHAIN} - [0:0]`,
    ...(inbound || state.inputChain ? [`:${INPUT_CHAIN} - [0:0]`] : []),
    ...common(OUTPUT_CHAIN, family, "-o"),
    ...dnsRules(policy, family),
    ...allowed.flatMap((e) => [`# ${sourceComment(e)}`, `-A ${OUTPUT_CHAIN} -d ${e.cidr.text} -j ACCEPT`]),
    ...finalRules(OUTPUT_CHAIN, family, policy.verdict),
    ...(inbound
      ? [
          ...common(INPUT_CHAIN, family, "-i"),
          ...policy.inboundPorts.map((port) => `-A ${INPUT_CHAIN} -p tcp -m tcp --dport ${port} -j ACCEPT`),
          `-A ${INPUT_CHAIN} -j DROP`,
        ]
      : []),
    ...jump("OUTPUT", OUTPUT_CHAIN, state.outputJumps, true),
    ...jump("INPUT", INPUT_CHAIN, state.inputJumps, inbound),
    ...(!inbound && state.inputChain && !state.referenced?.includes(INPUT_CHAIN) ? [`-X ${INPUT_CHAIN}`] : []),
    "COMMIT",
  ];
  return `${lines.join("\n")}\n`;
}

/** Remove our jumps and chains, leaving everything else in the table as it was. */
export function renderIptablesRemove(state: IptablesState): string {
  return renderIptablesRestore("", state);
}

const OUR_CHAINS = [OUTPUT_CHAIN, INPUT_CHAIN] as const;
/** The built-in chain that enters each of ours by one plain jump. */
const ENTRY = { [OUTPUT_CHAIN]: "OUTPUT", [INPUT_CHAIN]: "INPUT" } as const;
const COUNTERS = /^(\[\d+:\d+\] )?(.*)$/;
const split = (line: string) => {
  const match = COUNTERS.exec(line)!;
  return { counters: match[1] ?? "", rule: match[2]! };
};
const isJump = (rule: string) => OUR_CHAINS.some((chain) => rule === `-A ${ENTRY[chain]} -j ${chain}`);
const isOurs = (line: string) => {
  const { rule } = split(line);
  return OUR_CHAINS.some((chain) => line.startsWith(`:${chain} `) || rule.startsWith(`-A ${chain} `)) || isJump(rule);
};

/**
 * domainwall's part of a family's `*-save -c -t filter` output, as restore lines: our chain
 * declarations, their rules (with `[packets:bytes]` counters, as saved) and the plain jumps into
 * them from OUTPUT/INPUT. Nothing of anyone else's; "" when nothing of ours is loaded.
 */
export function ourPart(saved: string): string {
  let table = "";
  const lines = saved.split("\n").filter((line) => {
    if (line.startsWith("*")) table = line.slice(1).trim();
    return table === "filter" && isOurs(line);
  });
  return lines.map((line) => (line.startsWith(":") ? `${line.split(" ")[0]} - [0:0]` : line)).map((line) => `${line}\n`).join("");
}

/**
 * The `*-restore --noflush --counters` input that puts a family's part (from `ourPart`) back over
 * what is loaded now, touching nothing else: the current jumps into our chains go, the part's chains
 * are declared (which creates or flushes each) and refilled, its jumps are inserted first in
 * OUTPUT/INPUT (as apply does), and our chains it does not have are flushed and deleted. One commit.
 * With an empty part this is `remove`.
 */
export function renderIptablesRestore(part: string, current: IptablesState): string {
  const lines = part.split("\n").filter((line) => line !== "");
  const declared = OUR_CHAINS.filter((chain) => lines.some((line) => line.startsWith(`:${chain} `)));
  const exists = { [OUTPUT_CHAIN]: current.outputChain, [INPUT_CHAIN]: current.inputChain };
  const stale = OUR_CHAINS.filter((chain) => exists[chain] && !declared.includes(chain));
  const rules = lines.filter((line) => !line.startsWith(":") && !isJump(split(line).rule));
  const jumps = lines.flatMap((line) => {
    const { counters, rule } = split(line);
    return isJump(rule) ? [`${counters}${rule.replace(/^-A (\S+) /, "-I $1 1 ")}`] : [];
  });
  return [
    "*filter",
    ...declared.map((chain) => `:${chain} - [0:0]`),
    ...jump("OUTPUT", OUTPUT_CHAIN, current.outputJumps, false),
    ...jump("INPUT", INPUT_CHAIN, current.inputJumps, false),
    ...rules,
    ...jumps,
    ...stale.flatMap((chain) => (current.referenced?.includes(chain) ? [`-F ${chain}`] : [`-F ${chain}`, `-X ${chain}`])),
    "COMMIT",
    "",
  ].join("\n");
}

/** Read our chains and jumps from `iptables-legacy-save -t filter` output. */
export function parseIptablesState(save: string): IptablesState {
  const lines = save.split("\n").map((line) => split(line).rule);
  const referenced = OUR_CHAINS.filter((chain) =>
    lines.some((l) => l.startsWith("-A ") && !isJump(l) && new RegExp(` -[jg] ${chain}( |$)`).test(l)),
  );
  return {
    outputJumps: lines.filter((l) => l === `-A OUTPUT -j ${OUTPUT_CHAIN}`).length,
    inputJumps: lines.filter((l) => l === `-A INPUT -j ${INPUT_CHAIN}`).length,
    outputChain: lines.some((l) => l.startsWith(`:${OUTPUT_CHAIN} `)),
    inputChain: lines.some((l) => l.startsWith(`:${INPUT_CHAIN} `)),
    ...(referenced.length > 0 ? { referenced } : {}),
  };
}
