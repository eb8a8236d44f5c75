import type { Family } from "../../net/ip.ts";
import { sourceComment, type Policy } from "../../policy/policy.ts";
import { chainsOf, unreachable, type Rule } from "../../policy/rules.ts";
import { IPTABLES_NO_PROXY } from "../../messages.ts";
import { FORWARD_CHAIN, INPUT_CHAIN, isJump, OUR_CHAINS, OUTPUT_CHAIN, split, type IptablesState } from "./save.ts";

/** A namespace where domainwall never ran: what `render` assumes. */
export const FRESH: IptablesState = { outputJumps: 0, inputJumps: 0, outputChain: false, inputChain: false };

const ND = ["router-solicitation", "router-advertisement", "neighbour-solicitation", "neighbour-advertisement"];

/** Each hook's chain of ours. */
const CHAIN = { output: OUTPUT_CHAIN, input: INPUT_CHAIN, forward: FORWARD_CHAIN } as const;

/**
 * One rule of the neutral list as `-A` lines of one family (ICMPv6 rules only in IPv6: IPv4's ARP
 * is not IP and never reaches these chains); a drop or reject is counted by the rule's own counters.
 */
function ruleLines(rule: Rule, hook: keyof typeof CHAIN, family: Family): string[] {
  const chain = CHAIN[hook];
  const v6 = family === 6;
  switch (rule.kind) {
    case "established":
      return [`-A ${chain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`];
    case "invalid":
      return [`-A ${chain} -m conntrack --ctstate INVALID -j DROP`];
    case "loopback":
      return [`-A ${chain} ${hook === "input" ? "-i" : "-o"} lo -j ACCEPT`];
    case "neighbour-discovery":
      if (!v6) return [];
      return (rule.destinations?.map((d) => ` -d ${d.text}`) ?? [""]).flatMap((dest) =>
        ND.map((type) => `-A ${chain}${dest} -p ipv6-icmp -m icmp6 --icmpv6-type ${type} -m hl --hl-eq 255 -j ACCEPT`),
      );
    case "listener-discovery":
      if (!v6) return [];
      return hook !== "input"
        ? [131, 132, 143].map((type) => `-A ${chain} -d ff02::/16 -p ipv6-icmp -m icmp6 --icmpv6-type ${type} -m hl --hl-eq 1 -j ACCEPT`)
        : [`-A ${chain} -s fe80::/10 -p ipv6-icmp -m icmp6 --icmpv6-type 130 -m hl --hl-eq 1 -j ACCEPT`];
    case "dns": {
      if (rule.gid !== undefined) throw new Error(IPTABLES_NO_PROXY);
      const port53 = (proto: string, dest: string) => `-A ${chain}${dest} -p ${proto} -m ${proto} --dport 53 -j ACCEPT`;
      if (rule.dns.kind === "any") return [port53("udp", ""), port53("tcp", "")];
      return (v6 ? rule.dns.v6 : rule.dns.v4).flatMap((server) => [
        port53("udp", ` -d ${server.text}`),
        port53("tcp", ` -d ${server.text}`),
      ]);
    }
    case "allowed":
      return (v6 ? rule.allowV6 : rule.allowV4).flatMap((e) => [`# ${sourceComment(e)}`, `-A ${chain} -d ${e.cidr.text} -j ACCEPT`]);
    case "allowed-ports":
      return (v6 ? rule.v6 : rule.v4).flatMap((e) => {
        const ports = e.ports.first === e.ports.last ? `${e.ports.first}` : `${e.ports.first}:${e.ports.last}`;
        return [
          `# ${sourceComment(e)}`,
          `-A ${chain} -d ${e.cidr.text} -p ${e.ports.protocol} -m ${e.ports.protocol} --dport ${ports} -j ACCEPT`,
        ];
      });
    case "record-denied":
      return []; // no dynamic sets in iptables-legacy (without ipset): the verdict's counters are all it keeps
    case "inbound-ports":
      return rule.ports.map((port) => `-A ${chain} -p tcp -m tcp --dport ${port} -j ACCEPT`);
    case "keep-loopback-destination":
    case "keep-group":
    case "redirect-dns":
    case "proxy-guard":
    case "proxy-port":
    case "proxy-admitted":
    case "zone-proxy-queries":
    case "refuse-new-from-resolvers":
    case "refuse-forged-on-loopback":
      throw new Error(IPTABLES_NO_PROXY);
    case "verdict":
      if (rule.verdict === "accept") return [`-A ${chain} -j ACCEPT`];
      return rule.verdict === "drop"
        ? [`-A ${chain} -j DROP`]
        : [
            `-A ${chain} -p tcp -j REJECT --reject-with tcp-reset`,
            `-A ${chain} -j REJECT --reject-with ${v6 ? "icmp6-adm-prohibited" : "icmp-admin-prohibited"}`,
          ];
    default:
      return unreachable(rule);
  }
}

