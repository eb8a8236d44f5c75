import * as v from "valibot";
import type { PortRange } from "../../net/port-range.ts";
import type { ProxySet } from "../../status.ts";

/** A rule of our table as `nft -j` prints it (state.ts validated the outer shape). */
export interface ListedRule {
  readonly chain: string;
  readonly expr: readonly unknown[];
}

const MatchSchema = v.object({ match: v.looseObject({ op: v.string(), left: v.unknown(), right: v.unknown() }) });
const PayloadSchema = v.object({ payload: v.object({ protocol: v.string(), field: v.string() }) });
const PortSchema = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535));
const PortValueSchema = v.union([PortSchema, v.object({ range: v.tuple([PortSchema, PortSchema]) })]);
const PortsSchema = v.union([PortValueSchema, v.object({ set: v.array(PortValueSchema) })]);

const matchesOf = (expr: readonly unknown[]) =>
  expr.flatMap((e) => {
    const parsed = v.safeParse(MatchSchema, e);
    return parsed.success && parsed.output.match.op === "==" ? [parsed.output.match] : [];
  });
const accepts = (rule: ListedRule) => rule.chain === "output" && v.is(v.object({ accept: v.null() }), rule.expr.at(-1));

/** The port ranges of a `tcp dport ...`/`udp dport ...` match; throws on a value that is not ports. */
function rangesOf(protocol: "tcp" | "udp", right: unknown): PortRange[] {
  const parsed = v.safeParse(PortsSchema, right);
  if (!parsed.success) throw new Error(`nft -j printed a ${protocol} dport match that is not ports: ${JSON.stringify(right)}`);
  const values = typeof parsed.output === "object" && "set" in parsed.output ? parsed.output.set : [parsed.output];
  return values.map((value) => {
    const [first, last] = typeof value === "number" ? [value, value] : value.range;
    if (first > last) throw new Error(`nft -j printed a port range that ends before it starts: ${JSON.stringify(value)}`);
    return { protocol, first, last };
  });
}

/**
 * The ports the output chain opens to each DNS-proxy set: an accepting rule that matches
 * `ip daddr @SET` (or `ip6`) with no port match opens every port; one with `tcp dport`/`udp dport`
 * opens those ranges (rules for one set add up). A set no accepting rule names opens nothing.
 * What the kernel enforces, read from its rules: never from the set's name or the configuration.
 */
export function proxySetsOf(sets: readonly { name: string; family: 4 | 6 }[], rules: readonly ListedRule[]): ProxySet[] {
  const opened = new Map<string, "all" | PortRange[]>();
  for (const rule of rules) {
    if (!accepts(rule)) continue;
    const matches = matchesOf(rule.expr);
    const set = matches.find(
      (m) =>
        typeof m.right === "string" &&
        m.right.startsWith("@") &&
        v.is(PayloadSchema, m.left) &&
        (m.left.payload.protocol === "ip" || m.left.payload.protocol === "ip6") &&
        m.left.payload.field === "daddr",
    );
    if (set === undefined) continue;
    const name = (set.right as string).slice(1);
    if (!sets.some((s) => s.name === name)) continue;
    const dports = matches.filter((m) => v.is(PayloadSchema, m.left) && m.left.payload.field === "dport");
    const ports = dports.flatMap((m) => {
      const protocol = (m.left as v.InferOutput<typeof PayloadSchema>).payload.protocol;
      if (protocol !== "tcp" && protocol !== "udp") throw new Error(`nft -j printed a dport match of ${JSON.stringify(protocol)}`);
      return rangesOf(protocol, m.right);
    });
    const known = opened.get(name);
    if (known === "all") continue;
    // Any other match (a second port match, a mark...) narrows it in a way not described here: counted as opening nothing.
    if (dports.length > 1 || matches.length !== 1 + dports.length || rule.expr.length !== matches.length + 1) continue;
    opened.set(name, ports.length === 0 ? "all" : [...(known ?? []), ...ports]);
  }
  return sets.map((s) => ({ name: s.name, family: s.family, ports: opened.get(s.name) ?? [] }));
}

/** Whether the output chain has `oifname "lo" accept` (nothing else in the rule). */
export function acceptsLoopbackOf(rules: readonly ListedRule[]): boolean {
  return rules.some((rule) => {
    if (!accepts(rule) || rule.expr.length !== 2) return false;
    const [match] = matchesOf(rule.expr);
    return match !== undefined && v.is(v.object({ meta: v.object({ key: v.literal("oifname") }) }), match.left) && match.right === "lo";
  });
}

/**
 * Where the `dns_redirect` chain sends the pod's DNS (`redirect to :PORT`) and the group it leaves
 * alone (`meta skgid G return`: the proxy's own queries); undefined without a redirect rule.
 */
export function proxyRedirectOf(rules: readonly ListedRule[]): { port: number; group?: number } | undefined {
  let port: number | undefined;
  let group: number | undefined;
  for (const rule of rules) {
    if (rule.chain !== "dns_redirect") continue;
    for (const e of rule.expr) {
      if (v.is(v.object({ redirect: v.object({ port: PortSchema }) }), e)) port = e.redirect.port;
    }
    const [match] = matchesOf(rule.expr);
    if (
      rule.expr.length === 2 &&
      v.is(v.object({ return: v.null() }), rule.expr[1]) &&
      match !== undefined &&
      v.is(v.object({ meta: v.object({ key: v.literal("skgid") }) }), match.left) &&
      typeof match.right === "number"
    )
      group = match.right;
  }
  return port === undefined ? undefined : { port, ...(group !== undefined && { group }) };
}
