import { describe, expect, test } from "bun:test";
import { cidr } from "../../src/net/ip.ts";
import { FORBIDDEN_FROM_DNS, forbiddenReason } from "../../src/policy/forbidden.ts";

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
  ])("$address: $reason", ({ address, reason }) => {
    expect(forbiddenReason(cidr(address))).toBe(reason);
  });

  test.each(["203.0.113.10", "100.100.100.201", "192.0.0.193", "168.63.129.17", "2001:db8::1", "fd00:ec2::253", "::ffff:203.0.113.10"])(
    "%s is an ordinary address",
    (address) => {
      expect(forbiddenReason(cidr(address))).toBeUndefined();
    },
  );

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
