import { describe, expect, test } from "bun:test";
import { cidr, makeCidr, parseCidr } from "../../../src/net/ip.ts";
import type { Policy } from "../../../src/policy/policy.ts";
import { hashSetSize, renderNft, renderNftRemove, renderNftSetUpdate, SIZED_FROM } from "../../../src/backends/nft/render.ts";
import { renderIptables } from "../../../src/backends/iptables/render.ts";
import { POLICIES, PROXY_POLICIES } from "../../fixtures/policies.ts";
import { expectGolden } from "../../support/golden.ts";

describe("renderNft", () => {
  test.each(Object.keys(POLICIES))("%s matches its golden file", async (name) => {
    await expectGolden(`${name}.nft`, renderNft(POLICIES[name]!));
  });

  test.each(Object.keys(PROXY_POLICIES))("%s matches its golden file", async (name) => {
    await expectGolden(`${name}.nft`, renderNft(PROXY_POLICIES[name]!));
  });

  test("the DNS proxy's sets carry admitted elements over a table replace; without the proxy there are none", () => {
    const carried = { v4: "elements = { 203.0.113.7 timeout 35s expires 20000ms }", v6: "" };
    const text = renderNft(PROXY_POLICIES["dns-proxy"]!, carried);
    expect(text).toContain(
      "\tset proxy_v4 {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t\telements = { 203.0.113.7 timeout 35s expires 20000ms }\n\t}",
    );
    expect(text).toContain("\tset proxy_v6 {\n\t\ttype ipv6_addr\n\t\tflags timeout\n\t}");
    expect(renderNft(POLICIES["egress-only"]!, carried)).not.toContain("proxy_v4");
  });

  test("the DNS proxy's zone and guard chains: forged answers on lo dropped; a family without resolvers has no other rule, a stub on loopback is never zoned, the zone is the original direction's only, and without the proxy there are none", () => {
    const chain = (text: string, name: string) =>
      text
        .slice(text.indexOf(`\tchain ${name} {`), text.indexOf("\t}", text.indexOf(`\tchain ${name} {`)))
        .split("\n")
        .slice(1)
        .map((l) => l.trim())
        .filter((l) => l !== "");
    const v4only = renderNft({
      ...PROXY_POLICIES["dns-proxy"]!,
      dns: { kind: "servers", v4: [cidr("127.0.0.53"), cidr("198.51.100.0/24")], v6: [] },
    });
    expect(chain(v4only, "dns_zone_out")).toEqual([
      "type filter hook output priority raw; policy accept;",
      "meta skgid 2000053 meta l4proto { tcp, udp } th dport 53 ip daddr != 127.0.0.0/8 ip daddr { 127.0.0.53, 198.51.100.0/24 } ct original zone set 53",
    ]);
    const forged = 'iifname "lo" meta l4proto { tcp, udp } th sport 53 fib saddr type != local ct status & dnat == 0 counter drop';
    const copied = 'iifname "lo" ct direction reply ct status dnat meta l4proto { tcp, udp } th sport 15353 counter drop';
    expect(chain(v4only, "dns_guard_in")).toEqual([
      "type filter hook input priority filter; policy accept;",
      forged,
      copied,
      "meta l4proto { tcp, udp } th sport 53 ip saddr != 127.0.0.0/8 ip saddr { 127.0.0.53, 198.51.100.0/24 } ct state new drop",
    ]);
    const any = renderNft({ ...PROXY_POLICIES["dns-proxy"]!, dns: { kind: "any" } });
    expect(chain(any, "dns_guard_in")).toEqual([
      "type filter hook input priority filter; policy accept;",
      forged,
      copied,
      "meta l4proto { tcp, udp } th sport 53 ip saddr != 127.0.0.0/8 ct state new drop",
      "meta l4proto { tcp, udp } th sport 53 ip6 saddr != ::1 ct state new drop",
    ]);
    expect(renderNft(POLICIES["egress-only"]!)).not.toContain("ct original zone");
    expect(renderNft(POLICIES["egress-only"]!)).not.toContain("dns_guard_in");
  });

  test("iptables-legacy refuses a DNS-proxy policy, saying why", () => {
    expect(() => renderIptables(PROXY_POLICIES["dns-proxy"]!, 4)).toThrow("--dns-proxy needs the nft backend");
  });

  test("is deterministic and ends with a newline", () => {
    const policy = POLICIES["egress-only"]!;
    expect(renderNft(policy)).toBe(renderNft(structuredClone(policy)));
    expect(renderNft(policy).endsWith("}\n")).toBe(true);
  });

  test("replaces the table atomically: create-if-missing, delete, define, in one file", () => {
    const lines = renderNft(POLICIES.empty!).split("\n");
    const tableLines = lines.filter((l) => l.startsWith("table") || l.startsWith("delete"));
    expect(tableLines).toEqual(["table inet domainwall", "delete table inet domainwall", "table inet domainwall {"]);
    expect(renderNft(POLICIES.empty!)).not.toContain("flush ruleset");
  });

  test("no input chain without ports; input chain with ports", () => {
    expect(renderNft(POLICIES["egress-only"]!)).not.toContain("hook input");
    expect(renderNft(POLICIES["ingress-reject"]!)).toContain("tcp dport { 80, 3000 } accept");
  });

  test("denied destinations are recorded in bounded sets per direction: out always, in only with an input chain", () => {
    const sets = (text: string) =>
      text
        .split("\n")
        .filter((l) => /^\tset denied_/.test(l))
        .map((l) => l.trim());
    expect(sets(renderNft(POLICIES["egress-only"]!))).toEqual(["set denied_out_v4 {", "set denied_out_v6 {"]);
    expect(sets(renderNft(POLICIES["ingress-reject"]!))).toEqual([
      "set denied_out_v4 {",
      "set denied_out_v6 {",
      "set denied_in_v4 {",
      "set denied_in_v6 {",
    ]);
    expect(renderNft(POLICIES["egress-only"]!)).toContain("\t\tsize 4096\n\t\tflags dynamic,timeout\n");
  });

  test("--forward: the forward chain records into the output chain's sets, declared once", () => {
    const text = renderNft(POLICIES.ports!);
    expect(
      text
        .split("\n")
        .filter((l) => /^\tset denied_/.test(l))
        .map((l) => l.trim()),
    ).toEqual(["set denied_out_v4 {", "set denied_out_v6 {"]);
    const forward = text.slice(text.indexOf("\tchain forward {"));
    expect(forward).toContain("update @denied_out_v4 { ip daddr . meta l4proto . th dport counter }");
  });

  test("remove deletes only our table and tolerates its absence", () => {
    expect(renderNftRemove()).toBe("table inet domainwall\ndelete table inet domainwall\n");
  });
});

