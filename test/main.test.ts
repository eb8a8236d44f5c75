import { describe, expect, test } from "bun:test";
import { Writable } from "node:stream";
import { main } from "../src/main.ts";
import { processExecutor } from "../src/backends/nft/process-executor.ts";
import type { World } from "../src/world.ts";
import type { Holder } from "../src/backends/lock.ts";
import { fakeLocks } from "./support/fake-locks.ts";
import type { Lookup } from "../src/dns/resolve.ts";
import { fakeRun, isBackendProbe, type RunCall } from "./support/fake-run.ts";
import type { RunResult } from "../src/run.ts";

/** The fake wall clock starts here (2025-11-24T16:00:00Z); the fake monotonic clock at 0. */
const EPOCH = 1_764_000_000_000;

const records: Record<string, { 4: string[]; 6: string[] }> = {
  "api.example": { 4: ["203.0.113.10", "203.0.113.11"], 6: ["2001:db8:ff::10"] },
  "mirror.example": { 4: ["203.0.113.20"], 6: [] },
};

const lookup: Lookup = async (host, family) => {
  const found = records[host]?.[family] ?? [];
  if (found.length === 0) throw Object.assign(new Error("not found"), { code: "DNS_ENOTFOUND" });
  return found.map((address) => ({ address, ttl: 30 }));
};

/** Run main() against a fake world; returns the exit code, both outputs and the processes it ran. */
const POD_RESOLV_CONF = "search cluster.local\nnameserver 198.51.100.2\nnameserver 2001:db8:1::2\noptions ndots:5\n";

async function runMain(
  argv: string[],
  env: Record<string, string> = {},
  nft: Partial<RunResult> | ((call: RunCall) => Partial<RunResult>) = {},
  files: Record<string, string> = { "/etc/resolv.conf": POD_RESOLV_CONF },
  operator: Promise<"keep" | "revert"> = new Promise(() => {}),
  overrides: (world: World) => Partial<World> = () => ({}),
  held = new Map<string, Holder>(),
  /** The iptables-legacy tools (the other backend, checked by apply, remove and status): empty tables unless told. */
  iptables: (call: RunCall) => Partial<RunResult> = () => ({}),
) {
  let clock = 0;
  const locks = fakeLocks(4242, held);
  let stdout = "";
  let stderr = "";
  const sink = new Writable({ write: (chunk, _enc, done) => ((stderr += chunk.toString()), done()) }) as unknown as NodeJS.WriteStream;
  // `--backend auto` first asks the kernel (a read, see isBackendProbe): it succeeds here (nft works);
  // the backend selection has its own tests.
  const respond = typeof nft === "function" ? nft : () => nft;
  const isIptables = (call: RunCall) => /ip6?tables-legacy/.test(call.command);
  const { run, calls: allCalls } = fakeRun((call) => (isBackendProbe(call) ? {} : isIptables(call) ? iptables(call) : respond(call)));
  const world: World = {
    argv,
    env,
    stdout: async (text) => void (stdout += text),
    stderr: sink,
    writeStderr: (text) => void (stderr += text),
    run,
    nft: () => ({ executor: processExecutor(run), reason: "nft transactions run the nft binary: a fake" }),
    lookup,
    readFile: async (path) => files[path],
    writeFile: async (path, text) => void (files[path] = text),
    removeFile: async (path) => {
      const existed = path in files;
      delete files[path];
      return existed;
    },
    now: () => clock,
    sleep: async (ms) => void (clock += ms),
    // The fake lookups answer at once: no deadline ever falls due.
    setTimer: () => () => {},
    awaitOperator: () => ({ decision: operator, done: () => {} }),
    untilStopped: () => ({ stopped: new Promise(() => {}), done: () => {} }),
    configChanges: () => ({ stop: () => {} }),
    serve: () => ({ stop: () => {} }),
    processStats: () => ({ residentBytes: 0, cpuSeconds: 0, startTimeSeconds: 0 }),
    backgroundLoop: () => {},
    epochNow: () => EPOCH + clock,
    switchGroup: () => ({ ok: false, reason: "not in unit tests" }),
    nftExecutor: () => ({ name: "nft", run: async () => ({ code: 1, stdout: "", stderr: "not in unit tests" }) }),
    inProcessNft: () => undefined,
    // The iptables-legacy tools decide, as where the kernel cannot be asked (kernel.ts has its own tests).
    legacyFilterEmpty: async () => false,
    tableEvents: () => ({ close: () => {} }),
    normalJit: () => {},
    pid: 4242,
    processAlive: (pid) => pid === 4242, // this process; any other PID has gone
    ...locks,
  };
  const code = await main({ ...world, ...overrides(world) });
  const calls = allCalls.filter((call) => !isBackendProbe(call) && !isIptables(call));
  const iptablesCalls = allCalls.filter(isIptables);
  return { code, stdout, stderr, calls, iptablesCalls, files, probes: allCalls.filter(isBackendProbe).length, locks };
}

