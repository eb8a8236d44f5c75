import { cidr, type Cidr } from "../net/ip.ts";
import type { Policy, PortElement } from "./policy.ts";
import type { ProxyPortSet } from "./proxy-sets.ts";

/**
 * One rule of a chain, backend-neutral: what it matches and does, not how a backend writes it. Both
 * renderers (nft, iptables-legacy) turn the same ordered list into their text; each switches over
 * `kind` exhaustively (`unreachable`), so a new kind of rule is a type error in a renderer that
 * forgets it.
 */
export type Rule =
  /** Replies and related traffic of allowed connections. */
  | { readonly kind: "established" }
  /** Packets conntrack cannot place. */
  | { readonly kind: "invalid" }
  | { readonly kind: "loopback" }
  /**
   * ICMPv6 neighbour discovery is not tracked by conntrack, so `established` never matches it;
   * without it IPv6 stops working. Hop limit 255 proves the packet is on-link (RFC 4861). Outgoing,
   * only to `destinations` (link-local, link-scope multicast, the on-link prefixes): an NS or RA
   * with hop limit 255 to any other address would be routed like any packet, a way out for a
   * process with NET_RAW. Incoming, any destination (it is addressed to us).
   */
  | { readonly kind: "neighbour-discovery"; readonly destinations?: readonly Cidr[] }
  /**
   * Multicast listener discovery (RFC 4890 4.4.1: not to be dropped), untracked like ND: out, the
   * host's own reports and dones to link-scope groups with hop limit 1; in, a router's queries
   * from a link-local address with hop limit 1.
   */
  | { readonly kind: "listener-discovery" }
  /**
   * DNS (UDP and TCP port 53) to the policy's resolvers, or anywhere; with `gid` (the DNS proxy)
   * only from sockets of that group: the proxy's own upstream queries.
   */
  | { readonly kind: "dns"; readonly dns: Policy["dns"]; readonly gid?: number }
  /**
   * The DNS proxy (nat chain): a destination on loopback is left alone (the app's queries to a local
   * stub such as systemd-resolved's 127.0.0.53 reach it; the stub's upstream queries are redirected).
   */
  | { readonly kind: "keep-loopback-destination" }
  /** The DNS proxy (nat chain): sockets of the proxy's group are not redirected (its upstream queries). */
  | { readonly kind: "keep-group"; readonly gid: number }
  /** The DNS proxy (nat chain): every other UDP and TCP packet to port 53, whatever its address, goes to the proxy. */
  | { readonly kind: "redirect-dns"; readonly port: number }
  /**
   * The DNS proxy (output filter), first, before established traffic is accepted; each closes a way
   * around the proxy for a process without CAP_SETGID:
   * - port 53 to a non-loopback address from any socket but the proxy's group: the redirect acts
   *   only on a flow's first packet, so a flow older than the ruleset (its entry made while some
   *   other rule had conntrack on), or a socket bound to the source port of one of the proxy's own
   *   upstream flows (seen in /proc/net/udp) if the zone rules were not there, would otherwise
   *   reach the resolver directly (redirected queries show the proxy's port here, not 53);
   * - replies from the proxy's port on loopback by any socket but the proxy's group: a process that
   *   bound the port while the proxy was down cannot answer the pod's DNS;
   * - packets on loopback from port 53 with a source address that is not local: an answer forged
   *   with IPV6_FREEBIND as the resolver's, sent to one of the proxy's upstream sockets.
   */
  | { readonly kind: "proxy-guard"; readonly gid: number; readonly port: number }
  /**
   * The DNS proxy (zone chain, output, before conntrack): the proxy's own queries (its group, port
   * 53, to a resolver that is not on loopback) are tracked in conntrack zone `zone` in their
   * original direction only, apart from the apps' flows in zone 0. Otherwise an app's query from
   * the same source port as one of the proxy's upstream flows still in conntrack (same addresses
   * and ports: the kernel hands the port out again once the proxy's socket is closed) is placed in
   * the proxy's entry, never redirected (NAT decides once per connection), and dropped by the
   * first guard. Only the proxy's group can put a packet in the zone (an app cannot take the group
   * without CAP_SETGID). The replies are looked up in zone 0, where the entry's reply side is: no
   * rule is needed where they arrive, and nothing else that arrives from port 53 (the replies to a
   * container this host forwards and masquerades) changes zone.
   * `resolvers`: the policy's (never loopback here: a local stub's flows stay in zone 0).
   */
  | { readonly kind: "zone-proxy-queries"; readonly gid: number; readonly zone: number; readonly resolvers: Policy["dns"] }
  /**
   * The DNS proxy (guard chain, input, policy accept): a packet from port 53 of a resolver (not on
   * loopback) that starts a new flow is dropped: it answers nothing this host asked. Without it, a
   * datagram forged from outside as the resolver's would make a zone-0 entry whose reply side is
   * an app's next query from that port, which would then never be redirected (and be dropped by
   * the first guard): a way to break an app's DNS port by port.
   */
  | { readonly kind: "refuse-new-from-resolvers"; readonly resolvers: Policy["dns"] }
  /**
   * The DNS proxy (guard chain, input): a packet from port 53 that arrives on `lo` with a source
   * address not of this host was written below the output hook (an AF_PACKET socket, CAP_NET_RAW):
   * a forged answer aimed at one of the proxy's upstream sockets, whose ports any process here can
   * read. Dropped, and counted. A local stub's answers come from a local address; the proxy's own
   * answers to the apps carry the resolver's address too, restored by the redirect, and are spared
   * by that (conntrack's dnat status). A second rule drops what is written as a redirect's reply
   * side (from `port`, the proxy's): the real ones already carry the resolver's address and port at
   * the input hook, so one that still comes from `port` was written below the output hook, and NAT
   * would hand it to the socket of the flow it copies, a pool socket's port (an attacker's review).
   */
  | { readonly kind: "refuse-forged-on-loopback"; readonly port: number }
  /**
   * The DNS proxy (output filter): the redirected queries. After a redirect the destination is
   * loopback but the filter still sees the original output interface (not `lo`), so they are
   * accepted by loopback destination and the proxy's port.
   */
  | { readonly kind: "proxy-port"; readonly port: number }
  /**
   * The DNS proxy (output filter): the addresses its answers admitted (sets with per-element
   * timeouts): proxy_v4/proxy_v6 on every port, each of `portSets` on its ports only.
   */
  | { readonly kind: "proxy-admitted"; readonly portSets: readonly ProxyPortSet[] }
  /** The allowed addresses and networks (nft: two set lookups; iptables: one rule each). */
  | { readonly kind: "allowed"; readonly allowV4: Policy["allowV4"]; readonly allowV6: Policy["allowV6"] }
  /**
   * The entries listed with ports: network, protocol and destination port range (nft: a lookup in
   * one concatenated set per family; iptables: one rule each). Only when some entry has ports.
   */
  | { readonly kind: "allowed-ports"; readonly v4: readonly PortElement[]; readonly v6: readonly PortElement[] }
  /**
   * Just before the verdict: each denied destination is recorded in the kernel, with a packet
   * counter and a timeout, in bounded sets, so `status` can list what was refused even after the
   * process that loaded the rules has exited. Out: the destination address, protocol and port; in:
   * the source address, protocol and our local port. Other protocols than TCP and UDP (ICMP) are
   * recorded with port 0. Only a backend with dynamic sets records (nft); the others count only.
   * The forward chain records as "out": it applies the same egress policy, so what it denies is a
   * denied destination like any other (status, explain and suggest read one list).
   */
  | { readonly kind: "record-denied"; readonly direction: Direction }
  /** Inbound TCP to these ports. */
  | { readonly kind: "inbound-ports"; readonly ports: readonly number[] }
  /**
   * The end of the chain: everything else is counted and dropped or rejected; in audit mode counted
   * (under another name, so nothing reads it as dropped) and accepted.
   */
  | { readonly kind: "verdict"; readonly verdict: "drop" | "reject" | "accept"; readonly counter: VerdictCounter };

