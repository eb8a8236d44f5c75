/**
 * Reading a family's filter table as `iptables-legacy-save -c -t filter` (or ip6tables) prints it:
 * what of ours is loaded, our part of it (for a snapshot), and the numbers `status` shows. Lines
 * may carry `[packets:bytes]` counters.
 */
import type { PortRange } from "../../net/port-range.ts";

/** domainwall's own chains; the built-in chains only get one jump each, and keep their policies. */
export const OUTPUT_CHAIN = "DOMAINWALL-OUTPUT";
export const INPUT_CHAIN = "DOMAINWALL-INPUT";
export const FORWARD_CHAIN = "DOMAINWALL-FORWARD";

/** What of ours is in a family's filter table now, read from `*-save` before writing. */
export interface IptablesState {
  /** How many `-j DOMAINWALL-OUTPUT` / `-j DOMAINWALL-INPUT` jumps the built-in chains hold. */
  readonly outputJumps: number;
  readonly inputJumps: number;
  readonly outputChain: boolean;
  readonly inputChain: boolean;
  /** `--forward`'s chain and the jumps into it from FORWARD; absent when there are none. */
  readonly forwardJumps?: number;
  readonly forwardChain?: boolean;
  /**
   * Our chains that someone else's rule jumps to (anything but the plain jump from OUTPUT/INPUT,
   * e.g. `-A FORWARD -i eth0 -j DOMAINWALL-INPUT`). The kernel refuses to delete a referenced chain,
   * and we never touch another's rule: such a chain is emptied instead of deleted (an empty chain
   * returns to its caller).
   */
  readonly referenced?: readonly string[];
  /**
   * Our chains whose jump is not the first rule of its built-in chain: a rule above it (someone's
   * `-I OUTPUT 1 -j ACCEPT`) decides first. `apply` moves the jump back to the top.
   */
  readonly behind?: readonly string[];
}

export const OUR_CHAINS = [OUTPUT_CHAIN, INPUT_CHAIN, FORWARD_CHAIN] as const;
/** The built-in chain that enters each of ours by one plain jump. */
const ENTRY = { [OUTPUT_CHAIN]: "OUTPUT", [INPUT_CHAIN]: "INPUT", [FORWARD_CHAIN]: "FORWARD" } as const;
const COUNTERS = /^(\[\d+:\d+\] )?(.*)$/;
export const split = (line: string) => {
  const match = COUNTERS.exec(line)!;
  return { counters: match[1] ?? "", rule: match[2]! };
};
export const isJump = (rule: string) => OUR_CHAINS.some((chain) => rule === `-A ${ENTRY[chain]} -j ${chain}`);
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
  return lines
    .map((line) => (line.startsWith(":") ? `${line.split(" ")[0]} - [0:0]` : line))
    .map((line) => `${line}\n`)
    .join("");
}

/** Read our chains and jumps from `iptables-legacy-save -t filter` output. */
export function parseIptablesState(save: string): IptablesState {
  const lines = save.split("\n").map((line) => split(line).rule);
  const referenced = OUR_CHAINS.filter((chain) =>
    lines.some((l) => l.startsWith("-A ") && !isJump(l) && new RegExp(` -[jg] ${chain}( |$)`).test(l)),
  );
  const forwardJumps = lines.filter((l) => l === `-A FORWARD -j ${FORWARD_CHAIN}`).length;
  const forwardChain = lines.some((l) => l.startsWith(`:${FORWARD_CHAIN} `));
  const first = (builtin: string) => lines.find((l) => l.startsWith(`-A ${builtin} `));
  const behind = OUR_CHAINS.filter(
    (chain) => lines.some((l) => l === `-A ${ENTRY[chain]} -j ${chain}`) && first(ENTRY[chain]) !== `-A ${ENTRY[chain]} -j ${chain}`,
  );
  return {
    outputJumps: lines.filter((l) => l === `-A OUTPUT -j ${OUTPUT_CHAIN}`).length,
    inputJumps: lines.filter((l) => l === `-A INPUT -j ${INPUT_CHAIN}`).length,
    outputChain: lines.some((l) => l.startsWith(`:${OUTPUT_CHAIN} `)),
    inputChain: lines.some((l) => l.startsWith(`:${INPUT_CHAIN} `)),
    ...(forwardJumps > 0 && { forwardJumps }),
    ...(forwardChain && { forwardChain }),
    ...(referenced.length > 0 ? { referenced } : {}),
    ...(behind.length > 0 ? { behind } : {}),
  };
}

