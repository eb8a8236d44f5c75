import { describe, expect, test } from "bun:test";
import { resolversFor, systemResolvers } from "../../src/dns/resolvers.ts";
import { blockedLookupsHint } from "../../src/commands/blocked-lookups.ts";
import { cidr } from "../../src/net/ip.ts";

const POD = "nameserver 198.51.100.2\nnameserver 2001:db8:1::2\n";
const STUB = "nameserver 127.0.0.53\n";
const UPSTREAM = "nameserver 203.0.113.53\n";

function io(files: Readonly<Record<string, string | undefined>>) {
  const warnings: string[] = [];
  return { warnings, io: { readFile: async (path: string) => files[path], warn: (m: string) => void warnings.push(m), info: () => {} } };
}

describe("resolversFor: --dns-servers that leave out the host's own resolvers", () => {
  test.each([
    { name: "both left out", servers: ["192.0.2.1"], files: { "/etc/resolv.conf": POD }, missing: "198.51.100.2, 2001:db8:1::2" },
    { name: "one left out", servers: ["198.51.100.0/24"], files: { "/etc/resolv.conf": POD }, missing: "2001:db8:1::2" },
    {
      name: "behind a local stub: its upstream",
      servers: ["192.0.2.1"],
      files: { "/etc/resolv.conf": STUB, "/run/systemd/resolve/resolv.conf": UPSTREAM },
      missing: "203.0.113.53",
    },
    { name: "all listed", servers: ["198.51.100.2", "2001:db8:1::/64"], files: { "/etc/resolv.conf": POD }, missing: undefined },
    { name: "no resolv.conf", servers: ["192.0.2.1"], files: {}, missing: undefined },
  ])("$name", async ({ servers, files, missing }) => {
    const { warnings, io: world } = io(files);
    const result = await resolversFor({ kind: "list", servers: servers.map(cidr) }, world);
    expect(result.map((c) => c.text)).toEqual(servers.map((s) => cidr(s).text));
    if (missing === undefined) expect(warnings).toEqual([]);
    else {
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toStartWith(`--dns-servers ${servers.join(", ")} leaves out the resolvers this host's lookups use`);
      expect(warnings[0]).toContain(`), ${missing}: once these rules are loaded`);
    }
  });

  test("systemResolvers leaves loopback out", async () => {
    const { io: world } = io({ "/etc/resolv.conf": "nameserver 127.0.0.1\nnameserver 198.51.100.2\n" });
    expect((await systemResolvers(world)).map((c) => c.text)).toEqual(["198.51.100.2"]);
  });
});

describe("blockedLookupsHint: when the loaded policy is why lookups fail", () => {
  const system = [cidr("198.51.100.2"), cidr("2001:db8:1::2")];
  test.each([
    { name: "DNS open to any server", dns: "any" as const, hint: undefined },
    { name: "the resolvers in the loaded set", dns: ["198.51.100.2", "2001:db8:1::/64"], hint: undefined },
    {
      name: "only another server loaded",
      dns: ["192.0.2.1"],
      hint: "the domainwall policy loaded here lets DNS go only to 192.0.2.1, so it blocks this host's resolvers (/etc/resolv.conf) 198.51.100.2, 2001:db8:1::2 and domainwall's own lookups: run 'domainwall remove' (which opens everything until the next apply), then apply again with --dns-servers including 198.51.100.2,2001:db8:1::2 (or --dns-servers any)",
    },
  ])("$name", ({ dns, hint }) => {
    expect(blockedLookupsHint(dns, system)).toBe(hint);
  });
});
