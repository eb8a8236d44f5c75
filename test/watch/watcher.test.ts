import { describe, expect, test } from "bun:test";
import { fakeRuntime } from "../support/fake-runtime.ts";
import { isTerseListing, terseListingOf } from "../support/fake-nft-table.ts";
import { Writable } from "node:stream";
import type { Backend } from "../../src/backends/backend.ts";
import { parseConfig } from "../support/config.ts";
import { cidr } from "../../src/net/ip.ts";
import { createLogger } from "../../src/log.ts";
import { main } from "../../src/main.ts";
import type { Holder } from "../../src/backends/lock.ts";
import { fakeLocks } from "../support/fake-locks.ts";
import type { World } from "../../src/world.ts";
import { createNftBackend } from "../../src/backends/nft/backend.ts";
import { processExecutor } from "../../src/backends/nft/process-executor.ts";
import { admitResolutions, buildPolicy } from "../../src/policy/policy.ts";
import { renderNft } from "../../src/backends/nft/render.ts";
import { resolveHosts, type Lookup } from "../../src/dns/resolve.ts";
import type { RunResult } from "../../src/run.ts";
import { createWatcher } from "../../src/watch/watcher.ts";
import { fakeRun, isBackendProbe, type RunCall } from "../support/fake-run.ts";
import { fakeNft } from "../support/fake-nft.ts";

/** The fake wall clock starts here (2025-11-24T16:00:00Z); the fake monotonic clock at 0. */
const EPOCH = 1_764_000_000_000;

/** What the fake DNS answers now: addresses (or an error code) per family and one TTL, or an error code for both. */
type Records = Record<string, { 4?: string[] | string; 6?: string[] | string; ttl?: number } | { error: string }>;

function fakeDns(records: Records) {
  const asked: string[] = [];
  const lookup: Lookup = async (host, family) => {
    asked.push(`${host}/${family}`);
    const record = records[host];
    if (record !== undefined && "error" in record) throw Object.assign(new Error(record.error), { code: record.error });
    const found = record?.[family] ?? [];
    if (typeof found === "string") throw Object.assign(new Error(found), { code: found });
    if (found.length === 0) throw Object.assign(new Error("not found"), { code: "DNS_ENOTFOUND" });
    return found.map((address) => ({ address, ttl: record?.ttl ?? 30 }));
  };
  return { lookup, asked };
}

function sink() {
  const out = { text: "" };
  const stream = new Writable({ write: (chunk, _enc, done) => ((out.text += chunk.toString()), done()) }) as unknown as NodeJS.WriteStream;
  return { out, stream };
}

const WATCH = { minTtl: { from: "--min-ttl", value: "5s" }, grace: { from: "--grace", value: "60s" }, removeOnExit: false };

/** A watcher started from a real initial resolution, with a fake clock, DNS, nft and log. */
async function startWatcher(
  records: Records,
  options: {
    onLink?: string[];
    hosts?: string;
    onResolveError?: string;
    nft?: (call: RunCall) => { code?: number; stderr?: string };
    backend?: (b: Backend) => Backend;
  } = {},
) {
  let clock = 0;
  const dns = fakeDns(records);
  // The kernel as a stateful fake: each `nft -f -` is one transaction on it (unless options.nft fails the call).
  const kernel = fakeNft(() => clock);
  const { run, calls } = fakeRun((call) => {
    const forced = options.nft?.(call) ?? {};
    if ((forced.code ?? 0) !== 0 || call.stdin === undefined || !call.args.includes("-f")) return forced;
    return { ...kernel.take(call.stdin), ...forced };
  });
  const backend = (options.backend ?? ((b) => b))(createNftBackend(processExecutor(run)));
  const log = sink();
  const { config } = parseConfig({
    strict: false,
    reject: false,
    requireHosts: true,
    hosts: { from: "--hosts", value: options.hosts ?? "api.example,cdn.example" },
    ...(options.onResolveError && { onResolveError: { from: "--on-resolve-error", value: options.onResolveError } }),
    watch: WATCH,
  });
  const resolvers = [cidr("198.51.100.2")];
  const resolutions = await resolveHosts(config.hosts, { lookup: dns.lookup, deadlineMs: 10_000, now: () => 0, sleep: async () => {} });
  const built = buildPolicy(config, admitResolutions(config, resolutions).names, resolvers, (options.onLink ?? []).map(cidr));
  const schedule = { minTtlMs: 5_000, maxTtlMs: 3_600_000, graceMs: 60_000 };
  const sleeps: number[] = [];
  let stopAfter = Infinity;
  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const sleep = async (ms: number) => {
    clock += ms;
    sleeps.push(ms);
    if (sleeps.length >= stopAfter) stop();
  };
  const io = {
    backend,
    lookup: dns.lookup,
    log: createLogger("text", log.stream),
    now: () => clock,
    sleep,
    setTimer: () => () => {},
    random: () => 0,
  };
  if (kernel.take(renderNft(built.policy)).code !== 0) throw new Error("the fake kernel refused the initial ruleset");
  kernel.transactions.length = 0;
  const watcher = createWatcher({ config, schedule, resolvers, resolutions, policy: built.policy, loadedAt: 0 }, io);
  /** Move the clock to `at` and run one cycle. */
  const cycleAt = async (at: number) => {
    clock = at;
    await watcher.cycle();
  };
  /** Run the loop until it has slept `n` times; returns the clock after each sleep. */
  const runFor = async (n: number) => {
    stopAfter = n;
    await watcher.run(stopped);
    return sleeps.reduce<number[]>((times, ms) => [...times, (times.at(-1) ?? 0) + ms], []);
  };
  /** The configuration for `hosts` (and `reject`), as a reloaded file would give it. */
  const configFor = (hosts: string, reject = false) =>
    parseConfig({ strict: false, reject, requireHosts: true, hosts: { from: "FILE: hosts", value: hosts }, watch: WATCH }).config;
  return { watcher, cycleAt, runFor, calls, kernel, dns, log: log.out, records, policy: built.policy, configFor, schedule, resolvers };
}

