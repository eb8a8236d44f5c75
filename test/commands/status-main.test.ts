import { describe, expect, test } from "bun:test";
import { runMain, EPOCH } from "../support/run-main.ts";

describe("status, through main", () => {
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
    const { code, stdout } = await runMain(["status"], { nft: { stdout: unhooked } });
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
    const { code, stdout } = await runMain(["status"], { nft: { stdout: listed }, files: { [STATE]: state(4242) } });
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
      const { code, stdout } = await runMain(["status"], { nft: { stdout: listed }, files: { [STATE]: text } });
      expect(code).toBe(0);
      expect(stdout).toContain("counter output_dropped: 7 packets");
      expect(stdout).toContain("no domainwall watch is running here: the sets hold what the last apply resolved");
      expect(stdout).not.toContain("api.example");
    }
  });

  test("--json: one object with the denied destinations (and their names), the allowed entries and the watch", async () => {
    const { code, stdout } = await runMain(["status", "--json"], { nft: { stdout: listed }, files: { [STATE]: state(4242) } });
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
    const text = await runMain(["status"], { nft: { stdout: withPorts } });
    expect(text.stdout).toContain(
      "  set allow_ports_v6: 2 entries\n  counter output_dropped: 7 packets, 420 bytes\nallowed on some ports only:\n  2001:db8::8: 443/tcp, 5000-5010/udp\n",
    );
    const json = JSON.parse((await runMain(["status", "--json"], { nft: { stdout: withPorts } })).stdout);
    expect(json.allowed).toEqual([
      { network: "203.0.113.10", ports: "all", from: "allowlist" },
      { network: "2001:db8::8", ports: ["443/tcp", "5000-5010/udp"], from: "allowlist" },
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
    const json = JSON.parse((await runMain(["status", "--json"], { nft: { stdout: listed }, files: { [STATE]: withProxy } })).stdout);
    expect(json.refusedNames).toEqual([
      { name: "exfil.example", qtype: "A", count: 2 },
      { name: "other.example", qtype: "AAAA", count: 1 },
    ]);
    expect(json.refusedNamesOther).toBe(0);
    const without = JSON.parse((await runMain(["status", "--json"], { nft: { stdout: listed }, files: { [STATE]: state(4242) } })).stdout);
    expect([without.refusedNames, without.refusedNamesOther]).toEqual([null, null]);
  });

  test("--json while not enforcing: the problems in the object, exit 3", async () => {
    const { code, stdout } = await runMain(["status", "--json"], { nft: { stdout: listed.replace(',"hook":"output"', "") } });
    expect(code).toBe(3);
    expect(JSON.parse(stdout).problems).toEqual([
      "nft: the output chain of table inet domainwall has no output hook: nothing filters outgoing traffic",
    ]);
  });

  test("without a watch, the names of the last apply name the addresses; nothing loaded is an object too", async () => {
    const names = JSON.stringify({ version: 1, writtenAt: EPOCH, names: [{ name: "api.example", addresses: ["203.0.113.10"] }] });
    const { stdout } = await runMain(["status"], { nft: { stdout: listed }, files: { "/run/domainwall/names.json": names } });
    expect(stdout).toContain("  203.0.113.10 tcp/8443 out: 3 packets, last 12s ago (api.example)\n");
    const missing = await runMain(["status", "--json"], { nft: { code: 1, stderr: "Error: No such file or directory" } });
    expect(JSON.parse(missing.stdout)).toEqual({ version: 1, loaded: false, backend: "nft" });
  });

  test("audit mode is said first", async () => {
    const audit = listed.replace('"output_dropped"', '"output_audited"');
    const { stdout } = await runMain(["status"], { nft: { stdout: audit } });
    expect(stdout.split("\n").slice(0, 2)).toEqual([
      "domainwall is loaded (nft)",
      "WARNING: audit mode: the firewall is NOT enforcing; what the policy would refuse is let through and recorded (see 'domainwall status' and 'domainwall suggest')",
    ]);
    expect(stdout).toContain("would be denied (audit mode), most packets first");
  });

  test("DOMAINWALL_RUN_DIR moves the state file", async () => {
    const { stdout } = await runMain(["status"], {
      env: { DOMAINWALL_RUN_DIR: "/var/run/dw" },
      nft: { stdout: listed },
      files: { "/var/run/dw/watch.json": state(4242) },
    });
    expect(stdout).toContain("  api.example: 203.0.113.10; resolved 4s ago");
  });
});
