import { describe, expect, test } from "bun:test";
import type { PortRange } from "../../src/net/port-range.ts";
import { EVERY_PORT_SETS, proxyEntryOf, proxyPortSets } from "../../src/policy/proxy-sets.ts";

const tcp = (first: number, last = first): PortRange => ({ protocol: "tcp", first, last });
const udp = (first: number, last = first): PortRange => ({ protocol: "udp", first, last });

describe("proxyPortSets: the DNS proxy's timeout sets per port spec", () => {
  test("entries with the same ports share a pair named after the ports; entries without ports use proxy_v4/proxy_v6", () => {
    const { sets, byEntry } = proxyPortSets(
      ["api.example.com", "*.pypi.org", "plain.example", "ntp.example"],
      new Map([
        ["api.example.com", [tcp(443)]],
        ["*.pypi.org", [tcp(443)]],
        ["ntp.example", [udp(123)]],
      ]),
    );
    expect(sets).toEqual([
      { v4: "proxy_v4_tcp443", v6: "proxy_v6_tcp443", ports: [tcp(443)], entries: ["*.pypi.org", "api.example.com"] },
      { v4: "proxy_v4_udp123", v6: "proxy_v6_udp123", ports: [udp(123)], entries: ["ntp.example"] },
    ]);
    expect(byEntry.get("*.pypi.org")).toEqual({ v4: "proxy_v4_tcp443", v6: "proxy_v6_tcp443" });
    expect(byEntry.get("plain.example")).toBe(EVERY_PORT_SETS);
  });

  test("an absolute name is the same entry to the proxy: keyed without the dot; its ports add up, and without ports it opens every port", () => {
    const added = proxyPortSets(
      ["api.example.", "api.example"],
      new Map([
        ["api.example.", [tcp(443)]],
        ["api.example", [tcp(80)]],
      ]),
    );
    expect(added.byEntry.get(proxyEntryOf("api.example."))).toEqual({ v4: "proxy_v4_tcp80_tcp443", v6: "proxy_v6_tcp80_tcp443" });
    const every = proxyPortSets(["api.example.", "api.example"], new Map([["api.example.", [tcp(443)]]]));
    expect(every.byEntry.get("api.example")).toBe(EVERY_PORT_SETS);
    expect(every.sets).toEqual([]);
  });

  test("a long spec is named by a stable hash (set names stay short); no entry with ports, no sets", () => {
    const many = Array.from({ length: 20 }, (_, i) => tcp(10_000 + i * 10, 10_005 + i * 10));
    const { sets } = proxyPortSets(["mirror.example"], new Map([["mirror.example", many]]));
    expect(sets[0]?.v4).toMatch(/^proxy_v4_h[0-9a-f]{8}$/);
    expect(proxyPortSets(["mirror.example"], new Map([["mirror.example", many]])).sets[0]?.v4).toBe(sets[0]!.v4);
    expect(proxyPortSets(["a.example"], new Map()).sets).toEqual([]);
  });
});
