import { describe, expect, test } from "bun:test";
import { cidr } from "../../src/net/ip.ts";
import type { Backend } from "../../src/backends/backend.ts";
import { admissionSets, carryingBackend, gateAdmission, upstreamsOf } from "../../src/proxy/runtime.ts";
import { EVERY_PORT_SETS, proxyPortSets } from "../../src/policy/proxy-sets.ts";
import { AUDIT_ENTRY } from "../../src/proxy/handler.ts";
import { PROXY_POLICIES } from "../fixtures/policies.ts";
import type { Admission } from "../../src/proxy/handler.ts";

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

describe("the DNS proxy's upstreams", () => {
  test("the resolvers, never one on loopback (a stub would send its upstream query back through the redirect)", () => {
    expect(upstreamsOf([cidr("127.0.0.53"), cidr("198.51.100.2"), cidr("::1"), cidr("2001:db8:1::2"), cidr("192.0.2.0/24")])).toEqual([
      { address: "198.51.100.2", port: 53 },
      { address: "2001:db8:1::2", port: 53 },
    ]);
    expect(upstreamsOf([cidr("127.0.0.53")])).toEqual([]);
  });
});

describe("what an answer may admit", () => {
  test("loopback, link-local (metadata) and multicast answers are not admitted, with the reason; the rest are", () => {
    const { admitted, refused } = gateAdmission(
      answer("203.0.113.7", "169.254.169.254", "127.0.0.1", "2001:db8:ff::1", "::ffff:127.0.0.1"),
      [],
    );
    expect(admitted.map((a) => a.address)).toEqual(["203.0.113.7", "2001:db8:ff::1"]);
    expect(refused).toEqual([
      "169.254.169.254 (link-local (AWS, GCP, Azure, OpenStack metadata))",
      "127.0.0.1 (loopback)",
      "::ffff:127.0.0.1 (loopback)",
    ]);
  });

  test("an --allow entry covering a forbidden address lets it through, as in the static policy", () => {
    const { admitted } = gateAdmission(answer("169.254.169.254"), [{ cidr: cidr("169.254.169.254"), source: "--allow" }]);
    expect(admitted.map((a) => a.address)).toEqual(["169.254.169.254"]);
  });

  describe("--refuse-private-answers", () => {
    const guard = { resolverNets: [cidr("198.51.100.0/24")], privateDomains: ["cluster.local"] };
    const named = (name: string, ...addresses: string[]): Admission => ({ ...answer(...addresses), name });

    test("private, CGNAT, ULA and the resolvers' network are not admitted, with the reason; public answers are", () => {
      const { admitted, refused } = gateAdmission(
        answer("10.0.0.1", "100.64.1.1", "fd00::1", "198.51.100.77", "203.0.113.7", "2001:db8::7"),
        [],
        guard,
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
      const { admitted, refused } = gateAdmission(named("api.ns.svc.cluster.local", "10.0.0.1", "127.0.0.1"), [], guard);
      expect(admitted.map((a) => a.address)).toEqual(["10.0.0.1"]);
      expect(refused).toEqual(["127.0.0.1 (loopback)"]);
    });

    test("an --allow entry covering a private address lets it through; without the guard private answers are admitted", () => {
      expect(gateAdmission(answer("10.1.2.3"), [{ cidr: cidr("10.1.0.0/16"), source: "--allow" }], guard).admitted).toHaveLength(1);
      expect(gateAdmission(answer("10.1.2.3"), []).admitted).toHaveLength(1);
    });
  });
});

describe("the backend watch --dns-proxy hands its loop", () => {
  const base = {
    name: "nft",
    apply: () => Promise.reject(new Error("the plain apply would drop what was admitted")),
  } as unknown as Backend;
  const carryOver = { v4: "elements = { 203.0.113.7 timeout 30s expires 12s }", v6: "" };

  test("a full load goes through replaceTable with the admitted elements carried over", async () => {
    const scripts: string[] = [];
    const backend = carryingBackend(
      base,
      { replaceTable: async (script) => (scripts.push(script(carryOver)), { code: 0, stdout: "", stderr: "" }) },
      () => 0,
    );
    await backend.apply(PROXY_POLICIES["dns-proxy"]!);
    expect(scripts).toHaveLength(1);
    expect(scripts[0]).toContain(
      "set proxy_v4 {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t\telements = { 203.0.113.7 timeout 30s expires 12s }\n",
    );
  });

  test("a refused load is an error naming nft's complaint", async () => {
    const backend = carryingBackend(
      base,
      { replaceTable: async () => ({ code: 1, stdout: "", stderr: "Error: syntax error\n" }) },
      () => 0,
    );
    await expect(backend.apply(PROXY_POLICIES["dns-proxy"]!)).rejects.toThrow("nft -f failed: Error: syntax error");
  });
});

describe("the sets an admission goes into", () => {
  const { byEntry } = proxyPortSets(
    ["api.example", "*.pypi.org", "plain.example"],
    new Map([["api.example", [{ protocol: "tcp", first: 443, last: 443 }]]]),
  );

  test("the matched entry's pair (an absolute name is the same entry); every port for an entry without ports", () => {
    expect(admissionSets(byEntry, "api.example.")).toEqual({ v4: "proxy_v4_tcp443", v6: "proxy_v6_tcp443" });
    expect(admissionSets(byEntry, "*.pypi.org")).toBe(EVERY_PORT_SETS);
  });

  test("an unlisted name admitted in audit mode opens every port; an unknown entry is an error, never a guess", () => {
    expect(admissionSets(byEntry, AUDIT_ENTRY)).toBe(EVERY_PORT_SETS);
    expect(() => admissionSets(byEntry, "other.example")).toThrow('no sets for the entry "other.example"');
  });
});
