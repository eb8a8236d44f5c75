import { describe, expect, test } from "bun:test";
import { parseAllowFile } from "../../src/config/config.ts";
import { DomainwallError } from "../../src/errors.ts";
import { parseConfig, type RawConfig, type RawWatchConfig } from "../support/config.ts";

const base: RawConfig = { strict: false, reject: false, requireHosts: true, hosts: { from: "hosts_csv", value: "a.example" } };

function problemsOf(raw: Partial<RawConfig>): string {
  try {
    parseConfig({ ...base, ...raw });
  } catch (error) {
    expect(error).toBeInstanceOf(DomainwallError);
    expect((error as DomainwallError).kind).toBe("usage");
    return (error as Error).message;
  }
  throw new Error("expected a configuration error");
}

describe("parseConfig accepts", () => {
  test("the original's variables, tolerating whitespace, empty items and case; a trailing dot makes a different (absolute) name", () => {
    const { config, warnings } = parseConfig({
      ...base,
      hosts: { from: "hosts_csv", value: " svc.cluster.local, ,API.example.,api.example,,192.0.2.1, [2001:db8::1] " },
      ports: { from: "listening_ports_csv", value: "3000, 80,3000," },
      allow: { from: "extra_whitelist_ips_csv", value: "192.168.0.0/24, 2001:db8:ff::/64" },
    });
    expect(config.hosts).toEqual(["svc.cluster.local", "api.example.", "api.example"]);
    expect(config.ports).toEqual([80, 3000]);
    expect(config.allow.map((a) => `${a.cidr.text} ${a.source}`)).toEqual([
      "192.0.2.1 hosts_csv",
      "192.168.0.0/24 extra_whitelist_ips_csv",
      "2001:db8::1 hosts_csv",
      "2001:db8:ff::/64 extra_whitelist_ips_csv",
    ]);
    expect(config.dnsServers).toEqual({ kind: "resolv.conf" });
    expect(config.onResolveError).toBe("fail");
    expect(config.resolveTimeoutMs).toBe(10_000);
    expect(warnings).toEqual([]);
  });

  test("a CIDR with host bits set is normalised with a warning naming it", () => {
    const { config, warnings } = parseConfig({ ...base, allow: { from: "--allow", value: "192.0.2.77/24" } });
    expect(config.allow.map((a) => a.cidr.text)).toEqual(["192.0.2.0/24"]);
    expect(warnings).toEqual(['--allow: "192.0.2.77/24" has host bits set; using 192.0.2.0/24']);
  });

  test.each([
    { value: "any", expected: { kind: "any" } },
    { value: " any ", expected: { kind: "any" } },
  ])("--dns-servers $value", ({ value, expected }) => {
    expect(parseConfig({ ...base, dnsServers: { from: "--dns-servers", value } }).config.dnsServers).toEqual(expected as never);
  });

  test("--dns-servers LIST keeps both families", () => {
    const { dnsServers } = parseConfig({ ...base, dnsServers: { from: "--dns-servers", value: "198.51.100.2, 2001:db8::53" } }).config;
    expect(dnsServers.kind === "list" ? dnsServers.servers.map((s) => s.text) : []).toEqual(["198.51.100.2", "2001:db8::53"]);
  });

  test("remove and status need no hosts", () => {
    expect(parseConfig({ ...base, hosts: undefined, requireHosts: false }).config.hosts).toEqual([]);
  });

  test("flags for timeout and resolve errors", () => {
    const { config } = parseConfig({
      ...base,
      resolveTimeout: { from: "--resolve-timeout", value: "2.5" },
      onResolveError: { from: "--on-resolve-error", value: "warn" },
    });
    expect(config.resolveTimeoutMs).toBe(2500);
    expect(config.onResolveError).toBe("warn");
  });
});

