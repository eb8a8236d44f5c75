import { describe, expect, test } from "bun:test";
import { chainsOf, unreachable, type Rule } from "../../src/policy/rules.ts";
import { POLICIES } from "../fixtures/policies.ts";

describe("chainsOf", () => {
  test("output alone, in evaluation order, when no inbound ports are given", () => {
    const chains = chainsOf(POLICIES["egress-only"]!);
    expect(chains.map((c) => `${c.hook}: ${c.rules.map((r) => r.kind).join(", ")}`)).toEqual([
      "output: established, invalid, loopback, neighbour-discovery, listener-discovery, dns, allowed, verdict",
    ]);
  });

  test("the port sets are looked up right after the every-port sets, only when the policy has them", () => {
    const rules = chainsOf(POLICIES.ports!)[0]!.rules;
    expect(rules.map((r) => r.kind).slice(-3)).toEqual(["allowed", "allowed-ports", "verdict"]);
    expect(rules.find((r) => r.kind === "allowed-ports")).toEqual({ kind: "allowed-ports", v4: POLICIES.ports!.allowPorts!.v4, v6: POLICIES.ports!.allowPorts!.v6 });
  });

  test("--forward: a forward chain with the output chain's egress rules, without the link-local ones, counted apart", () => {
    const chains = chainsOf(POLICIES.ports!);
    expect(chains.map((c) => `${c.hook}: ${c.rules.map((r) => r.kind).join(", ")}`)).toEqual([
      "output: established, invalid, loopback, neighbour-discovery, listener-discovery, dns, allowed, allowed-ports, verdict",
      "forward: established, invalid, dns, allowed, allowed-ports, verdict",
    ]);
    expect(chains[1]?.rules.at(-1)).toEqual({ kind: "verdict", verdict: "reject", counter: "forward_dropped" });
    expect(chainsOf({ ...POLICIES.ports!, forward: false }).map((c) => c.hook)).toEqual(["output"]);
  });

  test("an input chain ending in a counted drop when inbound ports are given, whatever the output verdict", () => {
    const chains = chainsOf(POLICIES["ingress-reject"]!);
    expect(chains.map((c) => c.hook)).toEqual(["output", "input"]);
    expect(chains[0]?.rules.at(-1)).toEqual({ kind: "verdict", verdict: "reject", counter: "output_dropped" });
    expect(chains[1]?.rules.slice(-2)).toEqual([
      { kind: "inbound-ports", ports: POLICIES["ingress-reject"]!.inboundPorts },
      { kind: "verdict", verdict: "drop", counter: "input_dropped" },
    ]);
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
        case "verdict":
          return rule.kind;
        default:
          // @ts-expect-error "inbound-ports" is not handled: `rule` is not `never` here
          return unreachable(rule);
      }
    };
    expect(() => forgetful({ kind: "inbound-ports", ports: [22] })).toThrow('unknown rule {"kind":"inbound-ports","ports":[22]}');
  });
});