/** The allow sets, in the renderer's order: what a name's addresses and the --allow entries go into. */
const ALLOW_SETS = ["allow_addr_v4", "allow_addr_v6", "allow_net64_v6", "allow_v4", "allow_v6", "allow_ports_v4", "allow_ports_v6"];
/** What the allow sets held after each of the kernel's transactions since the watcher started. */
const allowedAfterEach = (w: {
  kernel: { transactions: string[]; heldAfter: (i: number, sets: readonly string[]) => string[] | undefined };
}) => w.kernel.transactions.map((_, i) => w.kernel.heldAfter(i, ALLOW_SETS));

describe("reconfigure (a reloaded --config file)", () => {
  test("a new name is looked up at the next cycle and a removed one dropped: one set update", async () => {
    const w = await startWatcher({
      "api.example": { 4: ["203.0.113.10"], ttl: 300 },
      "cdn.example": { 4: ["203.0.113.20"], ttl: 300 },
      "new.example": { 4: ["203.0.113.30"], ttl: 300 },
    });
    w.dns.asked.length = 0;
    w.watcher.reconfigure({ config: w.configFor("api.example,new.example"), schedule: w.schedule, resolvers: w.resolvers });
    expect(w.watcher.snapshot().nextWake).toBe(0); // at once
    await w.cycleAt(200);
    expect(w.dns.asked).toEqual(["new.example/4", "new.example/6"]);
    expect(w.kernel.transactions).toHaveLength(1);
    expect(w.kernel.replacements()).toBe(0); // the sets alone
    expect(w.kernel.held("allow_addr_v4")).toEqual(["203.0.113.10", "203.0.113.30"]);
    expect([...w.watcher.snapshot().state.keys()]).toEqual(["api.example", "new.example"]);
  });

  test("a change beyond the allow sets (--reject) loads the whole table, in one transaction", async () => {
    const w = await startWatcher({ "api.example": { 4: ["203.0.113.10"], ttl: 300 }, "cdn.example": { 4: ["203.0.113.20"], ttl: 300 } });
    w.watcher.reconfigure({ config: w.configFor("api.example,cdn.example", true), schedule: w.schedule, resolvers: w.resolvers });
    await w.cycleAt(200);
    expect(w.kernel.transactions).toHaveLength(1);
    expect(w.kernel.replacements()).toBe(1);
    expect(w.watcher.snapshot().loaded.verdict).toBe("reject");
    // The kernel's output chain now answers refused traffic instead of dropping it.
    expect(w.kernel.rules("output")?.some((rule) => rule.includes("reject"))).toBe(true);
    expect(w.kernel.held("allow_addr_v4")).toEqual(["203.0.113.10", "203.0.113.20"]);
  });

  test("a name given ports where no entry had any: the port sets appear, so the whole table is loaded", async () => {
    const w = await startWatcher({ "api.example": { 4: ["203.0.113.10"], ttl: 300 }, "cdn.example": { 4: ["203.0.113.20"], ttl: 300 } });
    w.watcher.reconfigure({ config: w.configFor("api.example:443,cdn.example"), schedule: w.schedule, resolvers: w.resolvers });
    await w.cycleAt(200);
    expect(w.kernel.transactions).toHaveLength(1);
    expect(w.kernel.replacements()).toBe(1);
    expect(w.kernel.held("allow_ports_v4")).toEqual(["203.0.113.10 . tcp . 443"]);
    expect(w.kernel.held("allow_addr_v4")).toEqual(["203.0.113.20"]);
    expect(w.watcher.snapshot().loaded.allowV4.map((e) => e.cidr.text)).toEqual(["203.0.113.20"]);
  });

  test("other ports for a name while the port sets stay: one set update, the new ports in, the old out", async () => {
    const w = await startWatcher(
      { "api.example": { 4: ["203.0.113.10"], ttl: 300 }, "cdn.example": { 4: ["203.0.113.20"], ttl: 300 } },
      { hosts: "api.example:443,cdn.example" },
    );
    w.watcher.reconfigure({ config: w.configFor("api.example:8443,cdn.example"), schedule: w.schedule, resolvers: w.resolvers });
    await w.cycleAt(200);
    expect(w.kernel.transactions).toHaveLength(1);
    expect(w.kernel.replacements()).toBe(0);
    expect(w.kernel.held("allow_ports_v4")).toEqual(["203.0.113.10 . tcp . 8443"]);
  });
});