describe("parseConfig rejects, naming the variable or flag and the value", () => {
  test.each([
    { name: "missing hosts", raw: { hosts: undefined }, message: "hosts_csv (or --hosts) is required" },
    { name: "hosts with only commas", raw: { hosts: { from: "--hosts", value: " , ," } }, message: '--hosts: " , ," lists no host names' },
    {
      name: "nft syntax in a name",
      raw: { hosts: { from: "hosts_csv", value: "a.example; flush ruleset" } },
      message: 'hosts_csv: "a.example; flush ruleset" is not a valid host name',
    },
    { name: "braces", raw: { hosts: { from: "hosts_csv", value: "a}.example" } }, message: 'hosts_csv: "a}.example"' },
    { name: "quotes", raw: { hosts: { from: "hosts_csv", value: 'a".example' } }, message: 'hosts_csv: "a\\".example"' },
    { name: "newline", raw: { hosts: { from: "hosts_csv", value: "a.example\ndrop" } }, message: 'hosts_csv: "a.example\\ndrop"' },
    {
      name: "port 0",
      raw: { ports: { from: "listening_ports_csv", value: "0" } },
      message: 'listening_ports_csv: "0" is not a port number (1-65535)',
    },
    { name: "port 65536", raw: { ports: { from: "--ports", value: "65536" } }, message: '--ports: "65536" is not a port number' },
    { name: "port range", raw: { ports: { from: "--ports", value: "80-90" } }, message: '--ports: "80-90"' },
    { name: "negative port", raw: { ports: { from: "--ports", value: "-1" } }, message: '--ports: "-1"' },
    {
      name: "bad prefix",
      raw: { allow: { from: "extra_whitelist_ips_csv", value: "192.0.2.0/33" } },
      message: 'extra_whitelist_ips_csv: "192.0.2.0/33" is not an IP address or CIDR: prefix must be 0-32',
    },
    {
      name: "name in allow",
      raw: { allow: { from: "--allow", value: "example.com" } },
      message: '--allow: "example.com" is not an IP address or CIDR',
    },
    {
      name: "smuggled set syntax",
      raw: { allow: { from: "--allow", value: "192.0.2.0/24 } accept" } },
      message: '--allow: "192.0.2.0/24 } accept"',
    },
    {
      name: "dns server name",
      raw: { dnsServers: { from: "--dns-servers", value: "dns.example" } },
      message: '--dns-servers: "dns.example" is not a resolver address',
    },
    {
      name: "one bad dns server among good ones",
      raw: { dnsServers: { from: "--dns-servers", value: "198.51.100.2,bogus" } },
      message: '--dns-servers: "bogus" is not a resolver address',
    },
    { name: "empty dns servers", raw: { dnsServers: { from: "--dns-servers", value: "" } }, message: '--dns-servers: expected "any"' },
    {
      name: "timeout",
      raw: { resolveTimeout: { from: "--resolve-timeout", value: "soon" } },
      message: '--resolve-timeout: "soon" is not a duration',
    },
    {
      name: "on-resolve-error",
      raw: { onResolveError: { from: "--on-resolve-error", value: "ignore" } },
      message: '--on-resolve-error: "ignore" must be "fail" or "warn"',
    },
  ])("$name", ({ raw, message }) => {
    expect(problemsOf(raw as Partial<RawConfig>)).toContain(message);
  });

  test("every problem at once, in one message", () => {
    const message = problemsOf({
      hosts: { from: "hosts_csv", value: "ok.example,bad_name" },
      ports: { from: "listening_ports_csv", value: "70000" },
      allow: { from: "extra_whitelist_ips_csv", value: "300.1.1.1" },
    });
    expect(message.split("\n").filter((line) => line.startsWith("  - "))).toHaveLength(3);
    expect(message).toContain('"bad_name"');
    expect(message).toContain('"70000"');
    expect(message).toContain('"300.1.1.1"');
  });
});

