import { describe, expect, test } from "bun:test";
import { localNetworks, onLinkPrefixes } from "../../src/net/interfaces.ts";
import { privateReason } from "../../src/policy/forbidden.ts";
import { cidr } from "../../src/net/ip.ts";

// /proc/net/if_inet6: address, ifindex, prefix length, scope, flags (all hex), device.
const line = (address: string, prefixHex: string, scopeHex: string, device: string) =>
  `${address} 02 ${prefixHex} ${scopeHex} 80 ${device.padStart(8)}`;

describe("onLinkPrefixes", () => {
  test("the prefix of each global or ULA address on a non-loopback interface, sorted and unique", () => {
    const text = [
      line("20010db8000100000000000000000001", "40", "00", "veth0"),
      line("20010db8000100000000000000000009", "40", "00", "veth1"), // same /64 on another interface
      line("fd000000000000000000000000000002", "40", "00", "eth0"), // ULA: scope global too
      line("fe8000000000000000fc00fffe000001", "40", "20", "eth0"), // link-local: fe80::/10 is always allowed
      line("00000000000000000000000000000001", "80", "10", "lo"),
      line("20010db80002000000000000000000aa", "30", "00", "lo"), // a global address on lo is not on a link
      "",
    ].join("\n");
    expect(onLinkPrefixes(text).map((c) => c.text)).toEqual(["2001:db8:1::/64", "fd00::/64"]);
  });

  test("a prefix inside a shorter one is left out (an nft anonymous set refuses overlapping intervals); a /128 stays a host", () => {
    const text = [
      line("20010db8000100000000000000000001", "40", "00", "a"),
      line("20010db8000000000000000000000001", "20", "00", "b"),
      line("fd000000000000000000000000000005", "80", "00", "c"),
    ].join("\n");
    expect(onLinkPrefixes(text).map((c) => c.text)).toEqual(["2001:db8::/32", "fd00::5"]);
  });

  test("no IPv6 (file missing) or a malformed line: nothing from it", () => {
    expect(onLinkPrefixes(undefined)).toEqual([]);
    expect(
      onLinkPrefixes(
        "garbage\nzz 02 40 00 80 eth0\n20010db8000100000000000000000001 02 zz 00 80 eth0\n20010db8000100000000000000000001 02 81 00 80 eth0\n",
      ),
    ).toEqual([]);
  });
});

/** What a pod's /proc/net shows (captured in the lab, a dummy interface with 192.0.2.50/28 added). */
const POD = {
  route: [
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
    "eth0\t00000000\t026433C6\t0003\t0\t0\t0\t00000000\t0\t0\t0",
    "eth0\t006433C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0",
    "dummy0\t300200C0\t00000000\t0001\t0\t0\t0\tF0FFFFFF\t0\t0\t0",
    "eth1\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0", // a default route without a gateway: not "everything is on-link"
    "eth0\tbroken",
  ].join("\n"),
  fibTrie: [
    "Main:",
    "  +-- 0.0.0.0/0 3 0 5",
    "     |-- 0.0.0.0",
    "        /0 universe UNICAST",
    "           |-- 127.0.0.1",
    "              /32 host LOCAL",
    "           |-- 198.51.100.0",
    "              /24 link UNICAST",
    "           |-- 198.51.100.1",
    "              /32 host LOCAL",
    "        |-- 198.51.100.255",
    "           /32 link BROADCAST",
    "           |-- 192.0.2.50",
    "              /32 host LOCAL",
  ].join("\n"),
  ifInet6: ["00000000000000000000000000000001 01 80 10 80       lo", "20010db8000100000000000000000001 02 40 00 82 eth0"].join("\n"),
  ipv6Route: [
    "20010db8000100000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0",
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db8000100000000000000000002 00000400 00000001 00000000 00000003 eth0",
    "00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000003 00000000 80200001       lo",
  ].join("\n"),
};

describe("localNetworks: this namespace's addresses, on-link networks and gateways", () => {
  test("from /proc/net: loopback, /0 routes and malformed lines left out", () => {
    expect(localNetworks(POD).map((n) => `${n.what} ${n.cidr.text}`)).toEqual([
      "on-link network 192.0.2.48/28",
      "address 192.0.2.50",
      "on-link network 198.51.100.0/24",
      "address 198.51.100.1",
      "gateway 198.51.100.2",
      "on-link network 2001:db8:1::/64",
      "address 2001:db8:1::1",
      "gateway 2001:db8:1::2",
    ]);
    expect(localNetworks({})).toEqual([]);
  });

  test.each([
    { address: "192.0.2.50", reason: "this namespace's address 192.0.2.50" },
    { address: "192.0.2.51", reason: "this namespace's on-link network 192.0.2.48/28" },
    { address: "198.51.100.1", reason: "this namespace's address 198.51.100.1" },
    { address: "198.51.100.2", reason: "this namespace's gateway 198.51.100.2" },
    { address: "2001:db8:1::2", reason: "this namespace's gateway 2001:db8:1::2" },
    { address: "203.0.113.10", reason: undefined },
    { address: "::ffff:198.51.100.7", reason: "this namespace's on-link network 198.51.100.0/24" },
  ])("privateReason($address) with the resolver elsewhere: $reason", ({ address, reason }) => {
    expect(privateReason(cidr(address), [cidr("2001:db8:9::/64")], localNetworks(POD))).toBe(reason);
  });
});
