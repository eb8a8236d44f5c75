import { describe, expect, test } from "bun:test";
import { hostsFileAnswers, parseHostsFile, withHostsFile } from "../../src/dns/hosts-file.ts";
import type { Family } from "../../src/net/ip.ts";
import type { Lookup } from "../../src/dns/resolve.ts";

const HOSTS = `# The kubelet's /etc/hosts, and some noise
127.0.0.1\tlocalhost
::1 localhost ip6-localhost ip6-loopback   # comment after the names
10.244.1.7  web-0.web.default.svc.cluster.local web-0
203.0.113.30 API.Example mirror.example
203.0.113.31 api.example
2001:db8::30 v6only.example
not-an-address broken.example
fe80::1%eth0 zoned.example
0300.0.0.1 octal.example

203.0.113.32
`;

describe("parseHostsFile", () => {
  const table = parseHostsFile(HOSTS);
  test.each([
    { name: "localhost", family: 4, expected: ["127.0.0.1"] },
    { name: "localhost", family: 6, expected: ["::1"] },
    { name: "ip6-loopback", family: 6, expected: ["::1"] },
    { name: "ip6-loopback", family: 4, expected: [] },
    { name: "web-0", family: 4, expected: ["10.244.1.7"] },
    { name: "api.example", family: 4, expected: ["203.0.113.30", "203.0.113.31"] },
    { name: "API.EXAMPLE", family: 4, expected: ["203.0.113.30", "203.0.113.31"] },
    { name: "api.example", family: 6, expected: [] },
    { name: "mirror.example", family: 4, expected: ["203.0.113.30"] },
    { name: "v6only.example", family: 4, expected: [] },
    { name: "v6only.example", family: 6, expected: ["2001:db8::30"] },
  ] as { name: string; family: Family; expected: string[] }[])(
    "$name, IPv$family → $expected (listed: only the file answers)",
    ({ name, family, expected }) => {
      expect(hostsFileAnswers(table, name, family)).toEqual(expected.map((address) => ({ address, ttl: 0 })));
    },
  );

  test.each(["other.example", "broken.example", "zoned.example", "octal.example", "localhost.", "api.example."])(
    "%s is not listed: DNS decides (an absolute name is not matched, as in glibc and c-ares)",
    (name) => {
      expect(hostsFileAnswers(table, name, 4)).toBeUndefined();
      expect(hostsFileAnswers(table, name, 6)).toBeUndefined();
    },
  );

  test("an empty or missing file lists nothing", () => {
    expect(hostsFileAnswers(parseHostsFile(""), "localhost", 4)).toBeUndefined();
  });
});

describe("withHostsFile: /etc/hosts first, as glibc's getaddrinfo", () => {
  const dnsAsked: string[] = [];
  const dns: Lookup = async (host, family) => {
    dnsAsked.push(`${host} ${family}`);
    if (family === 6) throw Object.assign(new Error("refused"), { code: "DNS_EREFUSED" });
    return [{ address: "203.0.113.99", ttl: 30 }];
  };
  const reads: number[] = [];
  const lookup = withHostsFile(async () => {
    reads.push(1);
    return "127.0.0.1 localhost\n203.0.113.30 api.example\n";
  }, dns);

  test("a listed name is answered from the file only, both families, without asking DNS", async () => {
    dnsAsked.length = 0;
    expect(await lookup("localhost", 4)).toEqual([{ address: "127.0.0.1", ttl: 0 }]);
    expect(await lookup("localhost", 6)).toEqual([]);
    expect(await lookup("api.example", 6)).toEqual([]);
    expect(dnsAsked).toEqual([]);
  });

  test("a name the file does not list goes to DNS", async () => {
    dnsAsked.length = 0;
    expect(await lookup("other.example", 4)).toEqual([{ address: "203.0.113.99", ttl: 30 }]);
    expect(lookup("other.example", 6)).rejects.toMatchObject({ code: "DNS_EREFUSED" });
    expect(dnsAsked).toEqual(["other.example 4", "other.example 6"]);
  });

  test("the file is read again for each lookup (an edit is seen), and a missing or unreadable file means DNS only", async () => {
    let text: string | undefined;
    const edited = withHostsFile(async () => text, dns);
    expect(await edited("localhost", 4)).toEqual([{ address: "203.0.113.99", ttl: 30 }]);
    text = "198.51.100.7 localhost\n";
    expect(await edited("localhost", 4)).toEqual([{ address: "198.51.100.7", ttl: 0 }]);
    const unreadable = withHostsFile(async () => {
      throw Object.assign(new Error("permission denied"), { code: "EACCES" });
    }, dns);
    expect(await unreadable("localhost", 4)).toEqual([{ address: "203.0.113.99", ttl: 30 }]);
  });

  test("with reuseMs, lookups within that long of a read share it (one read per watch cycle, not per wave of lookups); later ones read again", async () => {
    let clock = 0;
    let text = "203.0.113.30 api.example\n";
    let count = 0;
    const shared = withHostsFile(async () => (count++, text), dns, { now: () => clock, reuseMs: 1000 });
    expect(await shared("api.example", 4)).toEqual([{ address: "203.0.113.30", ttl: 0 }]);
    text = "203.0.113.31 api.example\n";
    clock = 999;
    expect(await shared("api.example", 4)).toEqual([{ address: "203.0.113.30", ttl: 0 }]);
    expect(count).toBe(1);
    clock = 1000;
    expect(await shared("api.example", 4)).toEqual([{ address: "203.0.113.31", ttl: 0 }]);
    expect(count).toBe(2);
  });
});