describe("parseConfig: watch options", () => {
  const watch = (raw: Partial<RawWatchConfig>): RawConfig => ({ ...base, watch: { removeOnExit: false, ...raw } });
  const flag = (name: string, value: string) => ({ from: `--${name}`, value });

  test("defaults: --min-ttl 5s, --max-ttl 1h, --grace 5m, nothing served, rules stay on exit", () => {
    expect(parseConfig(watch({})).config.watch).toEqual({ minTtlMs: 5_000, maxTtlMs: 3_600_000, graceMs: 300_000, removeOnExit: false });
    expect(parseConfig(base).config.watch).toBeUndefined();
  });

  test("every flag", () => {
    const { config } = parseConfig(
      watch({
        minTtl: flag("min-ttl", "1"),
        maxTtl: flag("max-ttl", "10m"),
        grace: flag("grace", "0"),
        readyFile: flag("ready-file", "/run/domainwall/ready"),
        metricsAddr: flag("metrics-addr", "0.0.0.0:9464"),
        removeOnExit: true,
      }),
    );
    expect(config.watch).toEqual({
      minTtlMs: 1_000,
      maxTtlMs: 600_000,
      graceMs: 0,
      readyFile: "/run/domainwall/ready",
      metricsAddr: { hostname: "0.0.0.0", port: 9464 },
      removeOnExit: true,
    });
  });

  test.each([
    { value: "127.0.0.1:9464", expected: { hostname: "127.0.0.1", port: 9464 } },
    { value: ":9464", expected: { hostname: "0.0.0.0", port: 9464 } },
    { value: "[::]:9464", expected: { hostname: "::", port: 9464 } },
    { value: "[2001:db8::1]:80", expected: { hostname: "2001:db8::1", port: 80 } },
    { value: "localhost:9464", expected: { hostname: "localhost", port: 9464 } },
  ])("--metrics-addr $value", ({ value, expected }) => {
    expect(parseConfig(watch({ metricsAddr: flag("metrics-addr", value) })).config.watch?.metricsAddr).toEqual(expected);
  });

  test.each([
    {
      name: "min-ttl not a duration",
      raw: { minTtl: flag("min-ttl", "often") },
      message: '--min-ttl: "often" is not a duration between 1s and 3600s (e.g. 5s)',
    },
    { name: "min-ttl below a second", raw: { minTtl: flag("min-ttl", "500ms") }, message: '--min-ttl: "500ms"' },
    {
      name: "max-ttl above a day",
      raw: { maxTtl: flag("max-ttl", "25h") },
      message: '--max-ttl: "25h" is not a duration between 1s and 86400s',
    },
    { name: "negative grace", raw: { grace: flag("grace", "-1s") }, message: '--grace: "-1s" is not a duration' },
    {
      name: "min above max",
      raw: { minTtl: flag("min-ttl", "2m"), maxTtl: flag("max-ttl", "1m") },
      message: "--min-ttl (120s) must not be longer than --max-ttl (60s)",
    },
    { name: "empty ready file", raw: { readyFile: flag("ready-file", " ") }, message: "--ready-file: expected a file path" },
    {
      name: "metrics port missing",
      raw: { metricsAddr: flag("metrics-addr", "0.0.0.0") },
      message: '--metrics-addr: "0.0.0.0" is not HOST:PORT',
    },
    { name: "metrics port 0", raw: { metricsAddr: flag("metrics-addr", ":0") }, message: '--metrics-addr: ":0"' },
    {
      name: "metrics host a name",
      raw: { metricsAddr: flag("metrics-addr", "metrics.example:9464") },
      message: '--metrics-addr: "metrics.example:9464"',
    },
    {
      name: "metrics IPv6 without brackets",
      raw: { metricsAddr: flag("metrics-addr", "::1:9464") },
      message: '--metrics-addr: "::1:9464"',
    },
  ])("rejects $name", ({ raw, message }) => {
    expect(problemsOf(watch(raw))).toContain(message);
  });

  test("watch problems come with the others, all at once", () => {
    const message = problemsOf({ ...watch({ grace: flag("grace", "soon") }), ports: { from: "--ports", value: "0" } });
    expect(message).toContain('--grace: "soon"');
    expect(message).toContain('--ports: "0"');
  });
});

