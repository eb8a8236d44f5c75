import * as v from "valibot";
import { NFT_FAMILY, NFT_TABLE } from "./render.ts";

/**
 * The parts of our table that make it enforce: each chain with its hook, policy and number of
 * rules, each set and named counter. Elements and counts are left out: they change all the time
 * and a table listed without them (`nft -t`) stays cheap with 100,000 elements.
 */
export interface NftParts {
  readonly chains: ReadonlyMap<string, { readonly hook: string; readonly policy: string; readonly rules: number }>;
  readonly sets: ReadonlySet<string>;
  readonly counters: ReadonlySet<string>;
}

const CHAIN_LINE = /^\tchain (\S+) \{$/;
const TYPE_LINE = /^\t\ttype \S+ hook (\S+) priority [^;]+; policy (\S+);$/;
const SET_LINE = /^\tset (\S+) \{/;
const COUNTER_LINE = /^\tcounter (\S+) \{$/;

/**
 * The parts a ruleset we render declares, read from its text (renderNft: one `\tchain` header, its
 * type line, then one line per rule): what a loaded policy needs the kernel to hold.
 */
export function expectedNftParts(ruleset: string): NftParts {
  const chains = new Map<string, { hook: string; policy: string; rules: number }>();
  const sets = new Set<string>();
  const counters = new Set<string>();
  let chain: { hook: string; policy: string; rules: number } | undefined;
  for (const line of ruleset.split("\n")) {
    if (chain !== undefined) {
      const type = TYPE_LINE.exec(line);
      if (type !== null) [chain.hook, chain.policy] = [type[1]!, type[2]!];
      else if (line === "\t}") chain = undefined;
      else chain.rules++;
      continue;
    }
    const named = CHAIN_LINE.exec(line);
    if (named !== null) {
      chain = { hook: "", policy: "", rules: 0 };
      chains.set(named[1]!, chain);
      continue;
    }
    const set = SET_LINE.exec(line);
    if (set !== null) sets.add(set[1]!);
    const counter = COUNTER_LINE.exec(line);
    if (counter !== null) counters.add(counter[1]!);
  }
  return { chains, sets, counters };
}

const HeldSchema = v.object({
  nftables: v.array(
    v.looseObject({
      chain: v.optional(v.looseObject({ name: v.string(), hook: v.optional(v.string()), policy: v.optional(v.string()) })),
      rule: v.optional(v.looseObject({ chain: v.string(), expr: v.optional(v.array(v.unknown())) })),
      set: v.optional(v.looseObject({ name: v.string() })),
      counter: v.optional(v.looseObject({ name: v.string() })),
    }),
  ),
});

const parseHeld = (json: string) => {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch {
    throw new Error(`nft -j printed something that is not JSON: ${JSON.stringify(json.slice(0, 80))}`);
  }
  const parsed = v.safeParse(HeldSchema, data);
  if (!parsed.success) throw new Error(`nft -j printed an unexpected table: ${v.summarize(parsed.issues).replace(/\n/g, "; ")}`);
  return parsed;
};

/**
 * Each chain's rules as the kernel holds them (their expressions, without handles), by chain: what
 * a watch compares with the same reading taken right after its own load, to see a rule replaced by
 * another (`nft replace rule`), which the counts of `missingNftParts` do not.
 */
export function nftRuleTexts(json: string): Map<string, string> {
  const texts = new Map<string, string>();
  for (const o of parseHeld(json).output.nftables)
    if (o.rule) texts.set(o.rule.chain, `${texts.get(o.rule.chain) ?? ""}${JSON.stringify(o.rule.expr ?? [])}\n`);
  return texts;
}

/** The parts the kernel holds, from `nft -j [-t] list table inet domainwall`; throws when the output is not that. */
export function heldNftParts(json: string): NftParts {
  const parsed = parseHeld(json);
  const chains = new Map<string, { hook: string; policy: string; rules: number }>();
  const sets = new Set<string>();
  const counters = new Set<string>();
  for (const o of parsed.output.nftables) {
    if (o.chain) chains.set(o.chain.name, { hook: o.chain.hook ?? "", policy: o.chain.policy ?? "", rules: 0 });
    if (o.set) sets.add(o.set.name);
    if (o.counter) counters.add(o.counter.name);
  }
  for (const o of parsed.output.nftables) {
    const chain = o.rule ? chains.get(o.rule.chain) : undefined;
    if (chain !== undefined) chain.rules++;
  }
  return { chains, sets, counters };
}

const TABLE = `table ${NFT_FAMILY} ${NFT_TABLE}`;

/**
 * What of `expected` the kernel does not hold as rendered, one phrase each (`chain dns_redirect`,
 * `rules of chain output (3 of 21)`); empty when all is there. `held` undefined: the table is gone.
 * Parts the kernel holds beyond those expected (a rule added to our chain) count as changed too.
 */
export function missingNftParts(expected: NftParts, held: NftParts | undefined): string[] {
  if (held === undefined) return [TABLE];
  const missing: string[] = [];
  for (const [name, want] of expected.chains) {
    const has = held.chains.get(name);
    if (has === undefined) missing.push(`chain ${name}`);
    else if (has.hook !== want.hook || has.policy !== want.policy)
      missing.push(
        `chain ${name}'s hook ${want.hook} with policy ${want.policy} (held: ${has.hook || "no hook"}, ${has.policy || "no policy"})`,
      );
    else if (has.rules !== want.rules) missing.push(`rules of chain ${name} (${has.rules} held of ${want.rules})`);
  }
  for (const name of expected.sets) if (!held.sets.has(name)) missing.push(`set ${name}`);
  for (const name of expected.counters) if (!held.counters.has(name)) missing.push(`counter ${name}`);
  return missing;
}

/** The DNS proxy's chains (render.ts CHAIN_NAME): present whenever its sets are. */
const PROXY_CHAINS = ["dns_zone_out", "dns_guard_in", "dns_redirect"] as const;
/** A named counter's chain: `output_dropped` → output, `forward_audited` → forward. */
const COUNTED = /^(output|input|forward)_(dropped|audited)$/;

/**
 * What `status` can tell is missing without the policy: the table itself, the output chain, the
 * chain of each named counter, the DNS proxy's three chains when its sets are there, and any of our
 * chains left without rules or without its hook (every chain we render has both).
 */
export function missingWithoutPolicy(held: NftParts | undefined): string[] {
  if (held === undefined) return [TABLE];
  const chains = new Set(["output", ...[...held.counters].flatMap((c) => COUNTED.exec(c)?.[1] ?? [])]);
  if (held.sets.has("proxy_v4") || held.sets.has("proxy_v6")) for (const c of PROXY_CHAINS) chains.add(c);
  const missing = [...chains].filter((c) => !held.chains.has(c)).map((c) => `chain ${c}`);
  for (const [name, chain] of held.chains) {
    if (chain.hook === "") missing.push(`chain ${name}'s hook`);
    else if (chain.rules === 0) missing.push(`rules of chain ${name} (none held)`);
  }
  return missing;
}
