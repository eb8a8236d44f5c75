import { describe, expect, test } from "bun:test";
import { cidr } from "../../src/net/ip.ts";
import {
  embeddedIpv4,
  FORBIDDEN_FROM_DNS,
  forbiddenReason,
  privateReason,
  resolverNetworks,
  underDomain,
} from "../../src/policy/forbidden.ts";

describe("forbiddenReason: answers DNS may never open on its own", () => {
  // One row per entry of the list (and the embedded-IPv4 forms): each is refused, with its reason.
  test.each([
    { address: "0.0.0.0", reason: "unspecified" },
    { address: "127.0.0.1", reason: "loopback" },
    { address: "127.255.255.254", reason: "loopback" },
    { address: "169.254.169.254", reason: "link-local (AWS, GCP, Azure, OpenStack metadata)" },
    { address: "100.100.100.200", reason: "Alibaba Cloud metadata" },
    { address: "192.0.0.192", reason: "Oracle Cloud metadata" },
    { address: "168.63.129.16", reason: "Azure platform endpoint (WireServer)" },
    { address: "224.0.0.251", reason: "multicast" },
    { address: "255.255.255.255", reason: "reserved/broadcast" },
    { address: "::", reason: "unspecified" },
    { address: "::1", reason: "loopback" },
    { address: "fe80::1", reason: "link-local" },
    { address: "ff02::1", reason: "multicast" },
    { address: "fd00:ec2::254", reason: "AWS metadata (IPv6)" },
    { address: "::ffff:169.254.169.254", reason: "link-local (AWS, GCP, Azure, OpenStack metadata)" },
    { address: "::ffff:100.100.100.200", reason: "Alibaba Cloud metadata" },
    { address: "64:ff9b::a9fe:a9fe", reason: "link-local (AWS, GCP, Azure, OpenStack metadata)" },
    { address: "64:ff9b::c000:c0", reason: "Oracle Cloud metadata" },
    // The local-use prefix 64:ff9b:1::/48 (RFC 8215), /48 format: a.b in bits 48..63, u octet 0, c.d in bits 72..87.
    { address: "64:ff9b:1:a9fe:a9:fe00::", reason: "link-local (AWS, GCP, Azure, OpenStack metadata)" },
    { address: "64:ff9b:1:7f00:1:0:0:0", reason: "loopback" },
    { address: "64:ff9b:1:6464:64:c800::", reason: "Alibaba Cloud metadata" },
  ])("$address: $reason", ({ address, reason }) => {
    expect(forbiddenReason(cidr(address))).toBe(reason);
  });

  test.each([
    "203.0.113.10",
    "100.100.100.201",
    "192.0.0.193",
    "168.63.129.17",
    "2001:db8::1",
    "fd00:ec2::253",
    "::ffff:203.0.113.10",
    "64:ff9b:1:cb00:71:a00::",
  ])("%s is an ordinary address", (address) => {
    expect(forbiddenReason(cidr(address))).toBeUndefined();
  });

  test("every entry of the list has a row above (the list is the one documented place)", () => {
    expect(FORBIDDEN_FROM_DNS.map((entry) => entry.cidr.text)).toEqual([
      "0.0.0.0/8",
      "127.0.0.0/8",
      "169.254.0.0/16",
      "100.100.100.200",
      "192.0.0.192",
      "168.63.129.16",
      "224.0.0.0/4",
      "240.0.0.0/4",
      "::",
      "::1",
      "fe80::/10",
      "ff00::/8",
      "fd00:ec2::254",
    ]);
  });
});

describe("embeddedIpv4: RFC 6052 address formats", () => {
  // RFC 6052 section 2.4, the table of 192.0.2.33 under each prefix length.
  test.each([
    ["2001:db8:c000:221::", 32],
    ["2001:db8:1c0:2:21::", 40],
    ["2001:db8:122:c000:2:2100::", 48],
    ["2001:db8:122:3c0:0:221::", 56],
    ["2001:db8:122:344:c0:2:2100:0", 64],
    ["2001:db8:122:344::192.0.2.33", 96],
    ["64:ff9b::192.0.2.33", 96],
  ] as const)("%s behind a /%d prefix embeds 192.0.2.33", (address, length) => {
    expect(embeddedIpv4(cidr(address), length).text).toBe("192.0.2.33");
  });

  test("the u octet (bits 64..71) is skipped, not read: a /48 address with it set still gives the octets around it", () => {
    expect(embeddedIpv4(cidr("64:ff9b:1:c000:ff02:2100::"), 48).text).toBe("192.0.2.33");
  });

  test("the local-use prefix is read in the /48 format, not as a /96: its last 32 bits are the suffix", () => {
    // 64:ff9b:1::a9fe:a9fe reads as 0.0.0.0 (bits 48..63 and 72..87 are zero): refused as unspecified, not let through.
    expect(forbiddenReason(cidr("64:ff9b:1::a9fe:a9fe"))).toBe("unspecified");
    expect(embeddedIpv4(cidr("64:ff9b:1:c000:2:2100::"), 48).text).toBe("192.0.2.33");
    expect(forbiddenReason(cidr("64:ff9b:1:c000:2:2100::"))).toBeUndefined();
  });
});

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
    ["64:ff9b:1:a00:1::", "private, RFC 1918"],
    ["64:ff9b:1:c0a8:1:100::", "private, RFC 1918"],
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