describe("main", () => {
  test("apply resolves, loads one nft transaction and prints a summary", async () => {
    const { code, stderr, calls, probes } = await runMain(["apply"], {
      hosts_csv: "api.example,mirror.example,svc.cluster.local",
      listening_ports_csv: "3000",
    });
    expect(code).toBe(0);
    expect(probes).toBe(1); // --backend auto asked the kernel first
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args).toEqual(["-f", "-"]);
    expect(calls[0]?.stdin).toContain("203.0.113.10, # api.example");
    expect(calls[0]?.stdin).toContain("th dport 53 ip daddr { 198.51.100.2 } accept");
    expect(calls[0]?.stdin).toContain("th dport 53 ip6 daddr { 2001:db8:1::2 } accept");
    expect(stderr).toContain("svc.cluster.local: no such name or no addresses; skipped");
    expect(stderr).toContain("applied: 2 names resolved, 1 skipped; 3 IPv4 and 1 IPv6 allowed; inbound TCP 3000");
  });

  test("with forwarding on and no --forward, apply warns that forwarded traffic is not filtered; --forward adds the forward chain", async () => {
    const files = {
      "/etc/resolv.conf": POD_RESOLV_CONF,
      "/proc/sys/net/ipv4/ip_forward": "1\n",
      "/proc/sys/net/ipv6/conf/all/forwarding": "0\n",
    };
    const plain = await runMain(["apply", "--hosts", "api.example"], {}, {}, { ...files });
    expect(plain.code).toBe(0);
    expect(plain.stderr).toContain(
      "net.ipv4.ip_forward=1: traffic forwarded through this machine (containers, VMs) is not filtered; --forward filters it",
    );
    expect(plain.calls[0]?.stdin).not.toContain("hook forward");
    const both = await runMain(["apply", "--hosts", "api.example"], {}, {}, { ...files, "/proc/sys/net/ipv6/conf/all/forwarding": "1" });
    expect(both.stderr).toContain("net.ipv4.ip_forward=1 and net.ipv6.conf.all.forwarding=1: traffic forwarded");
    const forwarded = await runMain(["apply", "--hosts", "api.example", "--forward"], {}, {}, { ...files });
    expect(forwarded.code).toBe(0);
    expect(forwarded.stderr).not.toContain("is not filtered");
    expect(forwarded.calls[0]?.stdin).toContain("type filter hook forward priority filter; policy drop;");
    const off = await runMain(
      ["apply", "--hosts", "api.example"],
      {},
      {},
      { "/etc/resolv.conf": POD_RESOLV_CONF, "/proc/sys/net/ipv4/ip_forward": "0\n" },
    );
    expect(off.stderr).not.toContain("is not filtered");
  });

  test("the log says once which nft executor runs; the backend probe, the load, status and remove all go through it", async () => {
    const scripts: string[] = [];
    let made = 0;
    const executor = {
      name: "libnftables" as const,
      run: async (script: string, options: { json?: boolean } = {}) => {
        scripts.push(options.json ? `-j ${script}` : script);
        return options.json ? { code: 1, stdout: "", stderr: "Error: No such file or directory\n" } : { code: 0, stdout: "", stderr: "" };
      },
    };
    const nft = () => (made++, { executor, reason: "nft transactions run in process through libnftables.so.1" });
    const env = { hosts_csv: "api.example" };
    for (const argv of [["apply"], ["status"], ["remove"]]) {
      const { code, stderr, calls } = await runMain(argv, env, {}, undefined, undefined, () => ({ nft }));
      expect(code).toBe(argv[0] === "status" ? 3 : 0); // the fake lists no table: nothing loaded
      expect(calls).toEqual([]); // no nft process
      expect(stderr.split("nft transactions run in process through libnftables.so.1")).toHaveLength(2);
    }
    expect(made).toBeGreaterThanOrEqual(3);
    expect(scripts.filter((s) => s === "list tables\n")).toHaveLength(3);
    expect(scripts.some((s) => s.includes("203.0.113.10, # api.example"))).toBe(true);
    expect(scripts).toContain("-j list table inet domainwall");
    expect(scripts).toContain("table inet domainwall\ndelete table inet domainwall\n");
  });

  test("--backend iptables-legacy never loads libnftables", async () => {
    let made = 0;
    const nft = () => (
      made++, { executor: { name: "libnftables" as const, run: async () => ({ code: 0, stdout: "", stderr: "" }) }, reason: "in process" }
    );
    const { code, stderr } = await runMain(
      ["apply", "--backend", "iptables-legacy"],
      { hosts_csv: "api.example" },
      {},
      undefined,
      undefined,
      () => ({ nft }),
    );
    expect(code).toBe(0);
    expect(made).toBe(0);
    expect(stderr).not.toContain("nft transactions");
  });

  test("flags override the variables", async () => {
    const { code, calls } = await runMain(["apply", "--hosts", "mirror.example"], { hosts_csv: "api.example" });
    expect(code).toBe(0);
    expect(calls[0]?.stdin).toContain("203.0.113.20");
    expect(calls[0]?.stdin).not.toContain("203.0.113.10");
  });

  test("render and --dry-run print what apply would load and run nothing", async () => {
    const env = { hosts_csv: "api.example" };
    const rendered = await runMain(["render"], env);
    const dry = await runMain(["--dry-run"], env);
    const applied = await runMain(["apply"], env);
    expect(rendered.code).toBe(0);
    expect(rendered.calls).toEqual([]);
    expect(dry.stdout).toBe(rendered.stdout);
    expect(rendered.stdout).toBe(applied.calls[0]?.stdin ?? "");
  });

  test("apply reads this namespace's on-link IPv6 prefixes from /proc/net/if_inet6: outgoing neighbour discovery goes there and to link scope only", async () => {
    const ifInet6 =
      "20010db8000100000000000000000001 02 40 00 80    veth0\nfe800000000000000000000000000001 02 40 20 80    veth0\n00000000000000000000000000000001 01 80 10 80       lo\n";
    const { code, calls } = await runMain(
      ["apply"],
      { hosts_csv: "api.example" },
      {},
      { "/etc/resolv.conf": POD_RESOLV_CONF, "/proc/net/if_inet6": ifInet6 },
    );
    expect(code).toBe(0);
    expect(calls[0]?.stdin).toContain(
      "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } ip6 daddr { fe80::/10, ff02::/16, 2001:db8:1::/64 } ip6 hoplimit 255 accept\n",
    );
  });

  test("bad configuration exits 2, names the value and never runs nft", async () => {
    const { code, stderr, calls, probes } = await runMain(["apply"], {
      hosts_csv: "api.example",
      listening_ports_csv: "3000,99999",
      extra_whitelist_ips_csv: "10.0.0.0/40",
    });
    expect(code).toBe(2);
    expect(calls).toEqual([]);
    expect(probes).toBe(0); // not even the backend probe runs
    expect(stderr).toContain('listening_ports_csv: "99999"');
    expect(stderr).toContain('extra_whitelist_ips_csv: "10.0.0.0/40"');
  });

  test.each([
    { argv: ["frobnicate"], message: 'unknown command "frobnicate"' },
    { argv: ["apply", "--nope"], message: "unknown option --nope" },
    { argv: ["apply", "--hots", "a.example"], message: "unknown option --hots (did you mean --hosts?)" },
    {
      argv: ["apply", "--ports", "22", "--backend", "nft", "--backend", "iptables-legacy"],
      message: '--backend is given 2 times ("nft" and "iptables-legacy"): give it once',
    },
    { argv: ["status", "--hosts", "a.example"], message: "--hosts does not apply to 'status'" },
    { argv: ["remove", "--dry-run"], message: "--dry-run is the same as 'render'" },
    { argv: ["apply", "--log-format", "xml"], message: '--log-format: "xml" must be "text" or "json"' },
  ])("usage error $argv exits 2", async ({ argv, message }) => {
    const { code, stderr, calls, probes } = await runMain([...argv], { hosts_csv: "api.example" });
    expect(code).toBe(2);
    expect(stderr).toContain(message);
    expect([calls, probes]).toEqual([[], 0]);
  });

  test("no command prints the usage and exits 2; --dry-run alone is render", async () => {
    for (const argv of [[], ["--hosts", "api.example"]]) {
      const { code, stderr, stdout, calls, probes } = await runMain(argv, { hosts_csv: "api.example" });
      expect(code).toBe(2);
      expect(stderr).toContain("no command given");
      expect(stderr).toContain("Usage: domainwall <command> [options]");
      expect([stdout, calls, probes]).toEqual(["", [], 0]);
    }
    expect((await runMain(["--dry-run"], { hosts_csv: "api.example" })).stdout).toContain("table inet domainwall {");
  });

  test("help and help COMMAND print help and exit 0", async () => {
    const main = await runMain(["help"]);
    expect([main.code, main.stdout]).toEqual([0, expect.stringContaining("Commands:")]);
    const apply = await runMain(["help", "apply"]);
    expect([apply.code, apply.stdout]).toEqual([0, expect.stringContaining("--confirm-within DURATION")]);
  });

  test("an unknown option is reported with every other problem, at once", async () => {
    const { code, stderr } = await runMain(["apply", "--hots", "a.example", "--ports", "99999", "--log-format", "xml"], {
      hosts_csv: "api.example",
    });
    expect(code).toBe(2);
    expect(stderr).toContain("unknown option --hots (did you mean --hosts?)");
    expect(stderr).toContain('--ports: "99999" is not a port number');
    expect(stderr).toContain('--log-format: "xml" must be "text" or "json"');
  });

  test("a network that allows everything is accepted with a warning saying so", async () => {
    const { code, stderr } = await runMain(["apply", "--allow", "0.0.0.0/0,::/0", "--dns-servers", "0.0.0.0/0"], {
      hosts_csv: "api.example",
    });
    expect(code).toBe(0);
    expect(stderr).toContain("--allow: 0.0.0.0/0 allows every IPv4 address");
    expect(stderr).toContain("--allow: ::/0 allows every IPv6 address");
    expect(stderr).toContain("--dns-servers: 0.0.0.0/0 allows DNS (port 53) to every IPv4 address");
  });

  test("render --strict failing says nothing was rendered, not that nothing was loaded", async () => {
    const { code, stderr, stdout } = await runMain(["render", "--strict"], { hosts_csv: "api.example,cluster.local" });
    expect(code).toBe(1);
    expect(stderr).toContain("--strict: cluster.local has no addresses; no ruleset was rendered");
    expect(stderr).not.toContain("nothing was loaded");
    expect(stdout).toBe("");
  });

  test("a failing nft exits 1 with nft's error", async () => {
    const { code, stderr } = await runMain(["apply"], { hosts_csv: "api.example" }, { code: 1, stderr: "Error: syntax error\n" });
    expect(code).toBe(1);
    expect(stderr).toContain("nft -f failed: Error: syntax error");
  });

  test("--strict turns a missing name into exit 1, before anything is loaded", async () => {
    const { code, stderr, calls } = await runMain(["apply", "--strict"], { hosts_csv: "api.example,cluster.local" });
    expect(code).toBe(1);
    expect(stderr).toContain("--strict: cluster.local has no addresses");
    expect(calls).toEqual([]);
  });

  test("--log-format json and DOMAINWALL_LOG_FORMAT print one JSON object per line", async () => {
    for (const [argv, env] of [
      [["apply", "--log-format", "json"], { hosts_csv: "api.example" }],
      [["apply"], { hosts_csv: "api.example", DOMAINWALL_LOG_FORMAT: "json" }],
    ] as const) {
      const { code, stderr } = await runMain([...argv], env);
      expect(code).toBe(0);
      const lines = stderr
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line));
      const summary = lines.find((l) => l.level === "success");
      expect(summary.summary).toMatchObject({ namesResolved: 1, ipv4: 2, ipv6: 1, backend: "nft" });
      expect(typeof summary.time).toBe("string");
    }
  });

  test("--version and --help print to stdout and exit 0", async () => {
    expect((await runMain(["--version"])).stdout).toMatch(/^domainwall \d+\.\d+\.\d+/);
    const help = await runMain(["apply", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--hosts LIST");
    expect(help.stdout).toContain("2  bad configuration or usage");
  });

  describe("explain and suggest", () => {
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
    const explain = (target: string, more: string[] = []) => runMain(["explain", target, ...more], {}, { stdout: table }, { ...names });

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
        const bad = await runMain(argv, {}, { stdout: table });
        expect(bad.code).toBe(2);
        expect(bad.calls).toEqual([]);
      }
    });

    test("suggest: names first where known, then addresses, with ports, as hosts_csv and TOML", async () => {
      const withName = JSON.stringify({ version: 1, writtenAt: EPOCH, names: [{ name: "mirror.example", addresses: ["203.0.113.20"] }] });
      const { stdout, code } = await runMain(["suggest"], {}, { stdout: table }, { "/run/domainwall/names.json": withName });
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
        runMain(["explain", target, ...more], {}, { stdout: proxied }, { "/run/domainwall/watch.json": state }, undefined, () => ({
          lookup: async (host) => (looked.push(host), []),
        }));
      const admitted = await run("203.0.113.57:443");
      expect(admitted.code).toBe(0);
      expect(admitted.stdout).toBe(
        "allowed: 203.0.113.57:443: 203.0.113.57 is allowed by the DNS proxy: cdn.example (entry cdn.example) told an app this address; it stays admitted for 57s more\n",
      );
      const json = JSON.parse((await run("203.0.113.57", ["--json"])).stdout);
      expect(json.addresses[0].by).toEqual([
        { kind: "proxy", names: ["cdn.example"], entries: ["cdn.example"], expiresInSeconds: 57, ports: "all" },
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
      const { stdout, code } = await runMain(["suggest"], {}, { stdout: table }, { "/run/domainwall/watch.json": state });
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
          "",
        ].join("\n"),
      );
    });

    test("apply leaves the names it loaded for status, explain and suggest", async () => {
      const { files } = await runMain(["apply"], { hosts_csv: "api.example,svc.cluster.local" });
      expect(JSON.parse(files["/run/domainwall/names.json"] ?? "")).toEqual({
        version: 1,
        writtenAt: EPOCH,
        names: [{ name: "api.example", addresses: ["203.0.113.10", "203.0.113.11", "2001:db8:ff::10"] }],
      });
    });
  });

  describe("status", () => {
    const STATE = "/run/domainwall/watch.json";
    const listed = JSON.stringify({
      nftables: [
        { table: { family: "inet", name: "domainwall" } },
        { chain: { family: "inet", table: "domainwall", name: "output", hook: "output" } },
        { rule: { family: "inet", table: "domainwall", chain: "output", expr: [] } },
        { counter: { name: "output_dropped", packets: 7, bytes: 420 } },
        { set: { name: "allow_v4", elem: ["203.0.113.10"] } },
        {
          set: {
            name: "denied_out_v4",
            timeout: 3600,
            elem: [
              { elem: { val: { concat: ["203.0.113.99", "udp", 53] }, expires: 3599, counter: { packets: 1, bytes: 60 } } },
              { elem: { val: { concat: ["203.0.113.10", "tcp", 8443] }, expires: 3588, counter: { packets: 3, bytes: 180 } } },
            ],
          },
        },
      ],
    });

    test("loaded but not enforcing (our chain lost its hook): says so and exits 3", async () => {
      const unhooked = listed.replace(',"hook":"output"', "");
      expect(unhooked).not.toBe(listed);
      const { code, stdout } = await runMain(["status"], {}, { stdout: unhooked });
      expect(code).toBe(3);
      expect(stdout).toStartWith(
        "domainwall is loaded but NOT ENFORCING (nft):\n  nft: the output chain of table inet domainwall has no output hook: nothing filters outgoing traffic\n",
      );
    });
    const state = (pid: number) =>
      JSON.stringify({
        version: 1,
        pid,
        backend: "nft",
        writtenAt: EPOCH - 1_000,
        names: [{ name: "api.example", addresses: ["203.0.113.10"], lastResolved: EPOCH - 4_000, failing: 0, lastError: null }],
      });

    test("shows the sets, the drop counters and, while a watch runs, each name's addresses and when they were resolved", async () => {
      const { code, stdout } = await runMain(["status"], {}, { stdout: listed }, { [STATE]: state(4242) });
      expect(code).toBe(0);
      expect(stdout).toBe(
        [
          "domainwall is loaded (nft)",
          "  set allow_v4: 1 entry",
          "  counter output_dropped: 7 packets, 420 bytes",
          "denied, most packets first (each kept 1h after its last packet, up to 4096 per direction and family):",
          "  203.0.113.10 tcp/8443 out: 3 packets, last 12s ago (api.example)",
          "  203.0.113.99 udp/53 out: 1 packet, last 1s ago",
          "watch (pid 4242), as of 1s ago:",
          "  api.example: 203.0.113.10; resolved 4s ago at 2025-11-24T15:59:56Z",
          "",
        ].join("\n"),
      );
    });

    test("a state file left by a watch that is gone, or one that does not parse, is not shown", async () => {
      for (const text of [state(999), "{ not json", JSON.stringify({ version: 1 })]) {
        const { code, stdout } = await runMain(["status"], {}, { stdout: listed }, { [STATE]: text });
        expect(code).toBe(0);
        expect(stdout).toContain("counter output_dropped: 7 packets");
        expect(stdout).toContain("no domainwall watch is running here: the sets hold what the last apply resolved");
        expect(stdout).not.toContain("api.example");
      }
    });

    test("--json: one object with the denied destinations (and their names), the allowed entries and the watch", async () => {
      const { code, stdout } = await runMain(["status", "--json"], {}, { stdout: listed }, { [STATE]: state(4242) });
      expect(code).toBe(0);
      const json = JSON.parse(stdout);
      expect(json).toMatchObject({
        version: 1,
        loaded: true,
        backend: "nft",
        enforcing: true,
        allowed: [{ network: "203.0.113.10", ports: "all" }],
        dns: [],
      });
      expect(json.denied).toEqual([
        {
          address: "203.0.113.10",
          protocol: "tcp",
          port: 8443,
          direction: "out",
          packets: 3,
          bytes: 180,
          lastSeenSecondsAgo: 12,
          names: ["api.example"],
        },
        { address: "203.0.113.99", protocol: "udp", port: 53, direction: "out", packets: 1, bytes: 60, lastSeenSecondsAgo: 1, names: [] },
      ]);
      expect(json.names).toEqual({ from: "watch", names: [{ name: "api.example", addresses: ["203.0.113.10"] }] });
      expect(json.watch.pid).toBe(4242);
    });

    test("entries with ports: the text lists each with its ports, --json gives every allowed entry a ports field", async () => {
      const withPorts = listed.replace(
        '{"set":{"name":"allow_v4","elem":["203.0.113.10"]}}',
        '{"set":{"name":"allow_v4","elem":["203.0.113.10"]}},{"set":{"name":"allow_ports_v6","elem":[{"concat":["2001:db8::8","tcp",443]},{"concat":["2001:db8::8","udp",{"range":[5000,5010]}]}]}}',
      );
      expect(withPorts).not.toBe(listed);
      const text = await runMain(["status"], {}, { stdout: withPorts });
      expect(text.stdout).toContain(
        "  set allow_ports_v6: 2 entries\n  counter output_dropped: 7 packets, 420 bytes\nallowed on some ports only:\n  2001:db8::8: 443/tcp, 5000-5010/udp\n",
      );
      const json = JSON.parse((await runMain(["status", "--json"], {}, { stdout: withPorts })).stdout);
      expect(json.allowed).toEqual([
        { network: "203.0.113.10", ports: "all" },
        { network: "2001:db8::8", ports: ["443/tcp", "5000-5010/udp"] },
      ]);
    });

    test("--json with the DNS proxy: the names it answered NXDOMAIN for, most asked first; null without the proxy", async () => {
      const proxy = {
        port: 15353,
        gid: 2000053,
        queries: { forwarded: 4, refused: 3 },
        upstreamErrors: 0,
        admitted: { v4: 2, v6: 0 },
        expiredTotal: 0,
        refused: [
          { name: "exfil.example", qtype: "A", count: 2 },
          { name: "other.example", qtype: "AAAA", count: 1 },
        ],
        refusedOther: 0,
      };
      const withProxy = JSON.stringify({ ...JSON.parse(state(4242)), proxy });
      const json = JSON.parse((await runMain(["status", "--json"], {}, { stdout: listed }, { [STATE]: withProxy })).stdout);
      expect(json.refusedNames).toEqual([
        { name: "exfil.example", qtype: "A", count: 2 },
        { name: "other.example", qtype: "AAAA", count: 1 },
      ]);
      expect(json.refusedNamesOther).toBe(0);
      const without = JSON.parse((await runMain(["status", "--json"], {}, { stdout: listed }, { [STATE]: state(4242) })).stdout);
      expect([without.refusedNames, without.refusedNamesOther]).toEqual([null, null]);
    });

    test("--json while not enforcing: the problems in the object, exit 3", async () => {
      const { code, stdout } = await runMain(["status", "--json"], {}, { stdout: listed.replace(',"hook":"output"', "") });
      expect(code).toBe(3);
      expect(JSON.parse(stdout).problems).toEqual([
        "nft: the output chain of table inet domainwall has no output hook: nothing filters outgoing traffic",
      ]);
    });

    test("without a watch, the names of the last apply name the addresses; nothing loaded is an object too", async () => {
      const names = JSON.stringify({ version: 1, writtenAt: EPOCH, names: [{ name: "api.example", addresses: ["203.0.113.10"] }] });
      const { stdout } = await runMain(["status"], {}, { stdout: listed }, { "/run/domainwall/names.json": names });
      expect(stdout).toContain("  203.0.113.10 tcp/8443 out: 3 packets, last 12s ago (api.example)\n");
      const missing = await runMain(["status", "--json"], {}, { code: 1, stderr: "Error: No such file or directory" });
      expect(JSON.parse(missing.stdout)).toEqual({ version: 1, loaded: false, backend: "nft" });
    });

    test("audit mode is said first", async () => {
      const audit = listed.replace('"output_dropped"', '"output_audited"');
      const { stdout } = await runMain(["status"], {}, { stdout: audit });
      expect(stdout.split("\n").slice(0, 2)).toEqual([
        "domainwall is loaded (nft)",
        "WARNING: audit mode: the firewall is NOT enforcing; what the policy would refuse is let through and recorded (see 'domainwall status' and 'domainwall suggest')",
      ]);
      expect(stdout).toContain("would be denied (audit mode), most packets first");
    });

    test("DOMAINWALL_RUN_DIR moves the state file", async () => {
      const { stdout } = await runMain(
        ["status"],
        { DOMAINWALL_RUN_DIR: "/var/run/dw" },
        { stdout: listed },
        { "/var/run/dw/watch.json": state(4242) },
      );
      expect(stdout).toContain("  api.example: 203.0.113.10; resolved 4s ago");
    });
  });

  test("status and remove need no configuration", async () => {
    const status = await runMain(["status"], {}, { code: 1, stderr: "Error: No such file or directory" });
    expect(status.code).toBe(3); // nothing of ours is loaded: status is never green then
    expect(status.stdout).toContain("nothing loaded");
    const removed = await runMain(["remove"], { hosts_csv: "not a valid; name" });
    expect(removed.code).toBe(0);
    expect(removed.calls.at(-1)?.stdin).toBe("table inet domainwall\ndelete table inet domainwall\n");
  });

  test("behind the systemd-resolved stub, DNS is allowed to the stub's upstream servers too", async () => {
    const { code, stderr, calls } = await runMain(
      ["apply"],
      { hosts_csv: "api.example" },
      {},
      {
        "/etc/resolv.conf": "nameserver 127.0.0.53\noptions edns0 trust-ad\n",
        "/run/systemd/resolve/resolv.conf": "nameserver 198.51.100.53\nnameserver 2001:db8::53\n",
      },
    );
    expect(code).toBe(0);
    expect(calls[0]?.stdin).toContain("th dport 53 ip daddr { 127.0.0.53, 198.51.100.53 } accept");
    expect(calls[0]?.stdin).toContain("th dport 53 ip6 daddr { 2001:db8::53 } accept");
    expect(stderr).toContain("allowing DNS to its upstream servers 198.51.100.53, 2001:db8::53");
  });

  test.each(["127.0.0.53", "127.0.0.1", "::1"])(
    "behind a loopback stub (%s) whose upstreams are unknown, exit 2 asking for --dns-servers; nothing is loaded",
    async (stub) => {
      const { code, stderr, calls } = await runMain(
        ["apply"],
        { hosts_csv: "api.example" },
        {},
        { "/etc/resolv.conf": `nameserver ${stub}\n` },
      );
      expect(code).toBe(2);
      expect(stderr).toContain(
        `/etc/resolv.conf lists only a local stub resolver (${stub}) and its upstream servers are unknown (no /run/systemd/resolve/resolv.conf)`,
      );
      expect(stderr).toContain("pass --dns-servers with the stub's upstream servers");
      expect(calls).toEqual([]);
    },
  );

  test("--dns-servers overrides resolv.conf and the stub's upstreams", async () => {
    const { calls } = await runMain(
      ["apply", "--dns-servers", "192.0.2.53"],
      { hosts_csv: "api.example" },
      {},
      {
        "/etc/resolv.conf": "nameserver 127.0.0.53\n",
        "/run/systemd/resolve/resolv.conf": "nameserver 198.51.100.53\n",
      },
    );
    expect(calls[0]?.stdin).toContain("th dport 53 ip daddr { 192.0.2.53 } accept");
    expect(calls[0]?.stdin).not.toContain("198.51.100.53");
  });

  describe("two policies at once: every backend that works here is seen (issue 12 item 7)", () => {
    /** iptables-legacy-save output with domainwall's output chain loaded and jumped to. */
    const OURS =
      "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOMAINWALL-OUTPUT - [0:0]\n[3:180] -A OUTPUT -j DOMAINWALL-OUTPUT\n[1:60] -A DOMAINWALL-OUTPUT -j DROP\nCOMMIT\n";
    /** The kernel's view as the fakes see it: iptables holds our chains until a restore removes them. */
    function kernel(iptablesLoaded: boolean) {
      const order: string[] = [];
      const loaded = { iptables: iptablesLoaded, ip6tables: iptablesLoaded };
      const iptables = (call: RunCall): Partial<RunResult> => {
        const family = call.command.startsWith("ip6") ? "ip6tables" : "iptables";
        if (call.command.endsWith("-restore")) {
          order.push(`${call.command} ${call.stdin?.includes("-X DOMAINWALL-OUTPUT") ? "(remove)" : ""}`.trim());
          if (call.stdin?.includes("-X DOMAINWALL-OUTPUT")) loaded[family] = false;
          return {};
        }
        return { stdout: loaded[family] && call.args.includes("-c") ? OURS : "*filter\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n" };
      };
      const nft = (call: RunCall): Partial<RunResult> => {
        const listing = call.args.includes("list") || call.stdin?.startsWith("list table") === true;
        if (!listing) order.push(`nft ${call.stdin?.startsWith("#!") ? "load" : (call.stdin ?? "").split("\n")[0]}`);
        return listing ? { code: 1, stderr: "Error: No such file or directory" } : {};
      };
      return { order, iptables, nft, loaded: () => loaded.iptables || loaded.ip6tables };
    }

    test("apply with nft loads its table first, then removes the iptables-legacy chains loaded before (never open in between)", async () => {
      const k = kernel(true);
      const { code, stderr } = await runMain(
        ["apply"],
        { hosts_csv: "api.example" },
        k.nft,
        undefined,
        undefined,
        undefined,
        undefined,
        k.iptables,
      );
      expect(code).toBe(0);
      expect(k.order).toEqual(["nft load", "iptables-legacy-restore (remove)", "ip6tables-legacy-restore (remove)"]);
      expect(k.loaded()).toBe(false);
      expect(stderr).toContain("removed the iptables-legacy policy loaded before: nft now holds domainwall's only policy");
    });

    test("remove and status with --backend nft still see and handle the iptables-legacy chains", async () => {
      const k = kernel(true);
      const status = await runMain(["status", "--backend", "nft"], {}, k.nft, undefined, undefined, undefined, undefined, k.iptables);
      expect([status.stderr, status.stdout]).toEqual([
        expect.anything(),
        expect.stringContaining("domainwall is loaded (iptables-legacy)"),
      ]);
      expect(status.stdout).not.toContain("nothing loaded");
      const removed = await runMain(["remove", "--backend", "nft"], {}, k.nft, undefined, undefined, undefined, undefined, k.iptables);
      expect(removed.code).toBe(0);
      expect(removed.stderr).toContain("removed domainwall's rules (iptables-legacy)");
      expect(k.loaded()).toBe(false);
    });

    test("status names both when two are loaded", async () => {
      const k = kernel(true);
      const nftLoaded = (call: RunCall): Partial<RunResult> =>
        call.args.includes("-j")
          ? {
              stdout: JSON.stringify({
                nftables: [
                  { table: { family: "inet", name: "domainwall" } },
                  { chain: { family: "inet", table: "domainwall", name: "output", hook: "output" } },
                ],
              }),
            }
          : {};
      const { stdout } = await runMain(["status"], {}, nftLoaded, undefined, undefined, undefined, undefined, k.iptables);
      expect(stdout).toContain("TWO domainwall policies are loaded (nft and iptables-legacy)");
    });

    test("with nft missing from PATH: iptables-legacy loads, then the nft table goes through libnftables in process; without the library, a warning says it cannot be checked", async () => {
      const k = kernel(false);
      const inProcess: string[] = [];
      const noNftBinary = (world: World): Partial<World> => {
        const run: World["run"] = async (command, args, stdin) => {
          if (command === "nft") throw Object.assign(new Error('Executable not found in $PATH: "nft"'), { code: "ENOENT" });
          return world.run(command, args, stdin);
        };
        return {
          run,
          // The chosen executor is the (missing) binary; the other-backend check finds the library.
          nft: () => ({ executor: processExecutor(run), reason: "nft transactions run the nft binary: a fake" }),
          inProcessNft: () => ({
            name: "libnftables",
            run: async (script) => (
              inProcess.push(script.split("\n")[0] ?? ""),
              script.startsWith("list table")
                ? { code: 0, stdout: "table inet domainwall {\n}\n", stderr: "" }
                : { code: 0, stdout: "", stderr: "" }
            ),
          }),
        };
      };
      const { code, stderr } = await runMain(
        ["apply"],
        { hosts_csv: "api.example" },
        {},
        undefined,
        undefined,
        noNftBinary,
        undefined,
        k.iptables,
      );
      expect(code).toBe(0);
      expect(stderr).toContain("backend iptables-legacy (auto: nft is not usable");
      expect(k.order).toEqual(["iptables-legacy-restore", "ip6tables-legacy-restore"]);
      expect(inProcess).toEqual(["table inet domainwall_probe", "list table inet domainwall", "table inet domainwall"]); // probe, snapshot, delete
      expect(stderr).toContain("removed the nft policy loaded before");

      const blind = await runMain(
        ["apply"],
        { hosts_csv: "api.example" },
        {},
        undefined,
        undefined,
        (world) => ({ ...noNftBinary(world), inProcessNft: () => undefined }),
        undefined,
        k.iptables,
      );
      expect(blind.code).toBe(0);
      expect(blind.stderr).toContain("cannot check nft (");
      expect(blind.stderr).toContain("if one is, it stays loaded beside this one");
    });

    test("remove --config FILE: the file's backend is used, its other keys ignored", async () => {
      const k = kernel(true);
      const file = 'backend = "iptables-legacy"\nhosts = ["bad;name"]\nports = [22]\n';
      const { code, stderr } = await runMain(
        ["remove", "--config", "/etc/domainwall.toml"],
        {},
        k.nft,
        { "/etc/domainwall.toml": file },
        undefined,
        undefined,
        undefined,
        k.iptables,
      );
      expect([code, stderr]).toEqual([0, expect.stringContaining("backend iptables-legacy (requested)")]);
      expect(k.loaded()).toBe(false);
    });
  });

  describe("--config FILE", () => {
    const file = `# allowed egress\nhosts = ["api.example"]   # the API\nports = [3000]\nreject = true\n`;
    const withFile = (argv: string[], env: Record<string, string> = {}, text = file) =>
      runMain(argv, env, {}, { "/etc/resolv.conf": POD_RESOLV_CONF, "/etc/domainwall.toml": text });

    test("supplies the settings", async () => {
      const { code, calls } = await withFile(["apply", "--config", "/etc/domainwall.toml"]);
      expect(code).toBe(0);
      expect(calls[0]?.stdin).toContain("203.0.113.10, # api.example");
      expect(calls[0]?.stdin).toContain("tcp dport { 3000 } accept");
      expect(calls[0]?.stdin).toContain("reject with tcp reset");
    });

    test("entries with ports, --forward and --refuse-private-answers from the file", async () => {
      const text =
        'hosts = ["api.example:443", "mirror.example:123/udp"]\nallow = ["[2001:db8::/64]:8000-8100"]\nforward = true\nrefuse-private-answers = true\nprivate-domains = ["cluster.local"]\n';
      const { code, calls } = await withFile(["apply", "--config", "/etc/domainwall.toml"], {}, text);
      expect(code).toBe(0);
      expect(calls[0]?.stdin).toContain("203.0.113.10 . tcp . 443,");
      expect(calls[0]?.stdin).toContain("203.0.113.20 . udp . 123,");
      expect(calls[0]?.stdin).toContain("2001:db8::/64 . tcp . 8000-8100, # /etc/domainwall.toml: allow");
      expect(calls[0]?.stdin).toContain("hook forward");
      const bad = await withFile(["apply", "--config", "/etc/domainwall.toml"], {}, 'hosts = ["api.example:0"]\n');
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('/etc/domainwall.toml: hosts: "api.example:0" has a bad port');
    });

    test("flags override the file, which overrides the environment", async () => {
      const { calls } = await withFile(["apply", "--config", "/etc/domainwall.toml", "--ports", "8080", "--ports", "8443"], {
        hosts_csv: "mirror.example",
        listening_ports_csv: "9",
      });
      expect(calls[0]?.stdin).toContain("203.0.113.10, # api.example"); // file beats hosts_csv
      expect(calls[0]?.stdin).not.toContain("203.0.113.20");
      expect(calls[0]?.stdin).toContain("tcp dport { 8080, 8443 } accept"); // flags beat the file, and add up
    });

    test.each([
      {
        name: "a bad value names the file and the field",
        text: 'hosts = ["ok.example", "bad;name"]\n',
        message: '/etc/domainwall.toml: hosts: "bad;name" is not a valid host name',
      },
      {
        name: "an unknown field",
        text: 'hosts = ["a.example"]\nhostz = ["b.example"]\n',
        message: '/etc/domainwall.toml: unknown setting "hostz"',
      },
      {
        name: "a wrong type",
        text: "hosts = { a = 1 }\n",
        message: '/etc/domainwall.toml: "hosts" must be a string, number, boolean or a list',
      },
      { name: "not TOML", text: "hosts = [\n", message: "/etc/domainwall.toml:1: not valid TOML" },
      { name: "not TOML further down", text: 'hosts = ["a.example"]\n\nports = \n', message: "/etc/domainwall.toml:3: not valid TOML" },
      {
        name: "a float for a port",
        text: 'hosts = ["a.example"]\nports = [8080.0]\n',
        message: '/etc/domainwall.toml: ports: "8080.0" is not a port number',
      },
      {
        name: "an exponent for a port",
        text: 'hosts = ["a.example"]\nports = 1e3\n',
        message: '/etc/domainwall.toml: ports: "1e3" is not a port number',
      },
      {
        name: "a comma inside one element",
        text: 'hosts = ["a.example,b.example"]\n',
        message: '/etc/domainwall.toml: hosts: "a.example,b.example" holds a comma',
      },
      {
        name: "a switch given a number",
        text: 'hosts = ["a.example"]\nstrict = 1\n',
        message: '/etc/domainwall.toml: "strict" must be true or false, not 1',
      },
      {
        name: "a switch given a string",
        text: 'hosts = ["a.example"]\nreject = "yes"\n',
        message: '/etc/domainwall.toml: "reject" must be true or false, not "yes"',
      },
      {
        name: "a list given a boolean",
        text: "hosts = true\n",
        message: '/etc/domainwall.toml: "hosts" must be a string, a number or a list, not true',
      },
      {
        name: "a bad port",
        text: 'hosts = ["a.example"]\nports = [70000]\n',
        message: '/etc/domainwall.toml: ports: "70000" is not a port number',
      },
    ])("$name exits 2", async ({ text, message }) => {
      const { code, stderr, calls, probes } = await withFile(["apply", "--config", "/etc/domainwall.toml"], {}, text);
      expect(code).toBe(2);
      expect(stderr).toContain(message);
      expect([calls, probes]).toEqual([[], 0]);
    });

    test("a missing file exits 2", async () => {
      const { code, stderr } = await runMain(["apply", "--config", "/nope.toml"]);
      expect(code).toBe(2);
      expect(stderr).toContain('--config: "/nope.toml" does not exist');
    });

    test("a directory exits 2 saying it is one, with the other problems", async () => {
      const { code, stderr } = await runMain(["apply", "--config", "/etc", "--ports", "0"], {}, {}, undefined, undefined, (world) => ({
        readFile: async (path) => {
          if (path === "/etc") throw new Error("is a directory, not a file");
          return world.readFile(path);
        },
      }));
      expect(code).toBe(2);
      expect(stderr).toContain('--config: "/etc" cannot be read: is a directory, not a file');
      expect(stderr).toContain('--ports: "0" is not a port number');
    });
  });

  describe("apply --confirm-within", () => {
    const previous = "table inet domainwall {\n\tchain output {\n\t}\n}\n";
    /** Reading our table is a script too: `list table inet domainwall` on nft's stdin. */
    const isList = (call: RunCall) => call.stdin === "list table inet domainwall";
    const nft = (call: RunCall) => (isList(call) ? { stdout: previous } : {});
    const described = (call: RunCall) => (isList(call) ? "list table inet domainwall" : call.args.join(" "));
    const pending = "/run/domainwall/confirm.pending";

    test("without a confirmation, the previous rules come back in one transaction and the exit code is 1", async () => {
      const { code, stderr, calls, files } = await runMain(["apply", "--confirm-within", "2s"], { hosts_csv: "api.example" }, nft);
      expect(code).toBe(1);
      expect(calls.map(described)).toEqual(["list table inet domainwall", "-f -", "-f -"]);
      expect(calls[2]?.stdin).toBe(`table inet domainwall\ndelete table inet domainwall\n${previous}`);
      expect(stderr).toContain("not confirmed: the previous rules are back");
      expect(files[pending]).toBeUndefined();
    });

    test("with nothing loaded before, an unconfirmed apply removes everything", async () => {
      const { code, calls } = await runMain(["apply", "--confirm-within", "1s"], { hosts_csv: "api.example" }, (call) =>
        isList(call) ? { code: 1, stderr: "Error: No such file or directory" } : {},
      );
      expect(code).toBe(1);
      expect(calls.at(-1)?.stdin).toBe("table inet domainwall\ndelete table inet domainwall\n");
    });

    test("a keypress keeps the new rules", async () => {
      const { code, calls, stderr } = await runMain(
        ["apply", "--confirm-within", "60s"],
        { hosts_csv: "api.example" },
        nft,
        undefined,
        Promise.resolve("keep"),
      );
      expect(code).toBe(0);
      expect(calls).toHaveLength(2);
      expect(stderr).toContain("confirmed: the new rules stay");
    });

    test("a revert (n, Ctrl-C, SIGTERM) restores at once", async () => {
      const { code, calls } = await runMain(
        ["apply", "--confirm-within", "60s"],
        { hosts_csv: "api.example" },
        nft,
        undefined,
        Promise.resolve("revert"),
      );
      expect(code).toBe(1);
      expect(calls.at(-1)?.stdin).toContain(previous);
    });

    test("'domainwall confirm' removes the pending file; without one it exits 1", async () => {
      const waiting = await runMain(["confirm"], {}, {}, { [pending]: "an apply is waiting for confirmation (pid 4242)\n" });
      expect(waiting.code).toBe(0);
      expect(waiting.files[pending]).toBeUndefined();
      const none = await runMain(["confirm"]);
      expect(none.code).toBe(1);
      expect(none.stderr).toContain("no apply is waiting for confirmation");
    });

    test("signals are handled from before the snapshot until after the rollback", async () => {
      const events: string[] = [];
      const { code, calls } = await runMain(
        ["apply", "--confirm-within", "1s"],
        { hosts_csv: "api.example" },
        (call) => {
          events.push(`nft ${described(call)}`);
          return nft(call);
        },
        undefined,
        undefined,
        () => ({
          awaitOperator: () => {
            events.push("signals handled");
            return { decision: new Promise(() => {}), done: () => void events.push("signals restored") };
          },
        }),
      );
      expect(code).toBe(1);
      expect(calls).toHaveLength(3);
      expect(events.filter((e) => !e.includes("domainwall_probe"))).toEqual([
        "signals handled",
        "nft list table inet domainwall",
        "nft -f -",
        "nft -f -",
        "signals restored",
      ]);
    });

    test("a failure while waiting still restores the previous rules", async () => {
      let reads = 0;
      const { code, calls, stderr } = await runMain(
        ["apply", "--confirm-within", "60s"],
        { hosts_csv: "api.example" },
        nft,
        undefined,
        undefined,
        (world) => ({
          readFile: async (path) => {
            if (path === pending && ++reads > 2) throw new Error("EIO: i/o error");
            return world.readFile(path);
          },
        }),
      );
      expect(code).toBe(1);
      expect(calls.map(described)).toEqual(["list table inet domainwall", "-f -", "-f -"]);
      expect(calls[2]?.stdin).toBe(`table inet domainwall\ndelete table inet domainwall\n${previous}`);
      expect(stderr).toContain("EIO: i/o error");
    });

    test("a run directory that cannot be written exits 1 before anything is loaded", async () => {
      const { code, calls, stderr } = await runMain(
        ["apply", "--confirm-within", "60s"],
        { hosts_csv: "api.example" },
        nft,
        undefined,
        undefined,
        () => ({
          writeFile: async () => {
            throw new Error("EROFS: read-only file system");
          },
        }),
      );
      expect(code).toBe(1);
      expect(calls).toEqual([]);
      expect(stderr).toContain(`cannot write ${pending}: EROFS: read-only file system; nothing was changed`);
    });

    test("a second apply while one waits is refused before anything is loaded", async () => {
      const alive = () => ({ processAlive: (pid: number) => pid === 7 || pid === 4242 });
      const { code, calls, stderr, files } = await runMain(
        ["apply", "--confirm-within", "60s"],
        { hosts_csv: "api.example" },
        nft,
        { [pending]: "an apply is waiting for confirmation (pid 7)\n" },
        undefined,
        alive,
      );
      expect(code).toBe(1);
      expect(calls).toEqual([]);
      expect(stderr).toContain("another apply is waiting for confirmation");
      expect(files[pending]).toBe("an apply is waiting for confirmation (pid 7)\n");
    });

    test("a pending file whose process has gone is stale: removed with a warning, and the new apply proceeds", async () => {
      const { code, calls, stderr, files } = await runMain(
        ["apply", "--confirm-within", "60s"],
        { hosts_csv: "api.example" },
        nft,
        { [pending]: "an apply is waiting for confirmation (pid 7)\n" },
        Promise.resolve("keep"),
      );
      expect(code).toBe(0);
      expect(stderr).toContain(`removing the stale ${pending}: pid 7 is not running (killed before its rollback?)`);
      expect(calls.map(described)).toEqual(["list table inet domainwall", "-f -"]);
      expect(files[pending]).toBeUndefined();
    });

    test("'confirm' with a stale pending file says nothing waits (exit 1) and removes it", async () => {
      for (const text of ["an apply is waiting for confirmation (pid 7)\n", "garbage\n"]) {
        const { code, stderr, files } = await runMain(["confirm"], {}, {}, { [pending]: text });
        expect(code).toBe(1);
        expect(stderr).toContain("no apply is waiting for confirmation");
        expect(stderr).toContain("stale");
        expect(files[pending]).toBeUndefined();
      }
    });

    test("the kernel lock is held from before the snapshot until after the rollback", async () => {
      const held = new Map<string, Holder>();
      const heldWhile: boolean[] = [];
      const spy = (call: RunCall) => (heldWhile.push(held.has("domainwall-lock")), nft(call));
      const { code, calls, locks } = await runMain(
        ["apply", "--confirm-within", "1s"],
        { hosts_csv: "api.example" },
        spy,
        undefined,
        undefined,
        undefined,
        held,
      );
      expect(code).toBe(1);
      expect(calls.map(described)).toEqual(["list table inet domainwall", "-f -", "-f -"]); // snapshot, load, rollback
      expect(heldWhile).toEqual([true, true, true]);
      expect(locks.taken).toEqual(["domainwall-lock (apply)"]);
      expect(held.size).toBe(0);
    });

    test("a bad duration exits 2 before anything is touched", async () => {
      const { code, stderr, calls, probes } = await runMain(["apply", "--confirm-within", "soon"], { hosts_csv: "api.example" });
      expect(code).toBe(2);
      expect(stderr).toContain('--confirm-within: "soon" is not a duration');
      expect([calls, probes]).toEqual([[], 0]);
    });
  });

  describe("the namespace lock", () => {
    const other = (command: string) =>
      new Map<string, Holder>([[command === "watch" ? "domainwall-watch" : "domainwall-lock", { pid: 77, command }]]);

    test.each([
      { argv: ["apply"], command: "apply" },
      { argv: ["remove"], command: "remove" },
    ])("$argv takes the kernel lock for its read-decide-write, and releases it", async ({ argv, command }) => {
      const held = new Map<string, Holder>();
      const heldWhile: boolean[] = [];
      const { code, locks } = await runMain(
        [...argv],
        { hosts_csv: "api.example" },
        () => (heldWhile.push(held.has("domainwall-lock")), {}),
        undefined,
        undefined,
        undefined,
        held,
      );
      expect(code).toBe(0);
      expect(locks.taken).toEqual([`domainwall-lock (${command})`]);
      expect(heldWhile.length).toBeGreaterThan(0);
      expect(heldWhile.every(Boolean)).toBe(true);
      expect(held.size).toBe(0);
    });

    test.each(["apply", "remove"])("%s while another command holds the lock exits 1 naming it, and changes nothing", async (command) => {
      const { code, calls, stderr } = await runMain(
        [command],
        { hosts_csv: "api.example" },
        {},
        undefined,
        undefined,
        undefined,
        other("apply"),
      );
      expect(code).toBe(1);
      expect(calls).toEqual([]);
      expect(stderr).toContain("pid 77 (apply) still held the lock after 10s; nothing was changed");
    });

    test.each(["apply", "remove"])("%s while a watch runs in the namespace is refused (exit 1) and changes nothing", async (command) => {
      const { code, calls, stderr, locks } = await runMain(
        [command],
        { hosts_csv: "api.example" },
        {},
        undefined,
        undefined,
        undefined,
        other("watch"),
      );
      expect(code).toBe(1);
      expect(calls).toEqual([]);
      expect(stderr).toContain(`a domainwall watch is running in this network namespace (pid 77 (watch))`);
      expect(locks.held.has("domainwall-lock")).toBe(false);
    });
  });

  describe("the lock-out guard reads the namespace's own sockets (/proc/net/tcp, /proc/net/tcp6), not SSH_CONNECTION", () => {
    // sshd listening on 0.0.0.0:2222 and [::]:22; an SSH session from 192.0.2.9 on 2222; 3000 listening on loopback only.
    const tcp = [
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
      "   0: 00000000:08AE 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0",
      "   1: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0",
      "   2: 016433C6:08AE 090200C0:C3AA 01 00000000:00000000 02:000A7B2B 00000000     0        0 3 2 0000000000000000 20 4 29 10 -1",
      "",
    ].join("\n");
    const tcp6 = [
      "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
      "   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0",
      "",
    ].join("\n");
    const files = () => ({ "/etc/resolv.conf": POD_RESOLV_CONF, "/proc/net/tcp": tcp, "/proc/net/tcp6": tcp6 });

    test("under sudo (no SSH_CONNECTION): loud for the port with an established inbound connection, a warning for each other listening port --ports closes", async () => {
      const { code, stderr } = await runMain(["apply"], { hosts_csv: "api.example", listening_ports_csv: "3000" }, {}, files());
      expect(code).toBe(0);
      expect(stderr).toMatch(
        /\[error\] port 2222 has an established inbound connection \(from 192\.0\.2\.9\), likely the session you are using.*--confirm-within/,
      );
      expect(stderr).toMatch(/\[warn\] TCP port 22 is listening, but --ports 3000 does not list it/);
      expect(stderr).not.toContain("port 3000 is listening");
    });

    test("the sockets are read only when --ports filters inbound (each read walks the kernel's socket tables: about 4 ms)", async () => {
      for (const [ports, expected] of [
        [undefined, []],
        ["3000", ["/proc/net/tcp", "/proc/net/tcp6"]],
      ] as const) {
        const read: string[] = [];
        const { code } = await runMain(
          ["apply"],
          { hosts_csv: "api.example", ...(ports && { listening_ports_csv: ports }) },
          {},
          files(),
          undefined,
          (world) => ({
            readFile: (path) => (read.push(path), world.readFile(path)),
          }),
        );
        expect(code).toBe(0);
        expect(read.filter((path) => path.startsWith("/proc/net/tcp"))).toEqual([...expected]);
      }
    });

    test("nothing when --ports lists them, or inbound is left untouched", async () => {
      for (const ports of ["22,2222", undefined]) {
        const { stderr } = await runMain(
          ["apply"],
          { hosts_csv: "api.example", ...(ports && { listening_ports_csv: ports }) },
          {},
          files(),
        );
        expect(stderr).not.toContain("listening, but");
        expect(stderr).not.toContain("established inbound");
      }
    });
  });
});
