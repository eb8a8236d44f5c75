import { describe, expect, test } from "bun:test";
import { parseConfig, type RawConfig } from "../support/config.ts";
import { DomainwallError } from "../../src/errors.ts";
import { cidr, compareCidr } from "../../src/net/ip.ts";
import { admitResolutions, buildPolicy as buildFromNames, noNameResolved, summarize, type NameAddresses } from "../../src/policy/policy.ts";
import type { Config } from "../../src/config/config.ts";
import type { Cidr } from "../../src/net/ip.ts";

/** The gates on a resolution, then the pure build from its names' addresses, as apply runs them. */
function buildPolicy(config: Config, resolutions: readonly HostResolution[], resolvers: readonly Cidr[]) {
  const admitted = admitResolutions(config, resolutions);
  const built = buildFromNames(config, admitted.names, resolvers);
  return { policy: built.policy, warnings: [...admitted.warnings, ...built.warnings], summary: summarize(admitted.counts, built.policy) };
}
import type { HostResolution } from "../../src/dns/resolve.ts";

const configWith = (raw: Partial<RawConfig> = {}) =>
  parseConfig({ strict: false, reject: false, requireHosts: true, hosts: { from: "hosts_csv", value: "api.example" }, ...raw }).config;

const resolved = (host: string, ...addresses: string[]): HostResolution => ({
  host,
  status: "resolved",
  addresses: addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4, ttl: 30 })),
});

const texts = (elements: readonly { cidr: { text: string }; sources: readonly string[] }[]) =>
  elements.map((e) => `${e.cidr.text} # ${e.sources.join(", ")}`);

