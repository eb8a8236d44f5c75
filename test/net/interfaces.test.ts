import { describe, expect, test } from "bun:test";
import { onLinkPrefixes } from "../../src/net/interfaces.ts";

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
