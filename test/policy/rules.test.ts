import { describe, expect, test } from "bun:test";
import { chainsOf, unreachable, type Rule } from "../../src/policy/rules.ts";
import { POLICIES } from "../fixtures/policies.ts";

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
          return rule.kind;
        default:
          // @ts-expect-error "inbound-ports" is not handled: `rule` is not `never` here
          return unreachable(rule);
      }
    };
    expect(() => forgetful({ kind: "inbound-ports", ports: [22] })).toThrow('unknown rule {"kind":"inbound-ports","ports":[22]}');
  });
});