describe("buildPolicy", () => {
  test("merges names and --allow into sorted, de-duplicated sets with their sources", () => {
    const { policy, summary, warnings } = buildPolicy(
      configWith({ allow: { from: "--allow", value: "192.0.2.0/24,2001:db8:ff::/64" }, ports: { from: "--ports", value: "3000" } }),
      [
        resolved("mirror.example", "203.0.113.11", "2001:db8::11"),
        resolved("api.example", "203.0.113.11", "203.0.113.10"),
        { host: "svc.cluster.local", status: "empty" },
      ],
      [cidr("198.51.100.2"), cidr("2001:db8:1::2"), cidr("198.51.100.2")],
    );
    expect(texts(policy.allowV4)).toEqual([
      "192.0.2.0/24 # --allow",
      "203.0.113.10 # api.example",
      "203.0.113.11 # api.example, mirror.example",
    ]);
    expect(texts(policy.allowV6)).toEqual(["2001:db8::11 # mirror.example", "2001:db8:ff::/64 # --allow"]);
    expect(policy.dns).toEqual({ kind: "servers", v4: [cidr("198.51.100.2")], v6: [cidr("2001:db8:1::2")] });
    expect(policy.inboundPorts).toEqual([3000]);
    expect(policy.verdict).toBe("drop");
    expect(summary).toEqual({ namesResolved: 2, namesSkipped: 1, namesFailed: 0, ipv4: 3, ipv6: 2, ports: [3000] });
    expect(warnings).toEqual(["svc.cluster.local: no such name or no addresses; skipped"]);
  });

  test("an allow list that is not sorted (a Config not made by parseConfig) still gives sorted, merged sets", () => {
    const config = {
      ...configWith(),
      allow: ["2001:db8:ff::/64", "203.0.113.0/24", "192.0.2.1", "203.0.113.0/24"].map((text, i) => ({
        cidr: cidr(text),
        source: `allow.txt:${4 - i}`,
      })),
    };
    const { policy } = buildPolicy(config, [resolved("api.example", "192.0.2.1", "2001:db8::1")], []);
    expect(texts(policy.allowV4)).toEqual(["192.0.2.1 # allow.txt:2, api.example", "203.0.113.0/24 # allow.txt:1, allow.txt:3"]);
    expect(texts(policy.allowV6)).toEqual(["2001:db8::1 # api.example", "2001:db8:ff::/64 # allow.txt:4"]);
  });

  test("a long allow file: parsed, sorted and merged with the names in order", () => {
    const lines = Array.from({ length: 3000 }, (_, i) => `2001:db8:${(i % 7).toString(16)}:${i.toString(16)}::/64`).reverse();
    const config = configWith({
      allowFile: { from: "--allow-file", value: "big.txt" },
      allowFileText: `${lines.join("\n")}\n${lines[0]}\n`,
    });
    const { policy } = buildPolicy(config, [resolved("api.example", "2001:db8:3::1")], []);
    const expected = [...lines, "2001:db8:3::1"]
      .map((text) => cidr(text))
      .sort(compareCidr)
      .map((c) => c.text);
    expect(policy.allowV6.map((e) => e.cidr.text)).toEqual(expected);
    expect(policy.allowV6.find((e) => e.cidr.text === cidr(lines[0] ?? "").text)?.sources).toEqual(["big.txt:1", "big.txt:3001"]);
  });

  test("--dns-servers any and --reject", () => {
    const { policy } = buildPolicy(
      configWith({ dnsServers: { from: "--dns-servers", value: "any" }, reject: true }),
      [],
      [cidr("198.51.100.2")],
    );
    expect(policy.dns).toEqual({ kind: "any" });
    expect(policy.verdict).toBe("reject");
  });

  test("--audit: the verdict is audit, whatever --reject says; off by default", () => {
    expect(buildPolicy(configWith({ audit: true, reject: true }), [], []).policy.verdict).toBe("audit");
    expect(buildPolicy(configWith({}), [], []).policy.verdict).toBe("drop");
  });

  test.each([
    { address: "127.0.0.1", reason: "loopback" },
    { address: "0.0.0.0", reason: "unspecified" },
    { address: "169.254.169.254", reason: "link-local (AWS, GCP, Azure, OpenStack metadata)" },
    { address: "224.0.0.251", reason: "multicast" },
    { address: "255.255.255.255", reason: "reserved/broadcast" },
    { address: "::1", reason: "loopback" },
    { address: "::", reason: "unspecified" },
    { address: "fe80::1", reason: "link-local" },
    { address: "ff02::1", reason: "multicast" },
    { address: "fd00:ec2::254", reason: "AWS metadata (IPv6)" },
    { address: "100.100.100.200", reason: "Alibaba Cloud metadata" },
    { address: "192.0.0.192", reason: "Oracle Cloud metadata" },
    { address: "168.63.129.16", reason: "Azure platform endpoint (WireServer)" },
    { address: "::ffff:169.254.169.254", reason: "link-local (AWS, GCP, Azure, OpenStack metadata)" },
    { address: "64:ff9b::a9fe:a9fe", reason: "link-local (AWS, GCP, Azure, OpenStack metadata)" },
  ])("a DNS answer of $address ($reason) is not allowed", ({ address, reason }) => {
    const { policy, warnings } = buildPolicy(configWith(), [resolved("evil.example", address, "203.0.113.10")], []);
    expect(texts([...policy.allowV4, ...policy.allowV6])).toEqual(["203.0.113.10 # evil.example"]);
    // Loopback is always allowed by the rules themselves: refusing it from DNS needs no warning.
    if (reason === "loopback") return expect(warnings).toEqual([]);
    expect(warnings).toEqual([expect.stringContaining(`evil.example: not allowing`)]);
    expect(warnings[0]).toContain(`(${reason})`);
  });

  test("a name whose every answer was refused is reported, so the summary does not count it as resolved; localhost says nothing", () => {
    const config = configWith({ hosts: { from: "hosts_csv", value: "api.example,localhost,meta.example" } });
    const built = buildFromNames(
      config,
      [
        { host: "api.example", addresses: [{ address: "203.0.113.10", family: 4 }] },
        {
          host: "localhost",
          addresses: [
            { address: "127.0.0.1", family: 4 },
            { address: "::1", family: 6 },
          ],
        },
        { host: "meta.example", addresses: [{ address: "169.254.169.254", family: 4 }] },
      ],
      [],
    );
    expect(built.refusedNames).toEqual(["localhost", "meta.example"]);
    expect(built.warnings).toEqual([
      "meta.example: not allowing 169.254.169.254 (link-local (AWS, GCP, Azure, OpenStack metadata)) from DNS; list it in --allow to permit it",
    ]);
  });

  test("an explicit --allow covering a forbidden address permits it", () => {
    const { policy, warnings } = buildPolicy(
      configWith({ allow: { from: "--allow", value: "169.254.169.254" } }),
      [resolved("metadata.example", "169.254.169.254")],
      [],
    );
    expect(texts(policy.allowV4)).toEqual(["169.254.169.254 # --allow, metadata.example"]);
    expect(warnings).toEqual([]);
  });

  test.each([
    { answer: { address: "203.0.113.1; drop", family: 4 as const } },
    { answer: { address: "2001:db8::1", family: 4 as const } },
    { answer: { address: "203.0.113.1\n}", family: 4 as const } },
    { answer: { address: "203.0.113.0/24", family: 4 as const } },
    { answer: { address: "2001:db8::/32", family: 6 as const } },
    { answer: { address: "2001:db8::1/128", family: 6 as const } },
  ])("a malformed DNS answer $answer.address never reaches the policy", ({ answer }) => {
    const { policy, warnings } = buildPolicy(
      configWith(),
      [{ host: "x.example", status: "resolved", addresses: [{ ...answer, ttl: 1 }] }],
      [],
    );
    expect(policy.allowV4).toEqual([]);
    expect(policy.allowV6).toEqual([]);
    expect(warnings[0]).toContain("malformed DNS answer");
  });

  test("an answer in another text form of an address is allowed as its canonical text", () => {
    const answers = [
      { address: "2001:DB8:0:0::0A", family: 6 as const, ttl: 1 },
      { address: "2001:db8:0:0:1:0:0:1", family: 6 as const, ttl: 1 },
    ];
    const { policy, warnings } = buildPolicy(configWith(), [{ host: "x.example", status: "resolved", addresses: answers }], []);
    expect(warnings).toEqual([]);
    expect(texts(policy.allowV6)).toEqual(["2001:db8::a # x.example", "2001:db8::1:0:0:1 # x.example"]);
  });

  test("an IPv4-mapped AAAA answer is never admitted (an IPv6 set never matches it), even under an --allow covering it", () => {
    const answers = [{ address: "::ffff:192.0.2.1", family: 6 as const, ttl: 1 }];
    const config = configWith({ allow: { from: "--allow", value: "::/0" } });
    const { policy, warnings } = buildPolicy(config, [{ host: "x.example", status: "resolved", addresses: answers }], []);
    expect(texts(policy.allowV6)).toEqual(["::/0 # --allow"]);
    expect(warnings).toEqual([
      "x.example: not allowing ::ffff:c000:201 (IPv4-mapped, for 192.0.2.1: connections to it leave as IPv4, which only an A answer opens) from DNS",
    ]);
  });

  const failed: HostResolution = {
    host: "down.example",
    status: "failed",
    error: "DNS_ETIMEOUT",
    addresses: [{ address: "203.0.113.50", family: 4, ttl: 1 }],
  };

  test("a failed name fails the run by default", () => {
    expect(() => buildPolicy(configWith(), [failed], [])).toThrow(
      new DomainwallError("resolve", "could not resolve down.example (DNS_ETIMEOUT); nothing was loaded"),
    );
  });

  test("--on-resolve-error=warn keeps going with what was resolved", () => {
    const { policy, warnings, summary } = buildPolicy(
      configWith({ onResolveError: { from: "--on-resolve-error", value: "warn" } }),
      [failed],
      [],
    );
    expect(texts(policy.allowV4)).toEqual(["203.0.113.50 # down.example"]);
    expect(warnings[0]).toContain("down.example: lookup failed");
    expect(summary.namesFailed).toBe(1);
  });

  const warn = () => configWith({ onResolveError: { from: "--on-resolve-error", value: "warn" } });
  const aaaaRefused: HostResolution = {
    host: "v4only.example",
    status: "failed",
    error: "DNS_EREFUSED (after 3 attempts)",
    addresses: [{ address: "203.0.113.60", family: 4, ttl: 30 }],
    failedFamilies: [6],
  };

  test("one family failing while the other answers: the name is resolved, the warning names the failed family", () => {
    const { policy, warnings, summary } = buildPolicy(configWith(), [aaaaRefused], []);
    expect(texts(policy.allowV4)).toEqual(["203.0.113.60 # v4only.example"]);
    expect(warnings).toEqual(["v4only.example: AAAA lookup failed (DNS_EREFUSED (after 3 attempts)); allowing its IPv4 addresses only"]);
    expect(summary).toMatchObject({ namesResolved: 1, namesFailed: 0 });
  });

  test("the A lookup failing while AAAA answers names IPv4", () => {
    const aFailed: HostResolution = {
      host: "v6only.example",
      status: "failed",
      error: "DNS_ESERVFAIL",
      addresses: [{ address: "2001:db8::60", family: 6, ttl: 30 }],
      failedFamilies: [4],
    };
    const { policy, warnings } = buildPolicy(configWith(), [aFailed], []);
    expect(texts(policy.allowV6)).toEqual(["2001:db8::60 # v6only.example"]);
    expect(warnings).toEqual(["v6only.example: A lookup failed (DNS_ESERVFAIL); allowing its IPv6 addresses only"]);
  });

  test("one family failing while the other has no records: nothing is known, the name fails", () => {
    const nothing: HostResolution = { ...aaaaRefused, addresses: [] };
    expect(() => buildPolicy(configWith(), [nothing], [])).toThrow(
      "could not resolve v4only.example (DNS_EREFUSED (after 3 attempts)); nothing was loaded",
    );
  });

  test("every name failing fails the run even with --on-resolve-error=warn (nothing would be allowed)", () => {
    const other: HostResolution = { host: "also-down.example", status: "failed", error: "DNS_ETIMEOUT", addresses: [] };
    expect(() => buildPolicy(warn(), [{ ...failed, addresses: [] }, other, { host: "gone.example", status: "empty" }], [])).toThrow(
      new DomainwallError(
        "resolve",
        "no name resolved and DNS failed for down.example (DNS_ETIMEOUT), also-down.example (DNS_ETIMEOUT): even with --on-resolve-error=warn this would allow nothing by name; nothing was loaded",
      ),
    );
  });

  test("with --on-resolve-error=warn, one resolved name is enough to go on", () => {
    const { warnings } = buildPolicy(warn(), [failed, resolved("api.example", "203.0.113.10")], []);
    expect(warnings).toEqual([expect.stringContaining("down.example: lookup failed")]);
  });

  test.each([
    { name: "nothing failed", resolutions: [{ host: "gone.example", status: "empty" }], expected: false },
    { name: "no names at all", resolutions: [], expected: false },
    {
      name: "one failed, none resolved",
      resolutions: [{ host: "a.example", status: "failed", error: "x", addresses: [] }],
      expected: true,
    },
    {
      name: "one failed, one only partly",
      resolutions: [{ host: "a.example", status: "failed", error: "x", addresses: [] }, aaaaRefused],
      expected: false,
    },
    {
      name: "one failed, one resolved",
      resolutions: [{ host: "a.example", status: "failed", error: "x", addresses: [] }, resolved("b.example", "203.0.113.1")],
      expected: false,
    },
  ] as { name: string; resolutions: HostResolution[]; expected: boolean }[])(
    "noNameResolved: $name → $expected",
    ({ resolutions, expected }) => {
      expect(noNameResolved(resolutions)).toBe(expected);
    },
  );

  test("--strict makes an empty name an error", () => {
    expect(() => buildPolicy(configWith({ strict: true }), [{ host: "cluster.local", status: "empty" }], [])).toThrow(
      "--strict: cluster.local has no addresses",
    );
  });
});

