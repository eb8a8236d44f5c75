import { describe, expect, test } from "bun:test";
import { runMain, POD_RESOLV_CONF } from "./support/run-main.ts";

describe("main", () => {
  test("apply resolves, loads one nft transaction and prints a summary", async () => {
    const { code, stderr, calls, probes } = await runMain(["apply"], {
      env: {
        hosts_csv: "api.example,mirror.example,svc.cluster.local",
        listening_ports_csv: "3000",
      },
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
    const plain = await runMain(["apply", "--hosts", "api.example"], { files: { ...files } });
    expect(plain.code).toBe(0);
    expect(plain.stderr).toContain(
      "net.ipv4.ip_forward=1: traffic forwarded through this machine (containers, VMs) is not filtered; --forward filters it",
    );
    expect(plain.calls[0]?.stdin).not.toContain("hook forward");
    const both = await runMain(["apply", "--hosts", "api.example"], { files: { ...files, "/proc/sys/net/ipv6/conf/all/forwarding": "1" } });
    expect(both.stderr).toContain("net.ipv4.ip_forward=1 and net.ipv6.conf.all.forwarding=1: traffic forwarded");
    const forwarded = await runMain(["apply", "--hosts", "api.example", "--forward"], { files: { ...files } });
    expect(forwarded.code).toBe(0);
    expect(forwarded.stderr).not.toContain("is not filtered");
    expect(forwarded.calls[0]?.stdin).toContain("type filter hook forward priority filter; policy drop;");
    const off = await runMain(["apply", "--hosts", "api.example"], {
      files: { "/etc/resolv.conf": POD_RESOLV_CONF, "/proc/sys/net/ipv4/ip_forward": "0\n" },
    });
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
    // status and remove say it at the debug level only (their answer is all they print by default).
    const env = { hosts_csv: "api.example", DOMAINWALL_LOG_LEVEL: "debug" };
    for (const argv of [["apply"], ["status"], ["remove"]]) {
      const { code, stderr, calls } = await runMain(argv, { env, overrides: () => ({ nft }) });
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
    const { code, stderr } = await runMain(["apply", "--backend", "iptables-legacy"], {
      env: { hosts_csv: "api.example" },
      overrides: () => ({ nft }),
    });
    expect(code).toBe(0);
    expect(made).toBe(0);
    expect(stderr).not.toContain("nft transactions");
  });

  test("flags override the variables", async () => {
    const { code, calls } = await runMain(["apply", "--hosts", "mirror.example"], { env: { hosts_csv: "api.example" } });
    expect(code).toBe(0);
    expect(calls[0]?.stdin).toContain("203.0.113.20");
    expect(calls[0]?.stdin).not.toContain("203.0.113.10");
  });

  test("render and --dry-run print what apply would load and run nothing", async () => {
    const env = { hosts_csv: "api.example" };
    const rendered = await runMain(["render"], { env });
    const dry = await runMain(["--dry-run"], { env });
    const applied = await runMain(["apply"], { env });
    expect(rendered.code).toBe(0);
    expect(rendered.calls).toEqual([]);
    expect(dry.stdout).toBe(rendered.stdout);
    expect(rendered.stdout).toBe(applied.calls[0]?.stdin ?? "");
  });

  test("apply reads this namespace's on-link IPv6 prefixes from /proc/net/if_inet6: outgoing neighbour discovery goes there and to link scope only", async () => {
    const ifInet6 =
      "20010db8000100000000000000000001 02 40 00 80    veth0\nfe800000000000000000000000000001 02 40 20 80    veth0\n00000000000000000000000000000001 01 80 10 80       lo\n";
    const { code, calls } = await runMain(["apply"], {
      env: { hosts_csv: "api.example" },
      files: { "/etc/resolv.conf": POD_RESOLV_CONF, "/proc/net/if_inet6": ifInet6 },
    });
    expect(code).toBe(0);
    expect(calls[0]?.stdin).toContain(
      "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } ip6 daddr { fe80::/10, ff02::/16, 2001:db8:1::/64 } ip6 hoplimit 255 accept\n",
    );
  });

  test("bad configuration exits 2, names the value and never runs nft", async () => {
    const { code, stderr, calls, probes } = await runMain(["apply"], {
      env: {
        hosts_csv: "api.example",
        listening_ports_csv: "3000,99999",
        extra_whitelist_ips_csv: "10.0.0.0/40",
      },
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
    const { code, stderr, calls, probes } = await runMain([...argv], { env: { hosts_csv: "api.example" } });
    expect(code).toBe(2);
    expect(stderr).toContain(message);
    expect([calls, probes]).toEqual([[], 0]);
  });

  test("no command prints the usage and exits 2; --dry-run alone is render", async () => {
    for (const argv of [[], ["--hosts", "api.example"]]) {
      const { code, stderr, stdout, calls, probes } = await runMain(argv, { env: { hosts_csv: "api.example" } });
      expect(code).toBe(2);
      expect(stderr).toContain("no command given");
      expect(stderr).toContain("Usage: domainwall <command> [options]");
      expect([stdout, calls, probes]).toEqual(["", [], 0]);
    }
    expect((await runMain(["--dry-run"], { env: { hosts_csv: "api.example" } })).stdout).toContain("table inet domainwall {");
  });

  test("help and help COMMAND print help and exit 0", async () => {
    const main = await runMain(["help"]);
    expect([main.code, main.stdout]).toEqual([0, expect.stringContaining("Commands:")]);
    const apply = await runMain(["help", "apply"]);
    expect([apply.code, apply.stdout]).toEqual([0, expect.stringContaining("--confirm-within DURATION")]);
  });

  test("an unknown option is reported with every other problem, at once", async () => {
    const { code, stderr } = await runMain(["apply", "--hots", "a.example", "--ports", "99999", "--log-format", "xml"], {
      env: {
        hosts_csv: "api.example",
      },
    });
    expect(code).toBe(2);
    expect(stderr).toContain("unknown option --hots (did you mean --hosts?)");
    expect(stderr).toContain('--ports: "99999" is not a port number');
    expect(stderr).toContain('--log-format: "xml" must be "text" or "json"');
  });

  test("a network that allows everything is accepted with a warning saying so", async () => {
    const { code, stderr } = await runMain(["apply", "--allow", "0.0.0.0/0,::/0", "--dns-servers", "0.0.0.0/0"], {
      env: {
        hosts_csv: "api.example",
      },
    });
    expect(code).toBe(0);
    expect(stderr).toContain("--allow: 0.0.0.0/0 allows every IPv4 address");
    expect(stderr).toContain("--allow: ::/0 allows every IPv6 address");
    expect(stderr).toContain("--dns-servers: 0.0.0.0/0 allows DNS (port 53) to every IPv4 address");
  });

  test("render --strict failing says nothing was rendered, not that nothing was loaded", async () => {
    const { code, stderr, stdout } = await runMain(["render", "--strict"], { env: { hosts_csv: "api.example,cluster.local" } });
    expect(code).toBe(1);
    expect(stderr).toContain("--strict: cluster.local has no addresses; no ruleset was rendered");
    expect(stderr).not.toContain("nothing was loaded");
    expect(stdout).toBe("");
  });

  test("a failing nft exits 1 with nft's error", async () => {
    const { code, stderr } = await runMain(["apply"], {
      env: { hosts_csv: "api.example" },
      nft: { code: 1, stderr: "Error: syntax error\n" },
    });
    expect(code).toBe(1);
    expect(stderr).toContain("nft -f failed: Error: syntax error");
  });

  test("--strict turns a missing name into exit 1, before anything is loaded", async () => {
    const { code, stderr, calls } = await runMain(["apply", "--strict"], { env: { hosts_csv: "api.example,cluster.local" } });
    expect(code).toBe(1);
    expect(stderr).toContain("--strict: cluster.local has no addresses");
    expect(calls).toEqual([]);
  });

  test("--log-format json and DOMAINWALL_LOG_FORMAT print one JSON object per line", async () => {
    for (const [argv, env] of [
      [["apply", "--log-format", "json"], { hosts_csv: "api.example" }],
      [["apply"], { hosts_csv: "api.example", DOMAINWALL_LOG_FORMAT: "json" }],
    ] as const) {
      const { code, stderr } = await runMain([...argv], { env });
      expect(code).toBe(0);
      const lines = stderr
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line));
      const summary = lines.find((l) => l.summary !== undefined);
      expect(summary.level).toBe("info"); // a level log collectors know, not consola's "success"
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

  test("status and remove need no configuration", async () => {
    const status = await runMain(["status"], { nft: { code: 1, stderr: "Error: No such file or directory" } });
    expect(status.code).toBe(3); // nothing of ours is loaded: status is never green then
    expect(status.stdout).toContain("nothing loaded");
    const removed = await runMain(["remove"], { env: { hosts_csv: "not a valid; name" } });
    expect(removed.code).toBe(0);
    expect(removed.calls.at(-1)?.stdin).toBe("table inet domainwall\ndelete table inet domainwall\n");
  });

  test("behind the systemd-resolved stub, DNS is allowed to the stub's upstream servers too", async () => {
    const { code, stderr, calls } = await runMain(["apply"], {
      env: { hosts_csv: "api.example" },
      files: {
        "/etc/resolv.conf": "nameserver 127.0.0.53\noptions edns0 trust-ad\n",
        "/run/systemd/resolve/resolv.conf": "nameserver 198.51.100.53\nnameserver 2001:db8::53\n",
      },
    });
    expect(code).toBe(0);
    expect(calls[0]?.stdin).toContain("th dport 53 ip daddr { 127.0.0.53, 198.51.100.53 } accept");
    expect(calls[0]?.stdin).toContain("th dport 53 ip6 daddr { 2001:db8::53 } accept");
    expect(stderr).toContain("allowing DNS to its upstream servers 198.51.100.53, 2001:db8::53");
  });

  test.each(["127.0.0.53", "127.0.0.1", "::1"])(
    "behind a loopback stub (%s) whose upstreams are unknown, exit 2 asking for --dns-servers; nothing is loaded",
    async (stub) => {
      const { code, stderr, calls } = await runMain(["apply"], {
        env: { hosts_csv: "api.example" },
        files: { "/etc/resolv.conf": `nameserver ${stub}\n` },
      });
      expect(code).toBe(2);
      expect(stderr).toContain(
        `/etc/resolv.conf lists only a local stub resolver (${stub}) and its upstream servers are unknown (no /run/systemd/resolve/resolv.conf)`,
      );
      expect(stderr).toContain("pass --dns-servers with the stub's upstream servers");
      expect(calls).toEqual([]);
    },
  );

  test("--dns-servers overrides resolv.conf and the stub's upstreams", async () => {
    const { calls } = await runMain(["apply", "--dns-servers", "192.0.2.53"], {
      env: { hosts_csv: "api.example" },
      files: {
        "/etc/resolv.conf": "nameserver 127.0.0.53\n",
        "/run/systemd/resolve/resolv.conf": "nameserver 198.51.100.53\n",
      },
    });
    expect(calls[0]?.stdin).toContain("th dport 53 ip daddr { 192.0.2.53 } accept");
    expect(calls[0]?.stdin).not.toContain("198.51.100.53");
  });
});
