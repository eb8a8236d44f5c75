import { describe, expect, test } from "bun:test";
import { runMain, EPOCH } from "../support/run-main.ts";

describe("explain and suggest, through main", () => {
  const table = JSON.stringify({
    nftables: [
      { counter: { name: "output_dropped", packets: 4, bytes: 240 } },
      { set: { name: "allow_v4", elem: ["203.0.113.10", { prefix: { addr: "192.0.2.0", len: 24 } }] } },
      { set: { name: "allow_v6", elem: [] } },
      {
        set: {
          name: "allow_ports_v4",
          elem: [
            { concat: ["198.51.100.8", "tcp", 443] },
            { concat: [{ prefix: { addr: "203.0.113.128", len: 25 } }, "tcp", { range: [8000, 8100] }] },
          ],
        },
      },
      {
        set: {
          name: "denied_out_v4",
          timeout: 3600,
          elem: [{ elem: { val: { concat: ["203.0.113.20", "tcp", 80] }, expires: 3590, counter: { packets: 4, bytes: 240 } } }],
        },
      },
      {
        set: {
          name: "denied_out_v6",
          timeout: 3600,
          elem: [{ elem: { val: { concat: ["2001:db8::5", "udp", 5353] }, expires: 3500, counter: { packets: 1, bytes: 80 } } }],
        },
      },
      {
        rule: {
          chain: "output",
          expr: [
            { match: { op: "==", left: { payload: { protocol: "th", field: "dport" } }, right: 53 } },
            { match: { op: "==", left: { payload: { protocol: "ip", field: "daddr" } }, right: "198.51.100.2" } },
            { accept: null },
          ],
        },
      },
    ],
  });
  const names = {
    "/run/domainwall/names.json": JSON.stringify({
      version: 1,
      writtenAt: EPOCH,
      names: [
        { name: "api.example", addresses: ["203.0.113.10"] },
        { name: "ports.example", addresses: ["198.51.100.8"] },
      ],
    }),
  };
  const explain = (target: string, more: string[] = []) =>
    runMain(["explain", target, ...more], { nft: { stdout: table }, files: { ...names } });

  test.each([
    {
      target: "api.example:443",
      code: 0,
      says: "allowed: api.example:443: api.example is in the allowlist; 203.0.113.10 is allowed by the name api.example (every port)",
    },
    { target: "203.0.113.10", code: 0, says: "allowed: 203.0.113.10: 203.0.113.10 is allowed by the name api.example (every port)" },
    { target: "192.0.2.7:8080", code: 0, says: "allowed: 192.0.2.7:8080: 192.0.2.7 is allowed by the network 192.0.2.0/24 (every port)" },
    {
      target: "198.51.100.2:53/udp",
      code: 0,
      says: "allowed: 198.51.100.2:53/udp: 198.51.100.2 is allowed by DNS to this resolver (port 53)",
    },
    {
      target: "198.51.100.2",
      code: 1,
      says: "denied: 198.51.100.2: 198.51.100.2 is denied: not in the allowlist; only DNS (port 53) to it is allowed, as a resolver",
    },
    {
      target: "203.0.113.20:80",
      code: 1,
      says: "denied: 203.0.113.20:80: 203.0.113.20 is denied: not in the allowlist\n  recorded as denied: 203.0.113.20 tcp/80, 4 packets, last 10s ago",
    },
    {
      target: "mirror.example",
      code: 1,
      says: "denied: mirror.example: mirror.example is not in the allowlist; 203.0.113.20 is denied: not in the allowlist",
    },
    {
      target: "nosuch.example",
      code: 1,
      says: "denied: nosuch.example: nosuch.example is not in the allowlist; nosuch.example has no addresses in DNS",
    },
    {
      target: "ports.example:443",
      code: 0,
      says: "allowed: ports.example:443: ports.example is in the allowlist; 198.51.100.8 is allowed by ports.example:443/tcp",
    },
    {
      target: "ports.example",
      code: 0,
      says: "allowed: ports.example: ports.example is in the allowlist; 198.51.100.8 is allowed by ports.example:443/tcp",
    },
    {
      target: "ports.example:8081",
      code: 1,
      says: "denied: ports.example:8081: ports.example is in the allowlist; 198.51.100.8 is denied: not open on 8081/tcp: the allowlist opens it on 443/tcp only",
    },
    {
      target: "198.51.100.8:443/udp",
      code: 1,
      says: "denied: 198.51.100.8:443/udp: 198.51.100.8 is denied: not open on 443/udp: the allowlist opens it on 443/tcp only",
    },
    {
      target: "203.0.113.130:8080",
      code: 0,
      says: "allowed: 203.0.113.130:8080: 203.0.113.130 is allowed by 203.0.113.128/25:8000-8100/tcp",
    },
    {
      target: "203.0.113.130:443",
      code: 1,
      says: "denied: 203.0.113.130:443: 203.0.113.130 is denied: not open on 443/tcp: the allowlist opens it on 8000-8100/tcp only",
    },
  ])("explain $target: exit $code", async ({ target, code, says }) => {
    const result = await explain(target);
    expect(result.stdout).toStartWith(says);
    expect(result.code).toBe(code);
  });

  test("explain --json says which entry, and bad input is exit 2 before anything is read", async () => {
    const { stdout, code } = await explain("192.0.2.7:8080", ["--json"]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      destination: "192.0.2.7:8080",
      allowed: true,
      enforcing: true,
      addresses: [{ address: "192.0.2.7", allowed: true, by: [{ kind: "cidr", cidr: "192.0.2.0/24", ports: "all" }], denied: [] }],
    });
    for (const argv of [["explain"], ["explain", "203.0.113.0/24"], ["explain", "a.example", "b.example"], ["status", "extra"]]) {
      const bad = await runMain(argv, { nft: { stdout: table } });
      expect(bad.code).toBe(2);
      expect(bad.calls).toEqual([]);
    }
  });

  test("suggest: names first where known, then addresses, with ports, as hosts_csv and TOML", async () => {
    const withName = JSON.stringify({ version: 1, writtenAt: EPOCH, names: [{ name: "mirror.example", addresses: ["203.0.113.20"] }] });
    const { stdout, code } = await runMain(["suggest"], { nft: { stdout: table }, files: { "/run/domainwall/names.json": withName } });
    expect(code).toBe(0);
    expect(stdout).toBe(
      [
        "# domainwall suggest: 2 destinations recorded as denied, as allowlist entries to add (names where known, most packets first)",
        "# environment:",
        "hosts_csv=mirror.example:80/tcp,[2001:db8::5]:5353/udp",
        "# or in a --config file (TOML):",
        "hosts = [",
        '  "mirror.example:80/tcp",  # 4 packets',
        '  "[2001:db8::5]:5353/udp", # 1 packet',
        "]",
        "# the loaded rules enforce: these destinations were refused (run with --audit to learn an allowlist without refusing anything)",
        "",
      ].join("\n"),
    );
  });

  test("explain under --dns-proxy: an admitted address names its entry and expiry; a name is answered from the proxy's list, never looked up", async () => {
    const proxied = JSON.stringify({
      nftables: [
        { set: { name: "allow_v4", elem: [] } },
        {
          set: {
            name: "proxy_v4",
            type: "ipv4_addr",
            flags: ["timeout"],
            elem: [{ elem: { val: "203.0.113.57", timeout: 60, expires: 57 } }],
          },
        },
        { set: { name: "proxy_v6", type: "ipv6_addr", flags: ["timeout"] } },
        // What opens the set's addresses on every port (the kernel's rule, not the set's name).
        {
          rule: {
            chain: "output",
            expr: [{ match: { op: "==", left: { payload: { protocol: "ip", field: "daddr" } }, right: "@proxy_v4" } }, { accept: null }],
          },
        },
      ],
    });
    const proxy = {
      port: 15353,
      gid: 2000053,
      queries: {},
      upstreamErrors: 0,
      admitted: { v4: 1, v6: 0 },
      expiredTotal: 0,
      refused: [],
      refusedOther: 0,
      list: { names: ["cdn.example"], wildcards: [] },
      addresses: [{ address: "203.0.113.57", names: ["cdn.example"], entries: ["cdn.example"] }],
    };
    const state = JSON.stringify({ version: 1, pid: 4242, backend: "nft", writtenAt: EPOCH, names: [], proxy });
    const looked: string[] = [];
    const run = (target: string, more: string[] = []) =>
      runMain(["explain", target, ...more], {
        nft: { stdout: proxied },
        files: { "/run/domainwall/watch.json": state },
        overrides: () => ({
          lookup: async (host) => (looked.push(host), []),
        }),
      });
    const admitted = await run("203.0.113.57:443");
    expect(admitted.code).toBe(0);
    expect(admitted.stdout).toBe(
      "allowed: 203.0.113.57:443: 203.0.113.57 is allowed by the DNS proxy: cdn.example (entry cdn.example) told an app this address; it stays admitted for 57s more (every port)\n",
    );
    const json = JSON.parse((await run("203.0.113.57", ["--json"])).stdout);
    expect(json.addresses[0].by).toEqual([
      { kind: "proxy", names: ["cdn.example"], entries: ["cdn.example"], set: "proxy_v4", expiresInSeconds: 57, ports: "all" },
    ]);
    expect((await run("203.0.113.250")).code).toBe(1);
    const unlisted = await run("unlisted.example");
    expect(unlisted.code).toBe(1);
    expect(unlisted.stdout).toContain("the proxy answers NXDOMAIN for it (not looked up)");
    expect((await run("cdn.example")).code).toBe(0);
    expect(looked).toEqual([]);
  });

  test("suggest: the names the DNS proxy refused (or, with --audit, forwarded anyway) come first, every port", async () => {
    const proxy = {
      port: 15353,
      gid: 2000053,
      queries: { audited: 3 },
      upstreamErrors: 0,
      admitted: { v4: 1, v6: 0 },
      expiredTotal: 0,
      refused: [
        { name: "pypi.example", qtype: "A", count: 2 },
        { name: "mirror.example", qtype: "AAAA", count: 1 },
      ],
      refusedOther: 0,
    };
    const state = JSON.stringify({ version: 1, pid: 4242, backend: "nft", writtenAt: EPOCH, names: [], proxy });
    const { stdout, code } = await runMain(["suggest"], { nft: { stdout: table }, files: { "/run/domainwall/watch.json": state } });
    expect(code).toBe(0);
    expect(stdout).toBe(
      [
        "# domainwall suggest: 2 names the DNS proxy refused and 2 destinations recorded as denied, as allowlist entries to add (names first, most queries and packets first)",
        "# environment:",
        "hosts_csv=pypi.example,mirror.example,203.0.113.20:80/tcp,[2001:db8::5]:5353/udp",
        "# or in a --config file (TOML):",
        "hosts = [",
        '  "pypi.example",           # 2 DNS queries',
        '  "mirror.example",         # 1 DNS query',
        '  "203.0.113.20:80/tcp",    # 4 packets',
        '  "[2001:db8::5]:5353/udp", # 1 packet',
        "]",
        "# the loaded rules enforce: these destinations were refused (run with --audit to learn an allowlist without refusing anything)",
        "",
      ].join("\n"),
    );
  });

  test("apply leaves the names it loaded for status, explain and suggest; explain says a skipped name was skipped", async () => {
    const { files } = await runMain(["apply"], { env: { hosts_csv: "api.example,svc.cluster.local" } });
    expect(JSON.parse(files["/run/domainwall/names.json"] ?? "")).toEqual({
      version: 1,
      writtenAt: EPOCH,
      names: [
        { name: "api.example", addresses: ["203.0.113.10", "203.0.113.11", "2001:db8:ff::10"], ports: "all" },
        { name: "svc.cluster.local", addresses: [], ports: "all" },
      ],
    });
    const skipped = await runMain(["explain", "svc.cluster.local"], { nft: { stdout: table }, files });
    expect(skipped.stdout).toStartWith(
      "denied: svc.cluster.local: svc.cluster.local is in the allowlist; skipped: svc.cluster.local had no addresses when it was last resolved (no such name, or no A/AAAA records), so nothing is allowed for it",
    );
  });
});