describe("buildPolicy: entries with ports", () => {
  const portTexts = (
    elements: readonly {
      cidr: { text: string };
      ports: { protocol: string; first: number; last: number };
      sources: readonly string[];
    }[] = [],
  ) => elements.map((e) => `${e.cidr.text} . ${e.ports.protocol} . ${e.ports.first}-${e.ports.last} # ${e.sources.join(", ")}`);

  test("a name's addresses carry its ports; names and networks without ports stay in the every-port sets", () => {
    const config = configWith({
      hosts: { from: "--hosts", value: "api.example:443,api.example:8000-8100,ntp.example:123/udp,plain.example" },
      allow: { from: "--allow", value: "192.0.2.0/24,[2001:db8::/64]:22" },
    });
    const { policy, summary } = buildPolicy(
      config,
      [
        resolved("api.example", "203.0.113.10", "2001:db8:ff::10"),
        resolved("ntp.example", "203.0.113.20"),
        resolved("plain.example", "203.0.113.30"),
      ],
      [],
    );
    expect(texts(policy.allowV4)).toEqual(["192.0.2.0/24 # --allow", "203.0.113.30 # plain.example"]);
    expect(texts(policy.allowV6)).toEqual([]);
    expect(portTexts(policy.allowPorts?.v4)).toEqual([
      "203.0.113.10 . tcp . 443-443 # api.example",
      "203.0.113.10 . tcp . 8000-8100 # api.example",
      "203.0.113.20 . udp . 123-123 # ntp.example",
    ]);
    expect(portTexts(policy.allowPorts?.v6)).toEqual([
      "2001:db8::/64 . tcp . 22-22 # --allow",
      "2001:db8:ff::10 . tcp . 443-443 # api.example",
      "2001:db8:ff::10 . tcp . 8000-8100 # api.example",
    ]);
    expect(summary).toMatchObject({ ipv4: 4, ipv6: 2 });
  });

  test("without any entry with ports there are no port sets (the ruleset stays as before)", () => {
    const { policy } = buildPolicy(configWith(), [resolved("api.example", "203.0.113.10")], []);
    expect(policy.allowPorts).toBeUndefined();
  });

  test("a name with ports that resolved to nothing yet still declares the (empty) port sets, for watch to fill", () => {
    const { policy } = buildPolicy(
      configWith({ hosts: { from: "--hosts", value: "api.example:443" } }),
      [{ host: "api.example", status: "empty" }],
      [],
    );
    expect(policy.allowPorts).toEqual({ v4: [], v6: [] });
  });

  test("a forbidden answer is refused for a name with ports too", () => {
    const { policy, warnings } = buildPolicy(
      configWith({ hosts: { from: "--hosts", value: "api.example:443" } }),
      [resolved("api.example", "169.254.169.254", "203.0.113.10")],
      [],
    );
    expect(portTexts(policy.allowPorts?.v4)).toEqual(["203.0.113.10 . tcp . 443-443 # api.example"]);
    expect(warnings).toEqual([
      "api.example: not allowing 169.254.169.254 (link-local (AWS, GCP, Azure, OpenStack metadata)) from DNS; list it in --allow to permit it",
    ]);
  });
});