describe("element comments", () => {
  // An --allow-file path is the user's text and becomes a source: it must not end the comment's line.
  const hostile = "/tmp/x\n}\ntable ip evil { chain c { type filter hook output priority 0; policy accept; } }\r#";
  const policy: Policy = { ...POLICIES["egress-only"]!, allowV4: [{ cidr: cidr("192.0.2.1"), sources: [`${hostile}:1`, "api.example"] }] };

  test("a source with newlines or ruleset syntax stays one comment on the element's line, in both renderers", () => {
    for (const text of [renderNft(policy), renderNftSetUpdate(policy), renderIptables(policy, 4)]) {
      const line = text.split("\n").find((l) => l.includes("# /tmp/x"));
      expect(line).toEndWith(
        "# /tmp/x???table ip evil ? chain c ? type filter hook output priority 0? policy accept? ? ???:1, api.example",
      );
      expect(text).not.toContain("table ip evil {");
    }
  });
});

describe("IPv6 /64s", () => {
  test("each is its network address in allow_net64_v6, however it was written", () => {
    const parsed = (text: string) => {
      const p = parseCidr(text);
      if (!p.ok) throw new Error(p.reason);
      return { cidr: p.cidr, sources: ["--allow"] };
    };
    const text = renderNft({
      ...POLICIES.empty!,
      allowV6: [parsed("2001:db8:5::/64"), parsed("2001:DB8:6:0::/64"), parsed("2001:db8:7::1/64"), parsed("2001:db8:8::/63")],
    });
    const set = text.slice(text.indexOf("set allow_net64_v6 {"), text.indexOf("set allow_v4 {"));
    expect(set).toContain("\t\t\t2001:db8:5::, # --allow\n\t\t\t2001:db8:6::, # --allow\n\t\t\t2001:db8:7::, # --allow\n");
    expect(text.slice(text.indexOf("set allow_v6 {"))).toContain("\t\t\t2001:db8:8::/63, # --allow\n");
  });
});