/** The conntrack zone of the DNS proxy's own upstream flows (the apps' flows stay in zone 0). */
export const PROXY_ZONE = 53;

/** Which way a packet goes: out (the output hook) or in (the input hook). */
export type Direction = "out" | "in";

/** The named counter of each chain's verdict: `*_dropped` while enforcing, `*_audited` in audit mode. */
export type VerdictCounter = `${"output" | "input" | "forward"}_${"dropped" | "audited"}`;

/**
 * A chain of ours, hooked where packets leave (`output`), arrive (`input`) or pass through
 * (`forward`): a filter chain (policy drop), the DNS proxy's `nat` chain (output only, policy
 * accept: it redirects, never drops), the DNS proxy's `zone` chain (output, before conntrack,
 * policy accept: it chooses a conntrack zone, never drops) or its `guard` chain (input, policy
 * accept: it drops only what its rule names).
 */
export interface Chain {
  readonly hook: "output" | "input" | "forward";
  readonly type: "filter" | "nat" | "zone" | "guard";
  readonly rules: readonly Rule[];
}

/** For an exhaustive `switch` over rule kinds: a kind left out does not type-check here. */
export function unreachable(rule: never): never {
  throw new Error(`unknown rule ${JSON.stringify(rule)}`);
}

/** Link-local unicast and link-scope multicast: where outgoing neighbour discovery may always go. */
const LINK_SCOPE = [cidr("fe80::/10"), cidr("ff02::/16")];