describe("buildPolicy: --refuse-private-answers", () => {
  const addressesOf = (r: HostResolution): NameAddresses => ({ host: r.host, addresses: r.status === "empty" ? [] : r.addresses });
  const refusing = (extra: Partial<RawConfig> = {}) =>
    configWith({ hosts: { from: "--hosts", value: "api.example,db.svc.cluster.local,ntp.example:123/udp" }, ...extra });
  const answers: NameAddresses[] = [
    resolved(
      "api.example",
      "10.0.0.1",
      "172.16.5.5",
      "192.168.1.1",
      "100.64.0.1",
      "203.0.113.10",
      "fd00::1",
      "::ffff:10.1.2.3",
      "198.51.100.77",
      "2001:db8:1::99",
      "2001:db8:ff::10",
    ),
    resolved("db.svc.cluster.local", "10.96.0.20"),
    resolved("ntp.example", "192.168.0.123"),
  ].map(addressesOf);
  const resolvers = [cidr("198.51.100.2"), cidr("2001:db8:1::2")];

  test("refuses private, CGNAT, ULA answers and the resolvers' own networks, naming each; public answers stay", () => {
    const { policy, warnings } = buildFromNames({ ...refusing(), refusePrivateAnswers: true, privateDomains: [] }, answers, resolvers);
    expect(texts(policy.allowV4)).toEqual(["203.0.113.10 # api.example"]);
    expect(texts(policy.allowV6)).toEqual(["2001:db8:ff::10 # api.example"]);
    expect(policy.allowPorts?.v4).toEqual([]);
    expect(warnings).toEqual([
      "api.example: not allowing 10.0.0.1 (private, RFC 1918) from DNS (--refuse-private-answers); list its domain in --private-domains or the address in --allow to permit it",
      "api.example: not allowing 172.16.5.5 (private, RFC 1918) from DNS (--refuse-private-answers); list its domain in --private-domains or the address in --allow to permit it",
      "api.example: not allowing 192.168.1.1 (private, RFC 1918) from DNS (--refuse-private-answers); list its domain in --private-domains or the address in --allow to permit it",
      "api.example: not allowing 100.64.0.1 (carrier-grade NAT, RFC 6598) from DNS (--refuse-private-answers); list its domain in --private-domains or the address in --allow to permit it",
      "api.example: not allowing fd00::1 (unique local, RFC 4193) from DNS (--refuse-private-answers); list its domain in --private-domains or the address in --allow to permit it",
      "api.example: not allowing ::ffff:a01:203 (IPv4-mapped, for 10.1.2.3: connections to it leave as IPv4, which only an A answer opens) from DNS",
      "api.example: not allowing 198.51.100.77 (the resolvers' network 198.51.100.0/24) from DNS (--refuse-private-answers); list its domain in --private-domains or the address in --allow to permit it",
      "api.example: not allowing 2001:db8:1::99 (the resolvers' network 2001:db8:1::/64) from DNS (--refuse-private-answers); list its domain in --private-domains or the address in --allow to permit it",
      "db.svc.cluster.local: not allowing 10.96.0.20 (private, RFC 1918) from DNS (--refuse-private-answers); list its domain in --private-domains or the address in --allow to permit it",
      "ntp.example: not allowing 192.168.0.123 (private, RFC 1918) from DNS (--refuse-private-answers); list its domain in --private-domains or the address in --allow to permit it",
    ]);
  });

  test("names under --private-domains and addresses in --allow are admitted", () => {
    const config = configWith({
      hosts: { from: "--hosts", value: "api.example,db.svc.cluster.local" },
      allow: { from: "--allow", value: "10.0.0.0/24:443" },
      privateDomains: { from: "--private-domains", value: "cluster.local" },
    });
    const { policy, warnings } = buildFromNames(
      { ...config, refusePrivateAnswers: true },
      [resolved("api.example", "10.0.0.1", "10.0.1.1"), resolved("db.svc.cluster.local", "10.96.0.20")].map(addressesOf),
      resolvers,
    );
    expect(texts(policy.allowV4)).toEqual(["10.0.0.1 # api.example", "10.96.0.20 # db.svc.cluster.local"]);
    expect(warnings).toEqual([expect.stringContaining("api.example: not allowing 10.0.1.1 (private, RFC 1918)")]);
  });

  test("without the flag, private answers are allowed as before", () => {
    const { policy, warnings } = buildFromNames(
      configWith({ hosts: { from: "--hosts", value: "api.example" } }),
      [resolved("api.example", "10.0.0.1", "198.51.100.77")].map(addressesOf),
      resolvers,
    );
    expect(texts(policy.allowV4)).toEqual(["10.0.0.1 # api.example", "198.51.100.77 # api.example"]);
    expect(warnings).toEqual([]);
  });
});