/** Make exactly one jump from `builtin` to `chain`, first in `builtin`: add a missing one, drop extras, move one that is not first back to the top. */
function jump(builtin: string, chain: string, present: number, wanted: boolean, behind = false): string[] {
  const target = wanted ? 1 : 0;
  if (present < target) return [`-I ${builtin} 1 -j ${chain}`];
  if (wanted && behind) return [...Array.from({ length: present }, () => `-D ${builtin} -j ${chain}`), `-I ${builtin} 1 -j ${chain}`];
  return Array.from({ length: present - target }, () => `-D ${builtin} -j ${chain}`);
}

/** The comment of the last rule of our output chain, before the policy's mark. */
export const POLICY_MARK_PREFIX = "domainwall policy ";

/**
 * What names a policy in both families: the first 16 hex digits of the SHA-256 of its rules for a
 * fresh namespace, both families. The two families are two commits (IPv4, then IPv6): an apply
 * killed between them leaves marks that differ, which `status` reports (the backend cannot be
 * atomic across families).
 */
export function policyMark(policy: Policy): string {
  const rules = chainsOf(policy).flatMap((chain) =>
    chain.rules.flatMap((rule) => [4, 6].flatMap((f) => ruleLines(rule, chain.hook, f as Family))),
  );
  return new Bun.CryptoHasher("sha256").update(rules.join("\n")).digest("hex").slice(0, 16);
}

/**
 * The `iptables-legacy-restore --noflush` (or ip6tables) input for one family: the same policy as
 * the nft ruleset, rule for rule. `:CHAIN - [0:0]` creates or flushes only our chain; everything is
 * one commit, so each family changes atomically. One rule per allowed address (see README: limits).
 */
export function renderIptables(policy: Policy, family: Family, state: IptablesState = FRESH): string {
  const chains = chainsOf(policy);
  const inbound = chains.some((chain) => chain.hook === "input");
  const forward = chains.some((chain) => chain.hook === "forward");
  /** An optional chain of ours: declared when wanted or present (which flushes it), deleted when present and no longer wanted. */
  const optional = (chain: string, wanted: boolean, present: boolean | undefined) => ({
    declare: wanted || present === true ? [`:${chain} - [0:0]`] : [],
    drop: !wanted && present === true && !state.referenced?.includes(chain) ? [`-X ${chain}`] : [],
  });
  const input = optional(INPUT_CHAIN, inbound, state.inputChain);
  const forwarded = optional(FORWARD_CHAIN, forward, state.forwardChain);
  const lines = [
    `# domainwall: generated ${family === 4 ? "iptables" : "ip6tables"}-legacy-restore --noflush input (IPv${family}). Do not edit.`,
    "*filter",
    `:${OUTPUT_CHAIN} - [0:0]`,
    ...input.declare,
    ...forwarded.declare,
    ...chains.flatMap((chain) => {
      return chain.rules.flatMap((rule) => ruleLines(rule, chain.hook, family));
    }),
    // After the verdict, so never evaluated: it names the policy, the same in both families (policyMark).
    `-A ${OUTPUT_CHAIN} -m comment --comment "${POLICY_MARK_PREFIX}${policyMark(policy)}"`,
    ...jump("OUTPUT", OUTPUT_CHAIN, state.outputJumps, true, state.behind?.includes(OUTPUT_CHAIN)),
    ...jump("INPUT", INPUT_CHAIN, state.inputJumps, inbound, state.behind?.includes(INPUT_CHAIN)),
    ...jump("FORWARD", FORWARD_CHAIN, state.forwardJumps ?? 0, forward, state.behind?.includes(FORWARD_CHAIN)),
    ...input.drop,
    ...forwarded.drop,
    "COMMIT",
  ];
  return `${lines.join("\n")}\n`;
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
  const exists = { [OUTPUT_CHAIN]: current.outputChain, [INPUT_CHAIN]: current.inputChain, [FORWARD_CHAIN]: current.forwardChain === true };
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
    ...jump("FORWARD", FORWARD_CHAIN, current.forwardJumps ?? 0, false),
    ...rules,
    ...jumps,
    ...stale.flatMap((chain) => (current.referenced?.includes(chain) ? [`-F ${chain}`] : [`-F ${chain}`, `-X ${chain}`])),
    "COMMIT",
    "",
  ].join("\n");
}