/**
 * The policy as ordered chains: with the DNS proxy, its zone chain first (output, before
 * conntrack), its input guard, then its nat chain; the output filter always;
 * input only when inbound ports are given (otherwise inbound traffic is left untouched); forward
 * only with `--forward`. The order is the order of evaluation. In audit mode the filter chains are
 * the same up to the verdict, which accepts.
 *
 * The forward chain holds the output chain's egress rules without loopback, neighbour and listener
 * discovery: those are link-local (hop limit 255 or 1, ff02::/16, fe80::/10) and a router never
 * forwards them, and forwarded packets never leave through `lo`. It records what it denies in the
 * output chain's sets (direction "out") and ends in its own counter, forward_dropped or, in audit
 * mode, forward_audited. (`--forward` does not go with the DNS proxy: config refuses the pair.)
 */
export function chainsOf(policy: Policy): Chain[] {
  const { proxy } = policy;
  const audit = policy.verdict === "audit";
  const common = (nd: Rule): Rule[] => [
    { kind: "established" },
    { kind: "invalid" },
    { kind: "loopback" },
    nd,
    { kind: "listener-discovery" },
  ];
  const ndOut: Rule = { kind: "neighbour-discovery", destinations: [...LINK_SCOPE, ...policy.onLink] };
  const redirect: Chain[] =
    proxy === undefined
      ? []
      : [
          {
            hook: "output",
            type: "zone",
            rules: [{ kind: "zone-proxy-queries", gid: proxy.gid, zone: PROXY_ZONE, resolvers: policy.dns }],
          },
          {
            hook: "input",
            type: "guard",
            rules: [
              { kind: "refuse-forged-on-loopback", port: proxy.port },
              { kind: "refuse-new-from-resolvers", resolvers: policy.dns },
            ],
          },
          {
            hook: "output",
            type: "nat",
            rules: [
              { kind: "keep-loopback-destination" },
              { kind: "keep-group", gid: proxy.gid },
              { kind: "redirect-dns", port: proxy.port },
            ],
          },
        ];
  const output: Chain = {
    hook: "output",
    type: "filter",
    rules: [
      ...(proxy === undefined ? [] : [{ kind: "proxy-guard", gid: proxy.gid, port: proxy.port } as const]),
      ...common(ndOut),
      ...(proxy === undefined ? [] : [{ kind: "proxy-port", port: proxy.port } as const]),
      { kind: "dns", dns: policy.dns, ...(proxy && { gid: proxy.gid }) },
      { kind: "allowed", allowV4: policy.allowV4, allowV6: policy.allowV6 },
      ...(policy.allowPorts ? [{ kind: "allowed-ports", v4: policy.allowPorts.v4, v6: policy.allowPorts.v6 } as const] : []),
      ...(proxy === undefined ? [] : [{ kind: "proxy-admitted", portSets: proxy.portSets ?? [] } as const]),
      { kind: "record-denied", direction: "out" },
      audit
        ? { kind: "verdict", verdict: "accept", counter: "output_audited" }
        : { kind: "verdict", verdict: policy.verdict, counter: "output_dropped" },
    ],
  };
  const input: Chain = {
    hook: "input",
    type: "filter",
    rules: [
      ...common({ kind: "neighbour-discovery" }),
      { kind: "inbound-ports", ports: policy.inboundPorts },
      { kind: "record-denied", direction: "in" },
      { kind: "verdict", verdict: audit ? "accept" : "drop", counter: audit ? "input_audited" : "input_dropped" },
    ],
  };
  const linkLocal = new Set<Rule["kind"]>(["loopback", "neighbour-discovery", "listener-discovery"]);
  const forward: Chain = {
    hook: "forward",
    type: "filter",
    rules: output.rules
      .map((rule): Rule => (rule.kind === "verdict" ? { ...rule, counter: audit ? "forward_audited" : "forward_dropped" } : rule))
      .filter((rule) => !linkLocal.has(rule.kind)),
  };
  return [...redirect, output, ...(policy.inboundPorts.length > 0 ? [input] : []), ...(policy.forward === true ? [forward] : [])];
}

/** How the kernel's record of denied destinations is bounded (nft only): entries per direction and family, and how long each is kept after its last packet. */
export const DENIED_RECORD = { size: 4096, timeoutSeconds: 3600 } as const;