/**
 * Why a family's loaded rules are not enforced (empty when they are): a chain of ours that its
 * built-in chain does not jump to, or whose jump is not first. `label` names the family.
 */
export function enforcementProblems(saved: string, label: string): string[] {
  const state = parseIptablesState(saved);
  const present = { [OUTPUT_CHAIN]: state.outputChain, [INPUT_CHAIN]: state.inputChain, [FORWARD_CHAIN]: state.forwardChain === true };
  const jumps = { [OUTPUT_CHAIN]: state.outputJumps, [INPUT_CHAIN]: state.inputJumps, [FORWARD_CHAIN]: state.forwardJumps ?? 0 };
  return OUR_CHAINS.flatMap((chain) => {
    if (!present[chain]) return [];
    if (jumps[chain] === 0) return [`${label}: ${ENTRY[chain]} does not jump to ${chain}`];
    return jumpBehind(state, chain, label);
  });
}

/** Our jumps that a rule above them in their built-in chain decides before (an ACCEPT there lets everything out). */
export function jumpsBehind(saved: string, label: string): string[] {
  const state = parseIptablesState(saved);
  return OUR_CHAINS.flatMap((chain) => jumpBehind(state, chain, label));
}

const jumpBehind = (state: IptablesState, chain: (typeof OUR_CHAINS)[number], label: string): string[] =>
  state.behind?.includes(chain) ? [`${label}: a rule in ${ENTRY[chain]} comes before the jump to ${chain} and decides first`] : [];

const COUNTED = /^\[(\d+):(\d+)\] (-A \S+ .*)$/;

const rulesOf = (saved: string, chain: string) =>
  saved.split("\n").flatMap((line) => {
    const match = COUNTED.exec(line);
    return match?.[3]?.startsWith(`-A ${chain} `) ? [{ packets: Number(match[1]), bytes: Number(match[2]), rule: match[3] }] : [];
  });

/** The allowed entries of our output chain: `-A DOMAINWALL-OUTPUT -d CIDR -j ACCEPT`, nothing more (DNS and ICMPv6 rules match more). */
export const allowedEntries = (saved: string): number =>
  rulesOf(saved, OUTPUT_CHAIN).filter((r) => /^-A \S+ -d \S+ -j ACCEPT$/.test(r.rule)).length;

const PORT_RULE = /^-A \S+ -d (\S+) -p (tcp|udp) -m (?:tcp|udp) --dport ([0-9]+(?::[0-9]+)?) -j ACCEPT$/;

/**
 * The entries with ports of our output chain: `-A DOMAINWALL-OUTPUT -d CIDR -p PROTO -m PROTO
 * --dport PORTS -j ACCEPT`. DNS to a resolver looks the same, so rules to port 53 alone are not
 * counted (an entry opening only port 53 is then missing from the count, never an extra one).
 */
export const portEntries = (saved: string): number =>
  rulesOf(saved, OUTPUT_CHAIN).filter((r) => {
    const match = PORT_RULE.exec(r.rule);
    return match !== null && match[3] !== "53";
  }).length;

/** The entries with ports of our output chain, as `portEntries` counts them: network and port range. */
export const portNetworks = (saved: string): { network: string; ports: PortRange }[] =>
  rulesOf(saved, OUTPUT_CHAIN).flatMap((r) => {
    const match = PORT_RULE.exec(r.rule);
    if (match === null || match[3] === "53") return [];
    const [first, last] = (match[3] ?? "").split(":").map(Number) as [number, number | undefined];
    return [
      {
        network: (match[1] ?? "").replace(/\/(32|128)$/, ""),
        ports: { protocol: match[2] as PortRange["protocol"], first, last: last ?? first },
      },
    ];
  });

/**
 * What the final rules of `chain` counted: the drop (or reject) rules (the INVALID drop is not among
 * them), or in audit mode the one unconditional ACCEPT that ends the chain (`audit`).
 */
export function verdictCounters(saved: string, chain: string): { packets: number; bytes: number; audit: boolean } {
  const rules = rulesOf(saved, chain);
  const accept = rules.filter((r) => r.rule === `-A ${chain} -j ACCEPT`);
  const final = accept.length > 0 ? accept : rules.filter((r) => / -j (DROP|REJECT)/.test(r.rule) && !r.rule.includes("INVALID"));
  return { packets: final.reduce((n, r) => n + r.packets, 0), bytes: final.reduce((n, r) => n + r.bytes, 0), audit: accept.length > 0 };
}

