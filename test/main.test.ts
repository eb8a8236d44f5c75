import { describe, expect, test } from "bun:test";
import { Writable } from "node:stream";
import { main, type World } from "../src/main.ts";
import type { Lookup } from "../src/resolve.ts";
import { fakeRun } from "./support/fake-run.ts";
import type { RunResult } from "../src/run.ts";

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

async function runMain(argv: string[], env: Record<string, string> = {}, nft: Partial<RunResult> = {}, files: Record<string, string> = { "/etc/resolv.conf": POD_RESOLV_CONF }) {
  let stdout = "";
  let stderr = "";
  const sink = new Writable({ write: (chunk, _enc, done) => ((stderr += chunk.toString()), done()) }) as unknown as NodeJS.WriteStream;
  const { run, calls } = fakeRun(() => nft);
  const world: World = {
    argv,
    env,
    stdout: async (text) => void (stdout += text),
    stderr: sink,
    run,
    lookup,
    readFile: async (path) => files[path],
    now: () => 0,
  };
  const code = await main(world);
  return { code, stdout, stderr, calls };
}

describe("main", () => {
  test("apply resolves, loads one nft transaction and prints a summary", async () => {
    const { code, stderr, calls } = await runMain(["apply"], { hosts_csv: "api.example,mirror.example,svc.cluster.local", listening_ports_csv: "3000" });
    expect(code).toBe(0);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args).toEqual(["-f", "-"]);
    expect(calls[0]?.stdin).toContain("203.0.113.10, # api.example");
    expect(calls[0]?.stdin).toContain("th dport 53 ip daddr { 198.51.100.2 } accept");
    expect(calls[0]?.stdin).toContain("th dport 53 ip6 daddr { 2001:db8:1::2 } accept");
    expect(stderr).toContain("svc.cluster.local: no such name or no addresses; skipped");
    expect(stderr).toContain("applied: 2 names resolved, 1 skipped; 3 IPv4 and 1 IPv6 allowed; inbound TCP 3000");
  });

  test("apply is the default command, and flags override the variables", async () => {
    const { code, calls } = await runMain(["--hosts", "mirror.example"], { hosts_csv: "api.example" });
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

  test("bad configuration exits 2, names the value and never runs nft", async () => {
    const { code, stderr, calls } = await runMain(["apply"], { hosts_csv: "api.example", listening_ports_csv: "3000,99999", extra_whitelist_ips_csv: "10.0.0.0/40" });
    expect(code).toBe(2);
    expect(calls).toEqual([]);
    expect(stderr).toContain('listening_ports_csv: "99999"');
    expect(stderr).toContain('extra_whitelist_ips_csv: "10.0.0.0/40"');
  });

  test.each([
    { argv: ["frobnicate"], message: 'unknown command "frobnicate"' },
    { argv: ["apply", "--nope"], message: "--nope" },
    { argv: ["status", "--hosts", "a.example"], message: "--hosts does not apply to 'status'" },
    { argv: ["remove", "--dry-run"], message: "--dry-run is the same as 'render'" },
    { argv: ["apply", "--log-format", "xml"], message: '--log-format: "xml" must be "text" or "json"' },
  ])("usage error $argv exits 2", async ({ argv, message }) => {
    const { code, stderr, calls } = await runMain([...argv], { hosts_csv: "api.example" });
    expect(code).toBe(2);
    expect(stderr).toContain(message);
    expect(calls).toEqual([]);
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
      const lines = stderr.trim().split("\n").map((line) => JSON.parse(line));
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

  test("status and remove need no configuration", async () => {
    const status = await runMain(["status"], {}, { code: 1, stderr: "Error: No such file or directory" });
    expect(status.code).toBe(0);
    expect(status.stdout).toContain("nothing loaded");
    const removed = await runMain(["remove"], { hosts_csv: "not a valid; name" });
    expect(removed.code).toBe(0);
    expect(removed.calls[0]?.stdin).toBe("table inet domainwall\ndelete table inet domainwall\n");
  });

  test("behind the systemd-resolved stub, DNS is allowed to the stub's upstream servers too", async () => {
    const { code, stderr, calls } = await runMain(["apply"], { hosts_csv: "api.example" }, {}, {
      "/etc/resolv.conf": "nameserver 127.0.0.53\noptions edns0 trust-ad\n",
      "/run/systemd/resolve/resolv.conf": "nameserver 198.51.100.53\nnameserver 2001:db8::53\n",
    });
    expect(code).toBe(0);
    expect(calls[0]?.stdin).toContain("th dport 53 ip daddr { 127.0.0.53, 198.51.100.53 } accept");
    expect(calls[0]?.stdin).toContain("th dport 53 ip6 daddr { 2001:db8::53 } accept");
    expect(stderr).toContain("allowing DNS to its upstream servers 198.51.100.53, 2001:db8::53");
  });

  test("--dns-servers overrides resolv.conf and the stub's upstreams", async () => {
    const { calls } = await runMain(["apply", "--dns-servers", "192.0.2.53"], { hosts_csv: "api.example" }, {}, {
      "/etc/resolv.conf": "nameserver 127.0.0.53\n",
      "/run/systemd/resolve/resolv.conf": "nameserver 198.51.100.53\n",
    });
    expect(calls[0]?.stdin).toContain("th dport 53 ip daddr { 192.0.2.53 } accept");
    expect(calls[0]?.stdin).not.toContain("198.51.100.53");
  });
});