describe("large hash sets are declared with a size", () => {
  const addresses = (n: number) =>
    Array.from({ length: n }, (_, i) => ({ cidr: makeCidr(4, [((240 << 24) >>> 0) + i], 32), sources: ["f"] }));
  const net64s = (n: number) => Array.from({ length: n }, (_, i) => ({ cidr: makeCidr(6, [0x20010db8, i, 0, 0], 64), sources: ["f"] }));
  const sizeOf = (text: string, set: string) =>
    /^\t\tsize (\d+)$/m.exec(text.slice(text.indexOf(`set ${set} {`)).split("\t}")[0] ?? "")?.[1];

  test(`from ${SIZED_FROM} elements on, room for twice as many (a power of two); below, none; never on interval sets`, () => {
    expect(hashSetSize(SIZED_FROM)).toBe(2 * SIZED_FROM);
    expect(hashSetSize(5000)).toBe(16384);
    const below = renderNft({ ...POLICIES.empty!, allowV4: addresses(SIZED_FROM - 1) });
    expect(sizeOf(below, "allow_addr_v4")).toBeUndefined();
    const at = renderNft({ ...POLICIES.empty!, allowV4: addresses(SIZED_FROM), allowV6: net64s(5000) });
    expect(sizeOf(at, "allow_addr_v4")).toBe(String(2 * SIZED_FROM));
    expect(sizeOf(at, "allow_net64_v6")).toBe("16384");
    expect(sizeOf(at, "allow_addr_v6")).toBeUndefined();
    const networks = renderNft({
      ...POLICIES.empty!,
      allowV4: addresses(SIZED_FROM).map((e) => ({ ...e, cidr: makeCidr(4, e.cidr.words, 31) })),
    });
    expect(sizeOf(networks, "allow_v4")).toBeUndefined();
    expect(networks).toContain("\t\t\t240.0.0.0/31,");
  });
});

describe("renderNftSetUpdate (watch)", () => {
  test("flushes and refills only the allow sets (addresses, /64s and networks), with the same element lines as renderNft", () => {
    expect(renderNftSetUpdate(POLICIES["ingress-reject"]!)).toBe(
      [
        "#!/usr/sbin/nft -f",
        "# domainwall: new allow sets, loaded as one transaction. Do not edit.",
        "flush set inet domainwall allow_addr_v4",
        "flush set inet domainwall allow_addr_v6",
        "flush set inet domainwall allow_net64_v6",
        "flush set inet domainwall allow_v4",
        "flush set inet domainwall allow_v6",
        "add element inet domainwall allow_addr_v4 {",
        "\t203.0.113.10, # api.example",
        "}",
        "add element inet domainwall allow_addr_v6 {",
        "\t2001:db8:ff::10, # api.example",
        "}",
        "add element inet domainwall allow_net64_v6 {",
        "\t2001:db8:5::, # --allow",
        "}",
        "add element inet domainwall allow_v4 {",
        "\t192.0.2.0/24, # --allow",
        "}",
        "add element inet domainwall allow_v6 {",
        "\t2001:db8::/48, # extra_whitelist_ips_csv",
        "}",
        "",
      ].join("\n"),
    );
  });

  test("with entries with ports, the port sets are flushed and refilled too, in the same transaction", () => {
    expect(renderNftSetUpdate(POLICIES.ports!)).toBe(
      [
        "#!/usr/sbin/nft -f",
        "# domainwall: new allow sets, loaded as one transaction. Do not edit.",
        "flush set inet domainwall allow_addr_v4",
        "flush set inet domainwall allow_addr_v6",
        "flush set inet domainwall allow_net64_v6",
        "flush set inet domainwall allow_v4",
        "flush set inet domainwall allow_v6",
        "flush set inet domainwall allow_ports_v4",
        "flush set inet domainwall allow_ports_v6",
        "add element inet domainwall allow_addr_v4 {",
        "\t203.0.113.30, # plain.example",
        "}",
        "add element inet domainwall allow_ports_v4 {",
        "\t198.51.100.8 . tcp . 8000-8100, # api.example",
        "\t203.0.113.0/24 . tcp . 443,     # --allow",
        "\t203.0.113.20 . udp . 123,       # ntp.example",
        "}",
        "add element inet domainwall allow_ports_v6 {",
        "\t2001:db8::/64 . tcp . 443,         # --allow",
        "\t2001:db8:ff::10 . tcp . 8000-8100, # api.example",
        "}",
        "",
      ].join("\n"),
    );
  });

  test("an empty set is only flushed", () => {
    expect(renderNftSetUpdate(POLICIES.empty!)).toBe(
      "#!/usr/sbin/nft -f\n# domainwall: new allow sets, loaded as one transaction. Do not edit.\nflush set inet domainwall allow_addr_v4\nflush set inet domainwall allow_addr_v6\nflush set inet domainwall allow_net64_v6\nflush set inet domainwall allow_v4\nflush set inet domainwall allow_v6\n",
    );
  });
});