/** The allowed networks of our output chain, as `allowedEntries` counts them. */
export const allowedNetworks = (saved: string): string[] =>
  rulesOf(saved, OUTPUT_CHAIN)
    .flatMap((r) => /^-A \S+ -d (\S+) -j ACCEPT$/.exec(r.rule)?.[1] ?? [])
    .map((cidr) => cidr.replace(/\/(32|128)$/, ""));

/** Whether our output chain accepts whatever leaves through lo (`-o lo -j ACCEPT`): a connect to this host's own addresses. */
export const acceptsLoopback = (saved: string): boolean =>
  rulesOf(saved, OUTPUT_CHAIN).some((r) => /^-A \S+ -o lo -j ACCEPT$/.test(r.rule));

/** Where our output chain lets DNS go: "any" when a port-53 rule names no destination. */
export function dnsDestinations(saved: string): "any" | string[] {
  const rules = rulesOf(saved, OUTPUT_CHAIN).filter((r) => / --dport 53 -j ACCEPT$/.test(r.rule));
  if (rules.some((r) => !r.rule.includes(" -d "))) return "any";
  return [...new Set(rules.flatMap((r) => / -d (\S+)/.exec(r.rule)?.[1] ?? []).map((cidr) => cidr.replace(/\/(32|128)$/, "")))];
}

/**
 * What of a family's rendered restore input (`renderIptables`) its saved table lacks: each chain of
 * ours, its number of rules and the jump into it. Rule text is not compared (`*-save` writes rules
 * in its own normal form), so a rule swapped for another of the same count goes unseen.
 */
export function missingRules(rendered: string, saved: string, label: string): string[] {
  const savedRules = saved.split("\n").map((line) => split(line).rule);
  const renderedLines = rendered.split("\n");
  return OUR_CHAINS.flatMap((chain) => {
    const wanted = renderedLines.filter((l) => l.startsWith(`-A ${chain} `)).length;
    if (!renderedLines.includes(`:${chain} - [0:0]`) || wanted === 0) return [];
    if (!savedRules.some((l) => l.startsWith(`:${chain} `))) return [`${label}: chain ${chain}`];
    const held = savedRules.filter((l) => l.startsWith(`-A ${chain} `)).length;
    const rules = held === wanted ? [] : [`${label}: rules of chain ${chain} (${held} held of ${wanted})`];
    return savedRules.includes(`-A ${ENTRY[chain]} -j ${chain}`)
      ? rules
      : [...rules, `${label}: the jump from ${ENTRY[chain]} to ${chain}`];
  });
}

const MARK = /^-A DOMAINWALL-OUTPUT -m comment --comment "?domainwall policy ([0-9a-f]+)"?$/;

/**
 * The policy mark of a family's saved table (render.ts `policyMark`): undefined when our output
 * chain is not there, "" when it is but carries no mark (loaded by a domainwall before the marks).
 */
export function policyMarkOf(saved: string): string | undefined {
  const rules = saved.split("\n").map((line) => split(line).rule);
  if (!rules.some((l) => l.startsWith(`:${OUTPUT_CHAIN} `))) return undefined;
  for (const rule of rules) {
    const mark = MARK.exec(rule);
    if (mark !== null) return mark[1]!;
  }
  return "";
}

/** Why the two families' policies are not the same one (an apply interrupted between their commits); empty when they are. */
export function familyProblems(savedV4: string, savedV6: string): string[] {
  const [v4, v6] = [policyMarkOf(savedV4), policyMarkOf(savedV6)];
  if (v4 === v6) return [];
  const describe = (mark: string | undefined) => (mark === undefined ? "none loaded" : mark === "" ? "unmarked" : mark);
  return [
    `IPv4 and IPv6 policies differ (IPv4: ${describe(v4)}, IPv6: ${describe(v6)}): an apply was interrupted between the two families' commits; run apply again`,
  ];
}

/** Our chains' rules (and the built-in chains' jumps into them) as saved, without counters, by chain. */
export function ruleTexts(saved: string): Map<string, string> {
  const texts = new Map<string, string>();
  for (const line of saved.split("\n")) {
    const { rule } = split(line);
    const chain = /^-A (\S+) /.exec(rule)?.[1];
    if (chain === undefined || !(OUR_CHAINS.includes(chain as (typeof OUR_CHAINS)[number]) || isJump(rule))) continue;
    texts.set(chain, `${texts.get(chain) ?? ""}${rule}\n`);
  }
  return texts;
}