describe("the watch loop", () => {
  test("looks each name up again when its TTL runs out, and changes nothing while the answers stay", async () => {
    const w = await startWatcher({ "api.example": { 4: ["203.0.113.10"], ttl: 30 }, "cdn.example": { 4: ["203.0.113.20"], ttl: 300 } });
    w.dns.asked.length = 0;
    await w.cycleAt(30_000);
    expect(w.dns.asked).toEqual(["api.example/4", "api.example/6"]);
    await w.cycleAt(300_000);
    expect(w.dns.asked).toContain("cdn.example/4");
    expect(w.calls).toEqual([]);
    expect(w.watcher.snapshot().updates).toEqual({ ok: 0, failed: 0, seconds: 0, refilled: 0 });
  });

  test("a rebuilt policy keeps the on-link prefixes apply read (an address added later needs a restart)", async () => {
    const w = await startWatcher(
      { "api.example": { 4: ["203.0.113.10"], ttl: 30 } },
      { hosts: "api.example", onLink: ["2001:db8:1::/64"] },
    );
    w.records["api.example"] = { 4: ["203.0.113.11"], ttl: 30 };
    await w.cycleAt(30_000);
    expect(w.calls).toHaveLength(1);
    expect(w.watcher.snapshot().loaded.onLink).toEqual([cidr("2001:db8:1::/64")]);
  });

  test("a TTL below --min-ttl is looked up after --min-ttl", async () => {
    const w = await startWatcher({ "api.example": { 4: ["203.0.113.10"], ttl: 1 } }, { hosts: "api.example" });
    expect(w.watcher.snapshot().nextWake).toBe(5_000);
  });

  test("a new answer is loaded at once as a set update; the old address goes after the grace period", async () => {
    const w = await startWatcher({
      "api.example": { 4: ["203.0.113.10"], 6: ["2001:db8::10"], ttl: 30 },
      "cdn.example": { 4: ["203.0.113.20"], ttl: 300 },
    });
    w.records["api.example"] = { 4: ["203.0.113.11"], 6: ["2001:db8::10"], ttl: 30 };
    await w.cycleAt(30_000);
    expect(w.calls).toHaveLength(1);
    expect(w.calls[0]?.args).toEqual(["-f", "-"]);
    expect(w.kernel.replacements()).toBe(0); // a set update
    expect(allowedAfterEach(w)[0]).toEqual(["203.0.113.10", "203.0.113.11", "203.0.113.20", "2001:db8::10"]);
    expect(w.log.text).toContain("allowlist updated in 0 ms: +203.0.113.11 (api.example); 3 IPv4 and 1 IPv6 allowed");
    // Still within the grace of 203.0.113.10 (last seen at 0): nothing changes.
    await w.cycleAt(59_000);
    expect(w.calls).toHaveLength(1);
    expect(w.watcher.snapshot().nextWake).toBe(60_000);
    await w.cycleAt(60_000);
    expect(w.calls).toHaveLength(2);
    expect(allowedAfterEach(w)[1]).toEqual(["203.0.113.11", "203.0.113.20", "2001:db8::10"]);
    expect(w.log.text).toContain("-203.0.113.10 (api.example, last seen 60s ago)");
    expect(w.watcher.snapshot().updates).toMatchObject({ ok: 2, failed: 0 });
  });

  test("a name with ports keeps them when it is looked up again: the port sets are updated, in the same transaction", async () => {
    const w = await startWatcher(
      { "api.example": { 4: ["203.0.113.10"], 6: ["2001:db8::10"], ttl: 30 }, "cdn.example": { 4: ["203.0.113.20"], ttl: 300 } },
      { hosts: "api.example:443,api.example:8000-8100/udp,cdn.example" },
    );
    w.records["api.example"] = { 4: ["203.0.113.11"], 6: ["2001:db8::10"], ttl: 30 };
    await w.cycleAt(30_000);
    expect(w.calls).toHaveLength(1);
    expect(w.kernel.replacements()).toBe(0); // a set update, the port sets in the same transaction
    expect(allowedAfterEach(w)[0]).toEqual([
      "203.0.113.20",
      "203.0.113.10 . tcp . 443",
      "203.0.113.10 . udp . 8000-8100",
      "203.0.113.11 . tcp . 443",
      "203.0.113.11 . udp . 8000-8100",
      "2001:db8::10 . tcp . 443",
      "2001:db8::10 . udp . 8000-8100",
    ]);
    expect(w.log.text).toContain(
      "+203.0.113.11 443/tcp (api.example), +203.0.113.11 8000-8100/udp (api.example); 1 IPv4 and 0 IPv6 allowed, 6 with ports",
    );
    await w.cycleAt(60_000);
    expect(allowedAfterEach(w)[1]).toEqual([
      "203.0.113.20",
      "203.0.113.11 . tcp . 443",
      "203.0.113.11 . udp . 8000-8100",
      "2001:db8::10 . tcp . 443",
      "2001:db8::10 . udp . 8000-8100",
    ]);
    expect(w.log.text).toContain("-203.0.113.10 443/tcp (api.example, last seen 60s ago)");
  });

  test("an address two names share stays while either still returns it", async () => {
    const w = await startWatcher({ "api.example": { 4: ["203.0.113.10"], ttl: 30 }, "cdn.example": { 4: ["203.0.113.10"], ttl: 30 } });
    w.records["api.example"] = { 4: ["203.0.113.11"], ttl: 30 };
    await w.cycleAt(30_000);
    await w.cycleAt(60_000);
    await w.cycleAt(90_000);
    expect(allowedAfterEach(w)).toEqual([["203.0.113.10", "203.0.113.11"]]);
  });

  test("DNS trouble never shrinks the allowlist: failing names keep their addresses past the grace, with a warning each time", async () => {
    const w = await startWatcher({ "api.example": { 4: ["203.0.113.10"], ttl: 30 }, "cdn.example": { 4: ["203.0.113.20"], ttl: 30 } });
    w.records["api.example"] = { error: "DNS_ESERVFAIL" };
    w.records["cdn.example"] = { error: "DNS_ECONNREFUSED" };
    for (let at = 30_000; at <= 600_000; at = w.watcher.snapshot().nextWake) await w.cycleAt(at);
    expect(w.calls).toEqual([]);
    const snapshot = w.watcher.snapshot();
    expect(snapshot.loaded).toEqual(w.policy);
    expect(snapshot.state.get("api.example")).toMatchObject({ failures: 13, failuresTotal: 13 });
    expect(snapshot.lastGoodRefresh).toBe(0);
    expect(w.log.text).toMatch(
      /api\.example: lookup failed \(DNS_ESERVFAIL \(after 3 attempts\)\); keeping its 1 known address, last seen 3\d(\.\d)?s ago; next try in 5s/,
    );
    expect(w.log.text).toMatch(/cdn\.example: lookup failed \(DNS_ECONNREFUSED .* last seen 6\d\d(\.\d)?s ago; next try in 60s/);
    expect(w.log.text.match(/lookup failed/g)).toHaveLength(26);
    // When it answers again, what it no longer returns goes (its grace passed long ago).
    w.records["api.example"] = { 4: ["203.0.113.11"], ttl: 30 };
    w.records["cdn.example"] = { 4: ["203.0.113.20"], ttl: 30 };
    await w.cycleAt(700_000);
    expect(allowedAfterEach(w)).toEqual([["203.0.113.11", "203.0.113.20"]]);
    expect(w.watcher.snapshot().lastGoodRefresh).toBe(700_000);
  });

  test("while only AAAA keeps failing, the A answers are followed: the old IPv4 address goes after the grace, the IPv6 one stays", async () => {
    const w = await startWatcher({ "api.example": { 4: ["203.0.113.10"], 6: ["2001:db8::10"], ttl: 30 } }, { hosts: "api.example" });
    w.records["api.example"] = { 4: ["203.0.113.11"], 6: "DNS_ETIMEOUT", ttl: 30 };
    let at = 30_000;
    while (w.calls.length < 2 && at <= 600_000) {
      await w.cycleAt(at);
      if (w.calls.length < 2) at = w.watcher.snapshot().nextWake;
    }
    // The update that removes 203.0.113.10 comes at the end of its grace (60 s after A last returned it), AAAA failing all along.
    expect(at).toBe(60_000);
    expect(allowedAfterEach(w)).toEqual([
      ["203.0.113.10", "203.0.113.11", "2001:db8::10"],
      ["203.0.113.11", "2001:db8::10"],
    ]);
    expect(w.watcher.snapshot().state.get("api.example")).toMatchObject({
      failures: 3,
      families: { 4: { failing: false }, 6: { lastAnswer: 0, failing: true } },
    });
    expect(w.log.text).toContain("-203.0.113.10 (api.example, last seen 60s ago)");
    expect(w.log.text).toMatch(
      /api\.example: AAAA lookup failed \(DNS_ETIMEOUT \(after 3 attempts\)\); keeping its 1 known IPv6 address, last seen 3\d(\.\d)?s ago; next try in 5s/,
    );
    // The IPv6 address stays while AAAA fails, however long.
    for (at = w.watcher.snapshot().nextWake; at <= 600_000; at = w.watcher.snapshot().nextWake) await w.cycleAt(at);
    expect(w.calls).toHaveLength(2);
    // Looked up at the A records' TTL (30 s) once the failure backoff is longer: 3 tries by 60 s, then every 30 s.
    expect(w.watcher.snapshot().state.get("api.example")).toMatchObject({ failures: 21, families: { 6: { failing: true } } });
    expect(w.watcher.snapshot().lastGoodRefresh).toBe(0);
  });

  test("a name that never resolved (--on-resolve-error warn) joins once it does", async () => {
    const w = await startWatcher(
      { "api.example": { error: "DNS_ETIMEOUT" }, "cdn.example": { 4: ["203.0.113.20"], ttl: 30 } },
      { onResolveError: "warn" },
    );
    expect(w.log.text).toBe("");
    await w.cycleAt(5_000);
    expect(w.log.text).toContain("api.example: lookup failed");
    expect(w.log.text).toContain("it has no known addresses; next try in 10s");
    w.records["api.example"] = { 4: ["203.0.113.10"], ttl: 30 };
    await w.cycleAt(w.watcher.snapshot().nextWake);
    expect(allowedAfterEach(w)).toEqual([["203.0.113.10", "203.0.113.20"]]);
  });

  test("a name that stops existing warns once and keeps its addresses for the grace period", async () => {
    const w = await startWatcher({ "api.example": { 4: ["203.0.113.10"], ttl: 30 } }, { hosts: "api.example" });
    delete w.records["api.example"];
    await w.cycleAt(30_000);
    await w.cycleAt(35_000);
    expect(w.log.text.match(/no such name or no addresses now/g)).toHaveLength(1);
    expect(w.calls).toEqual([]);
    await w.cycleAt(60_000);
    expect(allowedAfterEach(w)).toEqual([[]]);
  });

  test("a refused answer (link-local) is warned about once, not every cycle", async () => {
    const w = await startWatcher({ "api.example": { 4: ["203.0.113.10"], ttl: 30 } }, { hosts: "api.example" });
    w.records["api.example"] = { 4: ["203.0.113.10", "169.254.169.254"], ttl: 30 };
    await w.cycleAt(30_000);
    await w.cycleAt(60_000);
    expect(w.log.text.match(/not allowing 169\.254\.169\.254 \(link-local/g)).toHaveLength(1);
    expect(w.calls).toEqual([]);
  });

  test("a failed update keeps the loaded sets and is retried after --min-ttl as a full reload", async () => {
    let fail = true;
    const w = await startWatcher(
      { "api.example": { 4: ["203.0.113.10"], ttl: 30 } },
      { hosts: "api.example", nft: () => (fail ? { code: 1, stderr: "Error: No such file or directory" } : {}) },
    );
    const loaded = w.watcher.snapshot().loaded;
    w.records["api.example"] = { 4: ["203.0.113.11"], ttl: 30 };
    await w.cycleAt(30_000);
    expect(w.watcher.snapshot()).toMatchObject({
      loaded,
      updateError: "nft -f (allow sets) failed: Error: No such file or directory",
      nextWake: 35_000,
    });
    expect(w.log.text).toContain("updating the allowed addresses failed; the rules loaded before stay, retrying in 5s");
    fail = false;
    await w.cycleAt(35_000);
    // The failed set update (the change alone, then the sets flushed and refilled) changed nothing;
    // the retry is a full load of the whole table.
    expect(w.calls).toHaveLength(3);
    expect([w.kernel.transactions.length, w.kernel.replacements()]).toEqual([1, 1]);
    expect(w.kernel.held("allow_addr_v4")).toEqual(["203.0.113.10", "203.0.113.11"]);
    expect(w.watcher.snapshot()).toMatchObject({ updateError: undefined, updates: { ok: 1, failed: 1 } });
    expect(w.log.text).toContain("allowlist updated (full reload)");
  });

  test("a set changed from outside: the change alone is refused, the sets are flushed and refilled, counted, and said once a minute", async () => {
    const w = await startWatcher({ "api.example": { 4: ["203.0.113.10"], ttl: 30 } }, { hosts: "api.example" });
    expect((await w.kernel.executor.run("flush set inet domainwall allow_addr_v4\n")).code).toBe(0);
    w.records["api.example"] = { 4: ["203.0.113.10", "203.0.113.11"], ttl: 30 };
    await w.cycleAt(30_000);
    expect(w.kernel.held("allow_addr_v4")).toEqual(["203.0.113.10", "203.0.113.11"]);
    expect(w.watcher.snapshot().updates).toMatchObject({ ok: 1, failed: 0, refilled: 1 });
    expect(w.log.text.match(/did not hold what watch had loaded/g)).toHaveLength(1);
    // Again within the minute: counted, not said again.
    expect((await w.kernel.executor.run("flush set inet domainwall allow_addr_v4\n")).code).toBe(0);
    w.records["api.example"] = { 4: ["203.0.113.10", "203.0.113.12"], ttl: 30 };
    await w.cycleAt(60_000);
    expect(w.kernel.held("allow_addr_v4")).toEqual(["203.0.113.10", "203.0.113.11", "203.0.113.12"]);
    expect(w.watcher.snapshot().updates).toMatchObject({ ok: 2, refilled: 2 });
    expect(w.log.text.match(/did not hold what watch had loaded/g)).toHaveLength(1);
  });

  test("an element added from outside: kept by changes alone, gone at the first update 10 minutes after the last whole load", async () => {
    const w = await startWatcher({ "api.example": { 4: ["203.0.113.10"], ttl: 30 } }, { hosts: "api.example" });
    expect((await w.kernel.executor.run("add element inet domainwall allow_addr_v4 { 192.0.2.66 }\n")).code).toBe(0);
    w.records["api.example"] = { 4: ["203.0.113.10", "203.0.113.11"], ttl: 30 };
    await w.cycleAt(30_000);
    expect(w.kernel.held("allow_addr_v4")).toEqual(["192.0.2.66", "203.0.113.10", "203.0.113.11"]);
    w.records["api.example"] = { 4: ["203.0.113.10", "203.0.113.12"], ttl: 30 };
    await w.cycleAt(600_000);
    expect(w.kernel.held("allow_addr_v4")).toEqual(["203.0.113.10", "203.0.113.12"]);
    expect(w.kernel.transactions.at(-1)).toContain("flush set inet domainwall allow_addr_v4");
    // The next change is a change alone again.
    w.records["api.example"] = { 4: ["203.0.113.10", "203.0.113.13"], ttl: 30 };
    await w.cycleAt(630_000);
    expect(w.kernel.transactions.at(-1)).not.toContain("flush set");
    expect(w.kernel.held("allow_addr_v4")).toEqual(["203.0.113.10", "203.0.113.12", "203.0.113.13"]);
  });

  test("every backend updates sets in place: one without updateSets is a type error", async () => {
    // @ts-expect-error updateSets is required (a full apply replaces it only after a failed update)
    const withoutUpdates: (b: Backend) => Backend = ({ updateSets: _, ...rest }) => rest;
    expect(withoutUpdates).toBeDefined();
  });

  test("run() sleeps until the next event, cycles, and stops when told", async () => {
    const w = await startWatcher({ "api.example": { 4: ["203.0.113.10"], ttl: 30 } }, { hosts: "api.example" });
    w.dns.asked.length = 0;
    expect(await w.runFor(3)).toEqual([30_000, 60_000, 90_000]);
    expect(w.dns.asked).toHaveLength(4);
  });
});

/** main() with a fake world; SIGTERM arrives once the fake clock passes `stopAt`. */
async function runWatch(
  argv: string[],
  options: {
    records?: Records;
    nft?: (call: RunCall) => Partial<RunResult>;
    stopAt?: number;
    bindFails?: boolean;
    readOnly?: string;
    held?: Map<string, Holder>;
    beforeProbe?: (handle: (request: Request) => Promise<Response>) => Promise<void>;
    files?: Record<string, string>;
  } = {},
) {
  let clock = 0;
  let signal: (name: string) => void = () => {};
  const stopped = new Promise<string>((resolve) => (signal = resolve));
  const files: Record<string, string> = { "/etc/resolv.conf": "nameserver 198.51.100.2\n", ...options.files };
  const events: string[] = [];
  const writes: { path: string; text: string; at: number }[] = [];
  const locks = fakeLocks(4242, options.held);
  const jit: { events: number; locks: number }[] = [];
  let loadedTable: string | undefined;
  const { run, calls: allCalls } = fakeRun((call) => {
    if (isBackendProbe(call)) {
      // nft works here; selection has its own tests
      return options.beforeProbe && served.handle ? options.beforeProbe(served.handle).then(() => ({})) : {};
    }
    if (/ip6?tables-legacy/.test(call.command)) return {}; // the other backend: nothing of ours loaded there
    // The guard's and SIGTERM's reads of the table's shape: answered from the last full load, as a kernel would.
    if (isTerseListing(call))
      return loadedTable === undefined ? { code: 1, stderr: "Error: No such file or directory" } : { stdout: terseListingOf(loadedTable) };
    if (call.stdin?.includes("table inet domainwall {")) loadedTable = call.stdin;
    if (call.stdin?.startsWith("table inet domainwall\ndelete table inet domainwall\n") && !call.stdin.includes("{"))
      loadedTable = undefined;
    events.push(`nft ${call.args.join(" ")}`);
    return options.nft?.(call) ?? {};
  });
  const log = sink();
  const served: { address?: unknown; handle?: (request: Request) => Promise<Response>; stopped: boolean } = { stopped: false };
  const world: World = {
    // The iptables-legacy tools decide, as where the kernel cannot be asked.
    legacyFilterEmpty: async () => false,
    tableEvents: () => ({ close: () => {} }),
    argv,
    env: {},
    stdout: async () => {},
    stderr: log.stream,
    writeStderr: (text) => void log.stream.write(text),
    run,
    nft: () => ({ executor: processExecutor(run), reason: "nft transactions run the nft binary: a fake" }),
    lookup: fakeDns(options.records ?? { "api.example": { 4: ["203.0.113.10"], ttl: 30 } }).lookup,
    watchLookup: fakeDns(options.records ?? { "api.example": { 4: ["203.0.113.10"], ttl: 30 } }).lookup,
    readFile: async (path) => {
      if (options.files !== undefined && path in options.files) events.push(`read ${path}`); // only the files a test gives
      return files[path];
    },
    writeFile: async (path, text) => {
      if (options.readOnly !== undefined && path.startsWith(options.readOnly))
        throw new Error(`EROFS: read-only file system, open '${path}'`);
      events.push(`write ${path}`);
      writes.push({ path, text, at: clock });
      files[path] = text;
    },
    removeFile: async (path) => {
      events.push(`remove ${path}`);
      const existed = path in files;
      delete files[path];
      return existed;
    },
    now: () => clock,
    sleep: async (ms) => {
      clock += ms;
      if (clock >= (options.stopAt ?? 100_000)) signal("SIGTERM");
    },
    // The fake lookups answer at once: no deadline ever falls due.
    setTimer: () => () => {},
    awaitOperator: () => ({ decision: new Promise(() => {}), done: () => {} }),
    untilStopped: () => ({ stopped, done: () => events.push("signals restored") }),
    configChanges: () => ({ stop: () => {} }),
    serve: (address, handle) => {
      if (options.bindFails) throw new Error("Failed to start server. Is port 9464 in use?");
      Object.assign(served, { address, handle });
      return { stop: () => void (served.stopped = true) };
    },
    processStats: () => ({ residentBytes: 50_000_000, cpuSeconds: 1.5, startTimeSeconds: 1_700_000_000 }),
    epochNow: () => EPOCH + clock,
    pid: 4242,
    processAlive: (pid) => pid === 4242,
    ...locks,
  };
  const runtime = fakeRuntime({
    // When it was called: how many events and locks had happened by then.
    normalJit: () => void jit.push({ events: events.length, locks: locks.taken.length }),
    backgroundLoop: () => void events.push("background loop"),
  });
  const code = await main(world, runtime);
  return {
    code,
    // The denial stream's reads of the denied sets (watch/denial-stream.ts) and the guard's table reads change nothing: not counted.
    calls: allCalls.filter(
      (call) => !isBackendProbe(call) && !isTerseListing(call) && !/ip6?tables-legacy/.test(call.command) && !isDeniedRead(call),
    ),
    files,
    events,
    writes,
    served,
    log: log.out.text,
    now: () => clock,
    locks,
    jit,
  };
}

const isDeniedRead = (call: { readonly args: readonly string[] }) =>
  /^-j list set inet domainwall denied_|^list counter inet domainwall output_audited/.test(call.args.join(" "));

describe("domainwall watch", () => {
  const READY = "/run/domainwall/ready";
  const STATE = "/run/domainwall/watch.json";

  test("holds the watch marker for its whole life and takes the kernel lock for the load and each update", async () => {
    const records: Records = { "api.example": { 4: ["203.0.113.10"], ttl: 1 } };
    const moved = () => ((records["api.example"] = { 4: ["203.0.113.11"], ttl: 1 }), {}); // after the first load
    const { code, locks, calls } = await runWatch(["watch", "--hosts", "api.example", "--min-ttl", "1", "--remove-on-exit"], {
      records,
      nft: moved,
      stopAt: 2_500,
    });
    expect(code).toBe(0);
    expect(calls.length).toBe(3); // the load, one update, the removal
    expect(locks.taken[0]).toBe("domainwall-watch (watch)");
    expect(locks.taken.slice(1)).toEqual(calls.map(() => "domainwall-lock (watch)"));
    expect(locks.held.size).toBe(0); // released on the way out
  });

  test("with --dns-proxy, gives the JIT its normal policy before anything else (the binary starts one-shot commands with a reluctant one)", async () => {
    const { code, jit } = await runWatch(["watch", "--hosts", "api.example", "--dns-proxy"]);
    expect(code).toBe(1); // the fake world cannot switch groups
    expect(jit).toEqual([{ events: 0, locks: 0 }]);
  });

  test("without the proxy, the background loop's runtime instead (it sets its own JIT policy)", async () => {
    const { code, jit, events } = await runWatch(["watch", "--hosts", "api.example", "--min-ttl", "1"], { stopAt: 1_500 });
    expect(code).toBe(0);
    expect(jit).toEqual([]);
    expect(events[0]).toBe("background loop");
  });

  test("a second watch in the namespace exits 1 naming the first, and loads nothing", async () => {
    const held = new Map([["domainwall-watch", { pid: 77, command: "watch" }]]);
    const { code, calls, log } = await runWatch(["watch", "--hosts", "api.example"], { held });
    expect(code).toBe(1);
    expect(calls).toEqual([]);
    expect(log).toContain("another domainwall watch is running in this network namespace: pid 77 (watch)");
  });

  test("applies as apply does, writes the ready file after, then keeps watching until SIGTERM: exit 0, rules stay", async () => {
    const { code, calls, files, events, log } = await runWatch([
      "watch",
      "--hosts",
      "api.example",
      "--ready-file",
      READY,
      "--min-ttl",
      "1",
    ]);
    expect(code).toBe(0);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.stdin).toContain("203.0.113.10, # api.example");
    expect(calls[0]?.stdin).toStartWith("#!/usr/sbin/nft -f\n# domainwall: generated ruleset");
    // The ready file's directory is proven writable before the rules are loaded.
    // A background loop from the start (the JIT policy): before the load, which it makes no faster.
    expect(events.slice(0, 7)).toEqual([
      "background loop",
      `remove ${READY}`,
      `write ${READY}.domainwall-check`,
      `remove ${READY}.domainwall-check`,
      "nft -f -",
      `write ${STATE}`,
      `write ${READY}`,
    ]);
    expect(events.slice(-3)).toEqual(["write /run/domainwall/names.json", `remove ${STATE}`, "signals restored"]);
    expect(events.at(-1)).toBe("signals restored");
    expect(files[READY]).toBe("loaded\n");
    expect(log).toContain("applied: 1 name resolved, 0 skipped; 1 IPv4 and 0 IPv6 allowed");
    expect(log).toContain("watching 1 name: looked up again as their TTLs run out (between 1s and 3600s); unseen addresses stay 300s");
    expect(log).toContain("SIGTERM: stopped; the rules stay loaded");
  });

  test("without the proxy, the background loop starts once the configuration is valid (the allow file read), before anything is locked or loaded; an invalid one never starts it", async () => {
    const { code, events, calls, locks } = await runWatch(["watch", "--hosts", "api.example", "--allow-file", "/dev/stdin"], {
      files: { "/dev/stdin": "198.51.100.0/24\n" },
    });
    expect(code).toBe(0);
    expect(events.slice(0, 2)).toEqual(["read /dev/stdin", "background loop"]);
    expect(locks.taken.length).toBeGreaterThan(0);
    expect(calls[0]?.stdin).toContain("198.51.100.0/24");

    const invalid = await runWatch(["watch", "--hosts", "api.example", "--allow-file", "/dev/stdin"], {
      files: { "/dev/stdin": "198.51.100.0/33\n" },
    });
    expect(invalid.code).toBe(2);
    expect(invalid.events).toEqual(["read /dev/stdin"]);
    expect(invalid.locks.taken).toEqual([]);
  });

  test("with --dns-proxy the runtime is not set up as a background loop (the proxy answers queries at the apps' pace)", async () => {
    const { code, events } = await runWatch(["watch", "--hosts", "api.example", "--dns-proxy"]);
    expect(code).toBe(1); // the fake world cannot switch groups
    expect(events).not.toContain("background loop");
  });

  test("--remove-on-exit removes the rules and the ready file", async () => {
    const { code, calls, files, log } = await runWatch(["watch", "--hosts", "api.example", "--ready-file", READY, "--remove-on-exit"]);
    expect(code).toBe(0);
    expect(calls.at(-1)?.stdin).toBe("table inet domainwall\ndelete table inet domainwall\n");
    expect(files[READY]).toBeUndefined();
    expect(log).toContain("SIGTERM: stopped and removed domainwall's rules (--remove-on-exit)");
  });

  test("--metrics-addr serves /healthz and /metrics, and stops serving on exit", async () => {
    const { code, served } = await runWatch(["watch", "--hosts", "api.example", "--metrics-addr", "127.0.0.1:9464"], {
      nft: (call) =>
        call.args.includes("list")
          ? { stdout: JSON.stringify({ nftables: [{ counter: { name: "output_dropped", packets: 3, bytes: 180 } }] }) }
          : {},
    });
    expect(code).toBe(0);
    expect(served.address).toEqual({ hostname: "127.0.0.1", port: 9464 });
    expect(served.stopped).toBe(true);
    const health = await served.handle!(new Request("http://127.0.0.1:9464/healthz"));
    expect([health.status, await health.text()]).toEqual([200, "ok: rules loaded; 1 names, 0 failing\n"]);
    const metrics = await (await served.handle!(new Request("http://127.0.0.1:9464/metrics"))).text();
    expect(metrics).toContain('domainwall_allowed_addresses{family="ipv4"} 1\n');
    expect(metrics).toContain('domainwall_resolution_failures_total{name="api.example"} 0\n');
    expect(metrics).toContain('domainwall_dropped_packets_total{counter="output_dropped",direction="out"} 3\n');
    expect(metrics).toContain("process_resident_memory_bytes 50000000\n");
  });

  test("keeps its per-name state in the run directory for `status` while it runs, and removes it on exit", async () => {
    const records: Records = { "api.example": { 4: ["203.0.113.10"], ttl: 30 } };
    const { code, writes, files } = await runWatch(["watch", "--hosts", "api.example"], { records, stopAt: 65_000 });
    expect(code).toBe(0);
    const states = writes.filter((w) => w.path === STATE);
    // After the initial apply, then after each lookup round (TTL 30 s: at 30 s and 60 s, plus jitter).
    expect(states.length).toBe(3);
    const last = JSON.parse(states.at(-1)?.text ?? "");
    expect(last).toMatchObject({
      version: 1,
      pid: 4242,
      backend: "nft",
      names: [{ name: "api.example", addresses: ["203.0.113.10"], failing: 0, lastError: null }],
    });
    expect(last.names[0].lastResolved).toBe(Math.round(EPOCH + (states.at(-1)?.at ?? 0)));
    expect(files[STATE]).toBeUndefined();
  });

  test("a read-only run directory costs only the per-name status: one warning, and watch goes on", async () => {
    const { code, log } = await runWatch(["watch", "--hosts", "api.example"], { readOnly: "/run/domainwall/", stopAt: 65_000 });
    expect(code).toBe(0);
    expect(log.match(/cannot write \/run\/domainwall\/watch\.json \(status will not show per-name addresses\): EROFS/g)).toHaveLength(1);
    expect(log).toContain("SIGTERM: stopped; the rules stay loaded");
  });

  test("a --ready-file that cannot be written exits 2 before anything is loaded", async () => {
    const { code, calls, log } = await runWatch(["watch", "--hosts", "api.example", "--ready-file", "/ro/ready"], { readOnly: "/ro/" });
    expect(code).toBe(2);
    expect(calls).toEqual([]);
    expect(log).toContain('--ready-file: cannot write "/ro/ready": EROFS');
  });

  test("/metrics answers (without counters) while the backend is still being chosen", async () => {
    let scraped: Response | undefined;
    const { code } = await runWatch(["watch", "--hosts", "api.example", "--metrics-addr", "127.0.0.1:9464"], {
      beforeProbe: async (handle) => {
        scraped = await handle(new Request("http://127.0.0.1:9464/metrics"));
      },
    });
    expect(code).toBe(0);
    expect(scraped?.status).toBe(200);
    expect(await scraped?.text()).toContain("domainwall_rules_loaded 0\n");
  });

  test("a metrics address that cannot be bound exits 1 before anything is loaded", async () => {
    const { code, calls, log } = await runWatch(["watch", "--hosts", "api.example", "--metrics-addr", ":9464"], { bindFails: true });
    expect(code).toBe(1);
    expect(calls).toEqual([]);
    expect(log).toContain("--metrics-addr: cannot listen on 0.0.0.0:9464: Failed to start server");
  });

  test("warns when --ports filters inbound and leaves out the metrics port", async () => {
    expect((await runWatch(["watch", "--hosts", "api.example", "--ports", "3000", "--metrics-addr", ":9464"])).log).toContain(
      "--ports does not include the --metrics-addr port 9464",
    );
    expect((await runWatch(["watch", "--hosts", "api.example", "--ports", "3000,9464", "--metrics-addr", ":9464"])).log).not.toContain(
      "--ports does not include",
    );
  });

  test("a failing initial apply exits 1 and writes no ready file", async () => {
    const { code, files, log } = await runWatch(["watch", "--hosts", "api.example", "--ready-file", READY], {
      nft: () => ({ code: 1, stderr: "Error: Could not process rule: No buffer space available" }),
    });
    expect(code).toBe(1);
    expect(files[READY]).toBeUndefined();
    expect(log).toContain("nft -f failed: Error: Could not process rule: No buffer space available");
  });

  test("a name that fails at start follows apply's rules: exit 1 unless --on-resolve-error warn", async () => {
    const records: Records = { "api.example": { 4: ["203.0.113.10"], ttl: 30 }, "down.example": { error: "DNS_EBADRESP" } };
    expect((await runWatch(["watch", "--hosts", "api.example,down.example"], { records })).code).toBe(1);
    const warned = await runWatch(["watch", "--hosts", "api.example,down.example", "--on-resolve-error", "warn"], { records });
    expect(warned.code).toBe(0);
    expect(warned.log).toContain("down.example: lookup failed (DNS_EBADRESP); it has no known addresses");
  });

  test.each([
    { argv: ["watch", "--hosts", "api.example", "--confirm-within", "5s"], message: "--confirm-within does not apply to 'watch'" },
    { argv: ["apply", "--hosts", "api.example", "--grace", "5s"], message: "--grace does not apply to 'apply'" },
    {
      argv: ["watch", "--hosts", "api.example", "--min-ttl", "10m", "--max-ttl", "1m"],
      message: "--min-ttl (600s) must not be longer than --max-ttl (60s)",
    },
    { argv: ["watch"], message: "hosts_csv (or --hosts) is required" },
  ])("usage error $argv exits 2 and touches nothing", async ({ argv, message }) => {
    const { code, calls, log } = await runWatch([...argv]);
    expect(code).toBe(2);
    expect(calls).toEqual([]);
    expect(log).toContain(message);
  });

  test("watch --help lists every watch flag", async () => {
    let out = "";
    const world = { stdout: async (text: string) => void (out += text) } as unknown as World;
    expect(await main({ ...world, argv: ["watch", "--help"] }, fakeRuntime())).toBe(0);
    for (const flag of [
      "--min-ttl DURATION",
      "--max-ttl DURATION",
      "--grace DURATION",
      "--ready-file PATH",
      "--metrics-addr HOST:PORT",
      "--remove-on-exit",
      "--hosts LIST",
    ])
      expect(out).toContain(flag);
    expect(out).toContain("(default 5s)");
  });
});
