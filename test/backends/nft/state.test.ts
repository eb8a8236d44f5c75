import { describe, expect, test } from "bun:test";
import { parseNftStatus } from "../../../src/backends/nft/state.ts";

const output = { chain: { name: "output", hook: "output" } };
const listing = (...objects: object[]) => JSON.stringify({ nftables: [{ metainfo: { version: "1.0.6" } }, output, ...objects] });
const proxySet = (name: string, type: string, elem?: unknown[]) => ({
  set: { family: "inet", name, table: "domainwall", type, flags: ["timeout"], ...(elem && { elem }) },
});

describe("parseNftStatus: the DNS proxy's timeout sets", () => {
  test("each admitted address with its timeout and what is left of it (as nft 1.0.6 prints them)", () => {
    const status = parseNftStatus(
      listing(
        proxySet("proxy_v4", "ipv4_addr", [{ elem: { val: "203.0.113.57", timeout: 60, expires: 56 } }]),
        proxySet("proxy_v6", "ipv6_addr", [{ elem: { val: "2001:DB8:ff::0:5", timeout: 35, expires: 0 } }]),
      ),
    );
    expect(status.proxy).toEqual([
      { address: "203.0.113.57", set: "proxy_v4", ports: [], timeoutSeconds: 60, expiresInSeconds: 56 },
      { address: "2001:db8:ff::5", set: "proxy_v6", ports: [], timeoutSeconds: 35, expiresInSeconds: 0 },
    ]);
  });

  test("empty sets are an empty list; rules without the proxy have none", () => {
    expect(parseNftStatus(listing(proxySet("proxy_v4", "ipv4_addr"), proxySet("proxy_v6", "ipv6_addr"))).proxy).toEqual([]);
    expect(parseNftStatus(listing({ set: { name: "allow_v4", elem: ["203.0.113.10"] } })).proxy).toBeUndefined();
  });

  test.each([
    { name: "not an address", elem: { elem: { val: "cdn.example", timeout: 60, expires: 5 } }, says: '"cdn.example"' },
    { name: "the other family", elem: { elem: { val: "2001:db8::1", timeout: 60, expires: 5 } }, says: "not an IPv4 address" },
    { name: "without a timeout", elem: "203.0.113.57", says: "unexpected DNS proxy element" },
    { name: "a negative expiry", elem: { elem: { val: "203.0.113.57", timeout: 60, expires: -1 } }, says: "unexpected DNS proxy element" },
  ])("an element $name is refused, naming it", ({ elem, says }) => {
    expect(() => parseNftStatus(listing(proxySet("proxy_v4", "ipv4_addr", [elem])))).toThrow(says);
  });
});

describe("parseNftStatus: the allow sets", () => {
  test("addresses (allow_addr_*), /64s (allow_net64_v6, by their network address) and networks (allow_v4/v6) are all allowed on every port", () => {
    const status = parseNftStatus(
      listing(
        { set: { name: "allow_addr_v4", elem: ["203.0.113.10"] } },
        { set: { name: "allow_addr_v6", elem: ["2001:db8:ff::10"] } },
        { set: { name: "allow_net64_v6", elem: ["2001:db8:5::", "2001:DB8:6:0::"] } },
        { set: { name: "allow_v4", elem: [{ prefix: { addr: "192.0.2.0", len: 24 } }] } },
        { set: { name: "allow_v6", elem: [] } },
      ),
    );
    expect(status.loaded && status.allowed).toEqual([
      { network: "203.0.113.10", ports: "all" },
      { network: "2001:db8:ff::10", ports: "all" },
      { network: "2001:db8:5::/64", ports: "all" },
      { network: "2001:db8:6::/64", ports: "all" },
      { network: "192.0.2.0/24", ports: "all" },
    ]);
  });

  test("an allow_net64_v6 element that is not an IPv6 address is refused, naming it", () => {
    expect(() => parseNftStatus(listing({ set: { name: "allow_net64_v6", elem: ["192.0.2.1"] } }))).toThrow(
      'not an IPv6 address: "192.0.2.1"',
    );
    expect(() => parseNftStatus(listing({ set: { name: "allow_net64_v6", elem: [{ prefix: { addr: "2001:db8::", len: 64 } }] } }))).toThrow(
      "not an IPv6 address",
    );
  });
});
