import { describe, expect, test } from "bun:test";
import type { AllowEntry } from "../../src/config/config.ts";
import { cidr } from "../../src/net/ip.ts";
import { gateAddresses, type AnswerGate } from "../../src/policy/answer-gate.ts";
import type { Admission } from "../../src/proxy/handler.ts";

const gateAdmission = (admission: Admission, gate: AnswerGate) => gateAddresses(gate, admission.name, admission.addresses);

const answer = (...addresses: string[]): Admission => ({
  name: "api.example",
  qtype: "A",
  entry: "api.example",
  chain: ["api.example"],
  addresses: addresses.map((address) => ({
    address,
    family: address.includes(":") ? 6 : 4,
    ttl: 30,
    owner: "api.example",
    record: address.includes(":") ? "AAAA" : "A",
  })),
});

describe("what an answer may admit", () => {
  test("loopback, link-local (metadata) and multicast answers are not admitted, with the reason; the rest are", () => {
    const { admitted, refused } = gateAdmission(
      answer("203.0.113.7", "169.254.169.254", "127.0.0.1", "2001:db8:ff::1", "::ffff:127.0.0.1"),
      { allow: [] },
    );
    expect(admitted.map((a) => a.address)).toEqual(["203.0.113.7", "2001:db8:ff::1"]);
    expect(refused).toEqual([
      "169.254.169.254 (link-local (AWS, GCP, Azure, OpenStack metadata))",
      "127.0.0.1 (loopback)",
      "::ffff:127.0.0.1 (loopback)",
    ]);
  });

  test("an --allow entry covering a forbidden address lets it through, as in the static policy", () => {
    const { admitted } = gateAdmission(answer("169.254.169.254"), { allow: [{ cidr: cidr("169.254.169.254"), source: "--allow" }] });
    expect(admitted.map((a) => a.address)).toEqual(["169.254.169.254"]);
  });

  describe("--refuse-private-answers", () => {
    const gate = (allow: AllowEntry[] = []) => ({
      allow,
      private: { resolverNets: [cidr("198.51.100.0/24")], localNets: [], privateDomains: ["cluster.local"] },
    });
    const named = (name: string, ...addresses: string[]): Admission => ({ ...answer(...addresses), name });

    test("private, CGNAT, ULA and the resolvers' network are not admitted, with the reason; public answers are", () => {
      const { admitted, refused } = gateAdmission(
        answer("10.0.0.1", "100.64.1.1", "fd00::1", "198.51.100.77", "203.0.113.7", "2001:db8::7"),
        gate(),
      );
      expect(admitted.map((a) => a.address)).toEqual(["203.0.113.7", "2001:db8::7"]);
      expect(refused).toEqual([
        "10.0.0.1 (private, RFC 1918; --refuse-private-answers, unless its domain is in --private-domains)",
        "100.64.1.1 (carrier-grade NAT, RFC 6598; --refuse-private-answers, unless its domain is in --private-domains)",
        "fd00::1 (unique local, RFC 4193; --refuse-private-answers, unless its domain is in --private-domains)",
        "198.51.100.77 (the resolvers' network 198.51.100.0/24; --refuse-private-answers, unless its domain is in --private-domains)",
      ]);
    });

    test("a name under a --private-domains domain may answer privately; the forbidden ranges stay refused", () => {
      const { admitted, refused } = gateAdmission(named("api.ns.svc.cluster.local", "10.0.0.1", "127.0.0.1"), gate());
      expect(admitted.map((a) => a.address)).toEqual(["10.0.0.1"]);
      expect(refused).toEqual(["127.0.0.1 (loopback)"]);
    });

    test("an --allow entry covering a private address lets it through; without the guard private answers are admitted", () => {
      expect(gateAdmission(answer("10.1.2.3"), gate([{ cidr: cidr("10.1.0.0/16"), source: "--allow" }])).admitted).toHaveLength(1);
      expect(gateAdmission(answer("10.1.2.3"), { allow: [] }).admitted).toHaveLength(1);
    });
  });
});