describe("parseConfig: --allow-file", () => {
  const file = (text: string | undefined, from = "--allow-file"): Partial<RawConfig> => ({
    allowFile: { from, value: "/etc/allow.txt" },
    allowFileText: text,
  });

  test("one address or CIDR per line, # comments and blank lines skipped; each entry names its line", () => {
    const text = "# partner ranges\n192.0.2.0/24\n\n  2001:db8:1::/48   # office\n198.51.100.7\n";
    const { config, warnings } = parseConfig({ ...base, ...file(text), allow: { from: "--allow", value: "203.0.113.0/24" } });
    expect(config.allow.map((a) => `${a.cidr.text} ${a.source}`)).toEqual([
      "192.0.2.0/24 /etc/allow.txt:2",
      "198.51.100.7 /etc/allow.txt:5",
      "203.0.113.0/24 --allow",
      "2001:db8:1::/48 /etc/allow.txt:4",
    ]);
    expect(warnings).toEqual([]);
  });

  test("host bits set: normalised with a warning naming the file, the line and the value", () => {
    const { config, warnings } = parseConfig({ ...base, ...file("192.0.2.77/24\r\n", "cfg.toml: allow-file") });
    expect(config.allow.map((a) => a.cidr.text)).toEqual(["192.0.2.0/24"]);
    expect(warnings).toEqual(['cfg.toml: allow-file: /etc/allow.txt:1: "192.0.2.77/24" has host bits set; using 192.0.2.0/24']);
  });

  test.each([
    {
      name: "a bad line",
      text: "192.0.2.0/24\n300.1.1.1\n",
      message: '--allow-file: /etc/allow.txt:2: "300.1.1.1" is not an IP address or CIDR: not an IPv4 or IPv6 address',
    },
    {
      name: "a bad prefix",
      text: "\n\n2001:db8::/129 # too long\n",
      message: '--allow-file: /etc/allow.txt:3: "2001:db8::/129" is not an IP address or CIDR: prefix must be 0-128',
    },
    { name: "two values on a line", text: "192.0.2.1 192.0.2.2\n", message: '--allow-file: /etc/allow.txt:1: "192.0.2.1 192.0.2.2"' },
    { name: "nft syntax", text: "192.0.2.0/24 } accept\n", message: '--allow-file: /etc/allow.txt:1: "192.0.2.0/24 } accept"' },
    { name: "a missing file", text: undefined, message: '--allow-file: "/etc/allow.txt" does not exist' },
  ])("rejects $name, naming the file and line", ({ text, message }) => {
    expect(problemsOf(file(text))).toContain(message);
  });

  test("an empty path", () => {
    expect(problemsOf({ allowFile: { from: "--allow-file", value: " " } })).toContain("--allow-file: expected a file path");
  });

  test("reported with the other problems; many bad lines are counted, not all listed", () => {
    const text = Array.from({ length: 25 }, (_, i) => `bad${i}`).join("\n");
    const message = problemsOf({ ...file(text), ports: { from: "--ports", value: "0" } });
    const listed = message.split("\n").filter((line) => line.startsWith("  - "));
    expect(listed).toHaveLength(12);
    expect(message).toContain('--ports: "0"');
    expect(message).toContain('--allow-file: /etc/allow.txt:10: "bad9"');
    expect(message).not.toContain('"bad10"');
    expect(message).toContain("--allow-file: /etc/allow.txt: and 15 more invalid lines");
  });

  test("an empty file allows nothing more", () => {
    expect(parseAllowFile("--allow-file", "/etc/allow.txt", "# nothing yet\n\n")).toEqual({ entries: [], problems: [], warnings: [] });
  });
});

