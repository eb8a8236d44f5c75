import * as v from "valibot";
import { notEnforcing, type Status } from "../backend.ts";

/** Our base chains, each named after its hook (src/backends/nft/render.ts); input exists only with --ports. */
const HOOKS = [
  { hook: "output", what: "outgoing" },
  { hook: "input", what: "incoming" },
] as const;

/** The objects of `nft -j list table inet domainwall` that `status` reads; anything else is passed over. */
const NftListSchema = v.object({
  nftables: v.array(
    v.looseObject({
      set: v.optional(v.looseObject({ name: v.string(), elem: v.optional(v.array(v.unknown())) })),
      counter: v.optional(v.looseObject({ name: v.string(), packets: v.number(), bytes: v.number() })),
      chain: v.optional(v.looseObject({ name: v.string(), hook: v.optional(v.string()) })),
    }),
  ),
});

/** Reads the `nft -j list table` output of our own table only (never the whole ruleset); throws when it does not match. */
export function parseNftStatus(json: string): Status {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch {
    throw new Error(`nft -j printed something that is not JSON: ${JSON.stringify(json.slice(0, 80))}`);
  }
  const parsed = v.safeParse(NftListSchema, data);
  if (!parsed.success) throw new Error(`nft -j printed an unexpected shape: ${v.summarize(parsed.issues).replace(/\n/g, "; ")}`);
  const objects = parsed.output.nftables;
  const chains = objects.flatMap((o) => (o.chain ? [o.chain] : []));
  const problems = HOOKS.flatMap(({ hook, what }) => {
    const chain = chains.find((c) => c.name === hook);
    if (chain === undefined) return hook === "output" ? [`nft: the output chain of table inet domainwall is missing: nothing filters ${what} traffic`] : [];
    return chain.hook === hook ? [] : [`nft: the ${hook} chain of table inet domainwall has no ${hook} hook: nothing filters ${what} traffic`];
  });
  return {
    loaded: true,
    sets: objects.flatMap((o) => (o.set ? [{ name: o.set.name, elements: o.set.elem?.length ?? 0 }] : [])),
    counters: objects.flatMap((o) => (o.counter ? [{ name: o.counter.name, packets: o.counter.packets, bytes: o.counter.bytes }] : [])),
    ...notEnforcing(problems),
  };
}
