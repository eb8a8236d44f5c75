import { describe, expect, test } from "bun:test";
import { chainsOf, PROXY_ZONE, unreachable, type Rule } from "../../src/policy/rules.ts";
import { cidr } from "../../src/net/ip.ts";
import { POLICIES, PROXY_POLICIES } from "../fixtures/policies.ts";

describe("chainsOf", () => {
  test("output alone, in evaluation order, when no inbound ports are given", () => {
    const chains = chainsOf(POLICIES["egress-only"]!);
    expect(chains.map((c) => `${c.hook}: ${c.rules.map((r) => r.kind).join(", ")}`)).toEqual([
      "output: established, invalid, loopback, neighbour-discovery, listener-discovery, dns, allowed, record-denied, verdict",
    ]);
  });

  test("denied packets are recorded, in each direction, right before the verdict counts them", () => {
    const chains = chainsOf(POLICIES["ingress-reject"]!);
    expect(chains.map((c) => c.rules.at(-2))).toEqual([
      { kind: "record-denied", direction: "out" },
      { kind: "record-denied", direction: "in" },
    ]);
  });

  test("audit mode: the same rules, ending in a counted accept under the audited counters", () => {
    const audit = chainsOf(POLICIES.audit!);
    const enforcing = chainsOf({ ...POLICIES.audit!, verdict: "drop" });
    expect(audit.map((c) => c.rules.slice(0, -1))).toEqual(enforcing.map((c) => c.rules.slice(0, -1)));
    expect(audit.map((c) => c.rules.at(-1))).toEqual([
      { kind: "verdict", verdict: "accept", counter: "output_audited" },
      { kind: "verdict", verdict: "accept", counter: "input_audited" },
    ]);
  });

  test("the port sets are looked up right after the every-port sets, only when the policy has them", () => {
    const rules = chainsOf(POLICIES.ports!)[0]!.rules;
    expect(rules.map((r) => r.kind).slice(-4)).toEqual(["allowed", "allowed-ports", "record-denied", "verdict"]);
    expect(rules.find((r) => r.kind === "allowed-ports")).toEqual({
      kind: "allowed-ports",
      v4: POLICIES.ports!.allowPorts!.v4,
      v6: POLICIES.ports!.allowPorts!.v6,
    });
  });

  test("--forward: a forward chain with the output chain's egress rules, without the link-local ones, recording as out, counted apart", () => {
    const chains = chainsOf(POLICIES.ports!);
    expect(chains.map((c) => `${c.hook}: ${c.rules.map((r) => r.kind).join(", ")}`)).toEqual([
      "output: established, invalid, loopback, neighbour-discovery, listener-discovery, dns, allowed, allowed-ports, record-denied, verdict",
      "forward: established, invalid, dns, allowed, allowed-ports, record-denied, verdict",
    ]);
    expect(chains[1]?.rules.slice(-2)).toEqual([
      { kind: "record-denied", direction: "out" },
      { kind: "verdict", verdict: "reject", counter: "forward_dropped" },
    ]);
    expect(chainsOf({ ...POLICIES.ports!, forward: false }).map((c) => c.hook)).toEqual(["output"]);
  });

  test("--forward in audit mode: the forward chain too ends in a counted accept, under forward_audited", () => {
    const chains = chainsOf({ ...POLICIES.ports!, verdict: "audit" });
    expect(chains.map((c) => c.rules.at(-1))).toEqual([
      { kind: "verdict", verdict: "accept", counter: "output_audited" },
      { kind: "verdict", verdict: "accept", counter: "forward_audited" },
    ]);
  });

  test("an input chain ending in a counted drop when inbound ports are given, whatever the output verdict", () => {
    const chains = chainsOf(POLICIES["ingress-reject"]!);
    expect(chains.map((c) => c.hook)).toEqual(["output", "input"]);
    expect(chains[0]?.rules.at(-1)).toEqual({ kind: "verdict", verdict: "reject", counter: "output_dropped" });
    expect(chains[1]?.rules.slice(-3)).toEqual([
      { kind: "inbound-ports", ports: POLICIES["ingress-reject"]!.inboundPorts },
      { kind: "record-denied", direction: "in" },
      { kind: "verdict", verdict: "drop", counter: "input_dropped" },
    ]);
  });

  test("with the DNS proxy: a zone chain first (the proxy's queries to the resolvers in a conntrack zone of their own, original direction), an input guard (nothing new from a resolver's port 53), then a nat chain (loopback destinations and the proxy's group kept, then port 53 redirected); the filter first guards the proxy (port 53 only from its group, its port only from its group, no forged loopback answers), then accepts the proxy's port, DNS for its group only, and the admitted addresses", () => {
    const all = chainsOf(PROXY_POLICIES["dns-proxy"]!);
    const resolvers = PROXY_POLICIES["dns-proxy"]!.dns;
    expect(all.slice(0, 2)).toEqual([
      { hook: "output", type: "zone", rules: [{ kind: "zone-proxy-queries", gid: 2000053, zone: PROXY_ZONE, resolvers }] },
      {
        hook: "input",
        type: "guard",
        rules: [
          { kind: "refuse-forged-on-loopback", port: 15353 },
          { kind: "refuse-new-from-resolvers", resolvers },
        ],
      },
    ]);
    const chains = all.slice(2);
    expect(chains.map((c) => `${c.type} ${c.hook}: ${c.rules.map((r) => r.kind).join(", ")}`)).toEqual([
      "nat output: keep-loopback-destination, keep-group, redirect-dns",
      "filter output: proxy-guard, established, invalid, loopback, neighbour-discovery, listener-discovery, proxy-port, dns, allowed, proxy-admitted, record-denied, verdict",
      "filter input: established, invalid, loopback, neighbour-discovery, listener-discovery, inbound-ports, record-denied, verdict",
    ]);
    expect(chains[0]?.rules).toEqual([
      { kind: "keep-loopback-destination" },
      { kind: "keep-group", gid: 2000053 },
      { kind: "redirect-dns", port: 15353 },
    ]);
    expect(chains[1]?.rules.find((r) => r.kind === "dns")).toMatchObject({ gid: 2000053 });
    expect(chains[1]?.rules[0]).toEqual({ kind: "proxy-guard", gid: 2000053, port: 15353 });
  });

  test("with the DNS proxy and entries with ports: the admitted addresses are proxy_v4/proxy_v6 and then each port spec's pair, after the static port sets", () => {
    const chains = chainsOf(PROXY_POLICIES["dns-proxy-ports"]!).filter((c) => c.type !== "zone" && c.type !== "guard");
    expect(chains[1]?.rules.map((r) => r.kind).slice(-5)).toEqual([
      "allowed",
      "allowed-ports",
      "proxy-admitted",
      "record-denied",
      "verdict",
    ]);
    const admitted = chains[1]?.rules.find((r) => r.kind === "proxy-admitted");
    expect(admitted?.kind === "proxy-admitted" && admitted.portSets.map((s) => `${s.v4} ${s.v6}: ${s.entries.join(", ")}`)).toEqual([
      "proxy_v4_tcp22_tcp8000-8100 proxy_v6_tcp22_tcp8000-8100: mirror.example",
      "proxy_v4_tcp443 proxy_v6_tcp443: *.pypi.org, api.example.com",
      "proxy_v4_tcp80_tcp443 proxy_v6_tcp80_tcp443: **.files.example",
      "proxy_v4_udp123 proxy_v6_udp123: ntp.example",
    ]);
    expect(chainsOf(PROXY_POLICIES["dns-proxy"]!)[3]?.rules.find((r) => r.kind === "proxy-admitted")).toEqual({
      kind: "proxy-admitted",
      portSets: [],
    });
  });

  test("outgoing neighbour discovery goes only to link-local, link-scope multicast and the on-link prefixes; incoming is not scoped (it is for us)", () => {
    const policy = { ...POLICIES["ingress-reject"]!, onLink: [cidr("2001:db8:1::/64")] };
    const [output, input] = chainsOf(policy);
    expect(output?.rules.find((r) => r.kind === "neighbour-discovery")).toEqual({
      kind: "neighbour-discovery",
      destinations: [cidr("fe80::/10"), cidr("ff02::/16"), cidr("2001:db8:1::/64")],
    });
    expect(input?.rules.find((r) => r.kind === "neighbour-discovery")).toEqual({ kind: "neighbour-discovery" });
  });

  test("without the proxy no rule carries a group and there is no nat or zone chain", () => {
    const chains = chainsOf(POLICIES["egress-only"]!);
    expect(chains.every((c) => c.type === "filter")).toBe(true);
    expect(chains[0]?.rules.find((r) => r.kind === "dns")).toEqual({ kind: "dns", dns: POLICIES["egress-only"]!.dns });
  });
});

describe("a renderer that forgets a kind of rule", () => {
  test("does not type-check (the renderers switch exhaustively over Rule)", () => {
    const forgetful = (rule: Rule): string => {
      switch (rule.kind) {
        case "established":
        case "invalid":
        case "loopback":
        case "neighbour-discovery":
        case "listener-discovery":
        case "dns":
        case "allowed":
        case "record-denied":
        case "verdict":
        case "keep-loopback-destination":
        case "keep-group":
        case "redirect-dns":
        case "proxy-port":
        case "proxy-admitted":
        case "zone-proxy-queries":
        case "refuse-new-from-resolvers":
        case "refuse-forged-on-loopback":
          return rule.kind;
        default:
          // @ts-expect-error "inbound-ports" is not handled: `rule` is not `never` here
          return unreachable(rule);
      }
    };
    expect(() => forgetful({ kind: "inbound-ports", ports: [22] })).toThrow('unknown rule {"kind":"inbound-ports","ports":[22]}');
  });
});