describe("parseConfig: ports per entry", () => {
  const tcp = (first: number, last = first) => ({ protocol: "tcp", first, last });
  const udp = (first: number, last = first) => ({ protocol: "udp", first, last });
  const entries = (config: ReturnType<typeof parseConfig>["config"]) =>
    config.allow.map((a) => `${a.cidr.text}${a.ports ? ` ${a.ports.first}-${a.ports.last}/${a.ports.protocol}` : ""} ${a.source}`);

  test("names carry their ports (tcp by default, several per name, sorted and unique); names without ports have none", () => {
    const { config, warnings } = parseConfig({
      ...base,
      hosts: {
        from: "--hosts",
        value:
          "api.example:443,ntp.example:123/udp,api.example:80,mirror.example:8000-8100,plain.example,api.example:443/tcp,db.example:5432/tcp",
      },
    });
    expect(config.hosts).toEqual(["api.example", "ntp.example", "mirror.example", "plain.example", "db.example"]);
    expect(config.hostPorts).toEqual(
      new Map([
        ["api.example", [tcp(80), tcp(443)]],
        ["ntp.example", [udp(123)]],
        ["mirror.example", [tcp(8000, 8100)]],
        ["db.example", [tcp(5432)]],
      ]) as never,
    );
    expect(warnings).toEqual([]);
  });

  test("an absolute name (trailing dot) takes a port", () => {
    const { config } = parseConfig({ ...base, hosts: { from: "--hosts", value: "api.example.:443" } });
    expect(config.hostPorts.get(config.hosts[0]!)).toEqual([tcp(443)] as never);
  });

  test("a name listed with and without ports: every port wins, with a warning naming both", () => {
    const { config, warnings } = parseConfig({ ...base, hosts: { from: "hosts_csv", value: "api.example:443,api.example" } });
    expect(config.hosts).toEqual(["api.example"]);
    expect(config.hostPorts.size).toBe(0);
    expect(warnings).toEqual([
      'hosts_csv: api.example is listed both with ports ("api.example:443") and without: every port of it is allowed',
    ]);
  });

  test("addresses and CIDRs with ports, from --allow, the host list and the allow file", () => {
    const { config, warnings } = parseConfig({
      ...base,
      hosts: { from: "--hosts", value: "a.example,198.51.100.9:22,[2001:db8::1]:443" },
      allow: { from: "--allow", value: "203.0.113.0/24:443,[2001:db8::/64]:8000-8100/udp,192.0.2.0/24" },
      allowFile: { from: "--allow-file", value: "/etc/allow.txt" },
      allowFileText: "198.51.100.0/28:53/udp # dns\n[2001:db8:2::/48]:443\n",
    });
    expect(entries(config)).toEqual([
      "192.0.2.0/24 --allow",
      "198.51.100.0/28 53-53/udp /etc/allow.txt:1",
      "198.51.100.9 22-22/tcp --hosts",
      "203.0.113.0/24 443-443/tcp --allow",
      "2001:db8::/64 8000-8100/udp --allow",
      "2001:db8::1 443-443/tcp --hosts",
      "2001:db8:2::/48 443-443/tcp /etc/allow.txt:2",
    ]);
    expect(config.hostPorts.size).toBe(0);
    expect(warnings).toEqual([]);
  });

  test("a network listed with and without ports: every port wins, with a warning naming the entry", () => {
    const { config, warnings } = parseConfig({ ...base, allow: { from: "--allow", value: "203.0.113.0/24:443,203.0.113.0/24" } });
    expect(entries(config)).toEqual(["203.0.113.0/24 --allow"]);
    expect(warnings).toEqual(['--allow: "203.0.113.0/24:443/tcp" is also allowed on every port: every port of it is allowed']);
  });

  test.each([
    {
      name: "port 0",
      raw: { hosts: { from: "--hosts", value: "api.example:0" } },
      message: '--hosts: "api.example:0" has a bad port: "0" is not a port',
    },
    {
      name: "port 65536",
      raw: { hosts: { from: "hosts_csv", value: "api.example:65536" } },
      message: 'hosts_csv: "api.example:65536" has a bad port',
    },
    {
      name: "reversed range",
      raw: { hosts: { from: "--hosts", value: "api.example:8100-8000" } },
      message: '--hosts: "api.example:8100-8000" has a bad port: the range 8100-8000 runs backwards',
    },
    {
      name: "unknown protocol",
      raw: { hosts: { from: "--hosts", value: "api.example:53/sctp" } },
      message: '--hosts: "api.example:53/sctp" has a bad port: unknown protocol "sctp"',
    },
    {
      name: "nothing after ':'",
      raw: { hosts: { from: "--hosts", value: "api.example:" } },
      message: `--hosts: "api.example:" has a bad port: nothing after ':'`,
    },
    {
      name: "a bad name before a good port",
      raw: { hosts: { from: "--hosts", value: "bad_name:443" } },
      message: '--hosts: "bad_name:443" is not a valid host name',
    },
    {
      name: "unbracketed IPv6 with a port (allow)",
      raw: { allow: { from: "--allow", value: "2001:db8::/64:443" } },
      message: '--allow: "2001:db8::/64:443" has a bad port: an IPv6 address or network with a port needs brackets: [2001:db8::/64]:443',
    },
    {
      name: "unbracketed IPv6 with a port (hosts)",
      raw: { hosts: { from: "--hosts", value: "2001:db8::1:443/tcp" } },
      message: "needs brackets: [2001:db8::1]:443/tcp",
    },
    {
      name: "CIDR with port 0",
      raw: { allow: { from: "extra_whitelist_ips_csv", value: "203.0.113.0/24:0" } },
      message: 'extra_whitelist_ips_csv: "203.0.113.0/24:0" has a bad port',
    },
    {
      name: "a name in --allow with a port",
      raw: { allow: { from: "--allow", value: "api.example:443" } },
      message: '--allow: "api.example:443" is not an IP address or CIDR',
    },
  ])("rejects $name, naming the entry", ({ raw, message }) => {
    expect(problemsOf(raw as Partial<RawConfig>)).toContain(message);
  });

  test("the allow file: a bad port names the file and line", () => {
    const message = problemsOf({
      allowFile: { from: "--allow-file", value: "/etc/allow.txt" },
      allowFileText: "192.0.2.0/24\n192.0.2.0/24:65536\n[2001:db8::1]443\n",
    });
    expect(message).toContain('--allow-file: /etc/allow.txt:2: "192.0.2.0/24:65536" has a bad port');
    expect(message).toContain(`--allow-file: /etc/allow.txt:3: "[2001:db8::1]443" has a bad port: expected ':PORT' after ']'`);
  });
});

describe("parseConfig: --private-domains", () => {
  test("domains as names are written (ASCII, lower case, without the trailing dot)", () => {
    const { config, warnings } = parseConfig({
      ...base,
      privateDomains: { from: "--private-domains", value: "Cluster.Local.,corp.example" },
    });
    expect(config.privateDomains).toEqual(["cluster.local", "corp.example"]);
    expect(config.refusePrivateAnswers).toBe(false);
    expect(warnings).toEqual([
      "--private-domains has no effect without --refuse-private-answers: private answers are allowed for every name",
    ]);
  });

  test.each([
    { value: "10.0.0.0/8", message: '--private-domains: "10.0.0.0/8" is not a domain name' },
    { value: "10.0.0.1", message: '--private-domains: "10.0.0.1" is an address, not a domain name' },
    { value: "*.cluster.local", message: '--private-domains: "*.cluster.local" is not a domain name' },
    { value: "cluster.local:443", message: '--private-domains: "cluster.local:443" is not a domain name' },
  ])("rejects $value", ({ value, message }) => {
    expect(problemsOf({ privateDomains: { from: "--private-domains", value } })).toContain(message);
  });
});
