import { describe, expect, test } from "bun:test";
import { cidr } from "../../src/net/ip.ts";
import { privateReason, resolverNetworks, underDomain } from "../../src/policy/private.ts";

describe("privateReason", () => {
  const nets = resolverNetworks([cidr("198.51.100.2"), cidr("2001:db8:1::2"), cidr("192.0.2.0/23")]);
  test("the resolvers' networks: /24 and /64 around an address, a wider CIDR as it is", () => {
    expect(nets.map((n) => n.text)).toEqual(["198.51.100.0/24", "2001:db8:1::/64", "192.0.2.0/23"]);
  });
  test.each([
    ["10.255.255.255", "private, RFC 1918"],
    ["172.31.0.1", "private, RFC 1918"],
    ["192.168.255.1", "private, RFC 1918"],
    ["100.127.255.255", "carrier-grade NAT, RFC 6598"],
    ["fdff::1", "unique local, RFC 4193"],
    ["fc00::1", "unique local, RFC 4193"],
    ["::ffff:192.168.0.1", "private, RFC 1918"],
    ["64:ff9b::a00:1", "private, RFC 1918"],
    ["198.51.100.200", "the resolvers' network 198.51.100.0/24"],
    ["192.0.3.4", "the resolvers' network 192.0.2.0/23"],
    ["2001:db8:1::ffff", "the resolvers' network 2001:db8:1::/64"],
    ["172.32.0.1", undefined],
    ["100.128.0.1", undefined],
    ["11.0.0.1", undefined],
    ["203.0.113.10", undefined],
    ["fe00::1", undefined],
    ["2001:db8:2::1", undefined],
  ])("%s: %s", (address, reason) => {
    expect(privateReason(cidr(address), nets)).toBe(reason as string | undefined);
  });
});

describe("underDomain", () => {
  test.each([
    ["db.svc.cluster.local", ["cluster.local"], true],
    ["cluster.local", ["cluster.local"], true],
    ["db.svc.cluster.local.", ["cluster.local"], true],
    ["evilcluster.local", ["cluster.local"], false],
    ["cluster.local.evil.example", ["cluster.local"], false],
    ["api.example", [], false],
  ] as const)("%s under %p: %p", (host, domains, expected) => {
    expect(underDomain(host, domains)).toBe(expected);
  });
});
