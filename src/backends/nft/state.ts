import * as v from "valibot";
import { formatAddress, parseAddress } from "../../net/ip.ts";
import { DENIED_RECORD, type Direction } from "../../policy/rules.ts";
import { isDeniedSetFull, type DeniedSetFill } from "../../policy/denied-full.ts";
import {
  allowedEntriesOf,
  notEnforcing,
  type DeniedDestination,
  type LoadedStatus,
  type ProxyElement,
  type ProxySet,
} from "../../status.ts";
import { acceptsLoopbackOf, proxyRedirectOf, proxySetsOf } from "./proxy-state.ts";
import type { PortRange } from "../../net/port-range.ts";

/** Our base chains, each named after its hook (src/backends/nft/render.ts); input exists only with --ports. */
const HOOKS = [
  { hook: "output", what: "outgoing" },
  { hook: "input", what: "incoming" },
] as const;

/** An element of an interval set as nft -j prints it: an address, a prefix or a range. */
const IntervalElementSchema = v.union([
  v.string(),
  v.object({ prefix: v.object({ addr: v.string(), len: v.number() }) }),
  v.object({ range: v.tuple([v.string(), v.string()]) }),
]);

/** An element of an `allow_ports_*` set: network . protocol . port or port range. */
const PortElementSchema = v.object({
  concat: v.tuple([v.unknown(), v.picklist(["tcp", "udp"]), v.union([v.number(), v.object({ range: v.tuple([v.number(), v.number()]) })])]),
});

/** An element of a `denied_*` set: address . protocol . port, with the counter and time left the kernel keeps. */
const DeniedElementSchema = v.object({
  elem: v.looseObject({
    val: v.object({ concat: v.tuple([v.string(), v.union([v.string(), v.number()]), v.number()]) }),
    expires: v.optional(v.number()),
    counter: v.optional(v.object({ packets: v.number(), bytes: v.number() })),
  }),
});

/** An element of a `proxy_*` set: the address the DNS proxy admitted, its timeout and what is left of it. */
const ProxyElementSchema = v.object({
  elem: v.looseObject({
    val: v.string(),
    timeout: v.pipe(v.number(), v.integer(), v.minValue(0)),
    expires: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
  }),
});

/** The objects of `nft -j list table inet domainwall` that are read; anything else is passed over. */
const NftListSchema = v.object({
  nftables: v.array(
    v.looseObject({
      set: v.optional(
        v.looseObject({
          name: v.string(),
          size: v.optional(v.number()),
          timeout: v.optional(v.number()),
          elem: v.optional(v.array(v.unknown())),
        }),
      ),
      counter: v.optional(v.looseObject({ name: v.string(), packets: v.number(), bytes: v.number() })),
      rule: v.optional(v.looseObject({ chain: v.string(), expr: v.array(v.unknown()) })),
      chain: v.optional(v.looseObject({ name: v.string(), hook: v.optional(v.string()) })),
    }),
  ),
});

/** One `match` statement of a rule: `left == right`. */
const MatchSchema = v.object({ match: v.looseObject({ op: v.string(), left: v.unknown(), right: v.unknown() }) });

const fail = (what: string, issues: Parameters<typeof v.summarize>[0]) =>
  new Error(`nft -j printed an unexpected ${what}: ${v.summarize(issues).replace(/\n/g, "; ")}`);

/** The text of an interval set element: `192.0.2.0/24`, `203.0.113.10`, `192.0.2.1-192.0.2.9`. */
function intervalText(element: unknown): string {
  const parsed = v.safeParse(IntervalElementSchema, element);
  if (!parsed.success) throw fail("set element", parsed.issues);
  const e = parsed.output;
  const [text, addresses] =
    typeof e === "string"
      ? [e, [e]]
      : "prefix" in e
        ? [`${e.prefix.addr}/${e.prefix.len}`, [e.prefix.addr]]
        : [`${e.range[0]}-${e.range[1]}`, e.range];
  if (addresses.some((a) => parseAddress(a) === undefined))
    throw new Error(`nft -j printed a set element that is not an address: ${JSON.stringify(text)}`);
  return text;
}

/** An `allow_net64_v6` element (an IPv6 address, the /64's network) as `addr/64`; throws when it is not one. */
function net64Of(element: unknown): string {
  const address = typeof element === "string" ? parseAddress(element) : undefined;
  if (address === undefined || address.family !== 6)
    throw new Error(`nft -j printed an allow_net64_v6 element that is not an IPv6 address: ${JSON.stringify(element)}`);
  return `${formatAddress(6, address.words)}/64`;
}

