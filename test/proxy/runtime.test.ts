import { describe, expect, test } from "bun:test";
import { cidr } from "../../src/net/ip.ts";
import { gateAdmission, upstreamsOf } from "../../src/proxy/runtime.ts";
import type { Admission } from "../../src/proxy/handler.ts";

const answer = (...addresses: string[]): Admission => ({
  name: "api.example",
  qtype: "A",
  entry: "api.example",
  chain: ["api.example"],
  addresses: addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4, ttl: 30, owner: "api.example", record: address.includes(":") ? "AAAA" : "A" })),
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
    const { admitted, refused } = gateAdmission(answer("203.0.113.7", "169.254.169.254", "127.0.0.1", "2001:db8:ff::1", "::ffff:127.0.0.1"), []);
    expect(admitted.map((a) => a.address)).toEqual(["203.0.113.7", "2001:db8:ff::1"]);
    expect(refused).toEqual(["169.254.169.254 (link-local (AWS, GCP, Azure, OpenStack metadata))", "127.0.0.1 (loopback)", "::ffff:127.0.0.1 (loopback)"]);
  });

  test("an --allow entry covering a forbidden address lets it through, as in the static policy", () => {
    const { admitted } = gateAdmission(answer("169.254.169.254"), [{ cidr: cidr("169.254.169.254"), source: "--allow" }]);
    expect(admitted.map((a) => a.address)).toEqual(["169.254.169.254"]);
  });
});