/** An `allow_ports_*` element as a network and its port range; throws when it is not one. */
function portElementOf(element: unknown): { network: string; ports: PortRange } {
  const parsed = v.safeParse(PortElementSchema, element);
  if (!parsed.success) throw fail("port set element", parsed.issues);
  const [network, protocol, port] = parsed.output.concat;
  const [first, last] = typeof port === "number" ? [port, port] : port.range;
  if (!Number.isInteger(first) || !Number.isInteger(last) || first < 1 || last > 65535 || first > last) {
    throw new Error(`nft -j printed a port set element whose ports are not a range of ports: ${JSON.stringify(port)}`);
  }
  return { network: intervalText(network), ports: { protocol, first, last } };
}

/** nft names the protocols it knows; a number is kept as its text. */
const PROTOCOL_NAME = /^[a-z][a-z0-9-]{0,19}$/;

function deniedOf(element: unknown, direction: Direction, timeoutSeconds: number | undefined): DeniedDestination {
  const parsed = v.safeParse(DeniedElementSchema, element);
  if (!parsed.success) throw fail("denied element", parsed.issues);
  const { val, expires, counter } = parsed.output.elem;
  const [address, protocol, port] = val.concat;
  const validProtocol =
    typeof protocol === "number" ? Number.isInteger(protocol) && protocol >= 0 && protocol <= 255 : PROTOCOL_NAME.test(protocol);
  if (parseAddress(address) === undefined || !validProtocol || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`nft -j printed a denied element that does not hold an address, protocol and port: ${JSON.stringify(val.concat)}`);
  }
  return {
    address,
    protocol: String(protocol),
    port,
    direction,
    packets: counter?.packets ?? 0,
    bytes: counter?.bytes ?? 0,
    ...(timeoutSeconds !== undefined && expires !== undefined && { lastSeenSecondsAgo: Math.max(0, timeoutSeconds - expires) }),
  };
}

function proxyElementOf(element: unknown, set: ProxySet): ProxyElement {
  const family = set.family;
  const parsed = v.safeParse(ProxyElementSchema, element);
  if (!parsed.success) throw fail("DNS proxy element", parsed.issues);
  const { val, timeout, expires } = parsed.output.elem;
  const address = parseAddress(val);
  if (address === undefined || address.family !== family)
    throw new Error(`nft -j printed a DNS proxy element that is not an IPv${family} address: ${JSON.stringify(val)}`);
  return {
    address: formatAddress(address.family, address.words),
    set: set.name,
    ports: set.ports,
    timeoutSeconds: timeout,
    expiresInSeconds: Math.min(expires ?? timeout, timeout),
  };
}

const DENIED_SET = /^denied_(out|in)_v[46]$/;

/** The denied sets at (or within a few elements of) their size: the kernel's size, else the one rendered. */
const deniedFullOf = (sets: readonly { name: string; size?: number; timeout?: number; elem?: unknown[] }[]): DeniedSetFill[] =>
  sets
    .filter((set) => DENIED_SET.test(set.name))
    .map((set) => ({
      name: set.name,
      elements: set.elem?.length ?? 0,
      size: set.size ?? DENIED_RECORD.size,
      ...(set.timeout !== undefined && { timeoutSeconds: set.timeout }),
    }))
    .filter(isDeniedSetFull);
const PROXY_SET = /^proxy_v([46])(_[a-z0-9-]+)?$/;
const ALLOW_SET = /^allow_(addr_)?v[46]$/;
/** The IPv6 /64 networks' set (render.ts): its elements are the networks' addresses. */
const NET64_SET = "allow_net64_v6";
const ALLOW_PORTS_SET = /^allow_ports_v[46]$/;

/** Most packets first; then by address, protocol and port, so the order is stable. */
export const byPackets = (a: DeniedDestination, b: DeniedDestination): number =>
  b.packets - a.packets ||
  a.address.localeCompare(b.address) ||
  a.protocol.localeCompare(b.protocol) ||
  a.port - b.port ||
  a.direction.localeCompare(b.direction);

/** The match statements of a rule's expression that `v.safeParse` accepts as `MatchSchema`. */
const matchesOf = (expr: readonly unknown[]) =>
  expr.flatMap((e) => {
    const parsed = v.safeParse(MatchSchema, e);
    return parsed.success ? [parsed.output.match] : [];
  });
const isPayload = (left: unknown, protocol: string, field: string) =>
  v.is(v.object({ payload: v.object({ protocol: v.literal(protocol), field: v.literal(field) }) }), left);

/**
 * Where the output chain lets DNS go: its accepting rules that match `th dport 53`, with the
 * addresses their `ip daddr`/`ip6 daddr` match names; one without such a match lets it go anywhere.
 */
function dnsOf(rules: readonly { chain: string; expr: readonly unknown[] }[]): LoadedStatus["dns"] {
  const servers: string[] = [];
  for (const rule of rules) {
    if (rule.chain !== "output" || !v.is(v.object({ accept: v.null() }), rule.expr.at(-1))) continue;
    const matches = matchesOf(rule.expr);
    if (!matches.some((m) => isPayload(m.left, "th", "dport") && m.right === 53)) continue;
    const daddr = matches.find((m) => isPayload(m.left, "ip", "daddr") || isPayload(m.left, "ip6", "daddr"));
    if (daddr === undefined) return "any";
    const right = daddr.right as unknown;
    const elements = v.is(v.object({ set: v.array(v.unknown()) }), right) ? right.set : [right];
    servers.push(...elements.map(intervalText));
  }
  return servers;
}

/** Reads the `nft -j list table` output of our own table only (never the whole ruleset); throws when it does not match. */
export function parseNftStatus(json: string): LoadedStatus {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch {
    throw new Error(`nft -j printed something that is not JSON: ${JSON.stringify(json.slice(0, 80))}`);
  }
  const parsed = v.safeParse(NftListSchema, data);
  if (!parsed.success) throw fail("shape", parsed.issues);
  const objects = parsed.output.nftables;
  const chains = objects.flatMap((o) => (o.chain ? [o.chain] : []));
  const problems = HOOKS.flatMap(({ hook, what }) => {
    const chain = chains.find((c) => c.name === hook);
    if (chain === undefined)
      return hook === "output" ? [`nft: the output chain of table inet domainwall is missing: nothing filters ${what} traffic`] : [];
    return chain.hook === hook
      ? []
      : [`nft: the ${hook} chain of table inet domainwall has no ${hook} hook: nothing filters ${what} traffic`];
  });
  const sets = objects.flatMap((o) => (o.set ? [o.set] : []));
  const counters = objects.flatMap((o) =>
    o.counter ? [{ name: o.counter.name, packets: o.counter.packets, bytes: o.counter.bytes }] : [],
  );
  const denied = sets.flatMap((set) => {
    const match = DENIED_SET.exec(set.name);
    return match ? (set.elem ?? []).map((e) => deniedOf(e, match[1] as Direction, set.timeout)) : [];
  });
  const rules = objects.flatMap((o) => (o.rule ? [o.rule] : []));
  const proxySetElements = sets.flatMap((set) => {
    const match = PROXY_SET.exec(set.name);
    return match ? [{ name: set.name, family: Number(match[1]) as 4 | 6, elements: set.elem ?? [] }] : [];
  });
  const proxySets = proxySetsOf(proxySetElements, rules);
  const proxyRedirect = proxyRedirectOf(rules);
  return {
    loaded: true,
    enforcing: !counters.some((c) => c.name.endsWith("_audited")),
    sets: sets.filter((set) => !DENIED_SET.test(set.name)).map((set) => ({ name: set.name, elements: set.elem?.length ?? 0 })),
    counters,
    allowed: allowedEntriesOf(
      sets.flatMap((set) =>
        ALLOW_SET.test(set.name) ? (set.elem ?? []).map(intervalText) : set.name === NET64_SET ? (set.elem ?? []).map(net64Of) : [],
      ),
      sets.filter((set) => ALLOW_PORTS_SET.test(set.name)).flatMap((set) => (set.elem ?? []).map(portElementOf)),
    ),
    dns: dnsOf(rules),
    ...(proxySets.length > 0 && {
      proxy: proxySetElements.flatMap((set, i) => set.elements.map((e) => proxyElementOf(e, proxySets[i]!))),
      proxySets,
    }),
    ...(proxyRedirect !== undefined && { proxyRedirect }),
    acceptsLoopback: acceptsLoopbackOf(rules),
    denied: denied.sort(byPackets),
    deniedFull: deniedFullOf(sets),
    ...notEnforcing(problems),
  };
}
