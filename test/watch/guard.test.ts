import { expect, test } from "bun:test";
import { createLogger } from "../../src/log.ts";
import { startRulesetGuard, type GuardIo } from "../../src/watch/guard.ts";
import type { Backend } from "../../src/backends/backend.ts";
import { guardBackend } from "../../src/watch/guard-start.ts";
import type { Policy } from "../../src/policy/policy.ts";

/** A fake clock with timers fired by `advance`, and a log collected as text. */
function harness(io: Partial<GuardIo> & Pick<GuardIo, "missing" | "restore">) {
  let clock = 0;
  const timers: { at: number; fire: () => void; cancelled: boolean }[] = [];
  let logged = "";
  const log = createLogger("json", { write: (text: string) => void (logged += text), stream: () => process.stderr });
  let changed: (events: readonly string[]) => void = () => {};
  const closed = { value: false };
  const guard = startRulesetGuard({
    log,
    now: () => clock,
    setTimer: (ms, fire) => {
      const timer = { at: clock + ms, fire, cancelled: false };
      timers.push(timer);
      return () => void (timer.cancelled = true);
    },
    subscribe: (listener) => ((changed = listener), { close: () => void (closed.value = true) }),
    ...io,
  });
  const advance = async (ms: number) => {
    const until = clock + ms;
    for (;;) {
      const next = timers.filter((t) => !t.cancelled && t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (next === undefined) break;
      next.cancelled = true;
      clock = next.at;
      next.fire();
      for (let i = 0; i < 10; i++) await Promise.resolve();
    }
    clock = until;
  };
  return { guard, advance, announce: (events: string[]) => changed(events), log: () => logged, closed, timers };
}

test("an announced removal is checked once after the burst, restored, logged at error level naming what was missing, and counted", async () => {
  let kernelHasIt = true;
  let restores = 0;
  const h = harness({
    missing: async () => (kernelHasIt ? [] : ["chain dns_redirect"]),
    restore: async () => void (restores++, (kernelHasIt = true)),
  });
  kernelHasIt = false;
  h.announce(["delete rule in chain dns_redirect"]);
  h.announce(["delete chain dns_redirect"]);
  await h.advance(1000);
  expect(restores).toBe(1);
  expect(h.guard.stats()).toEqual({ restored: 1, failed: 0 });
  const lines = h
    .log()
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { level: string; msg: string });
  expect(lines[0]).toMatchObject({
    level: "error",
    msg: "domainwall's rules were changed from outside (the kernel announced: delete rule in chain dns_redirect, delete chain dns_redirect); missing: chain dns_redirect; loading the whole policy again",
  });
  expect(lines[1]?.msg).toStartWith("domainwall's rules restored in ");
});

test("our own changes (nothing missing afterwards) restore nothing", async () => {
  let restores = 0;
  const h = harness({ missing: async () => [], restore: async () => void restores++ });
  h.announce(["delete table"]);
  await h.advance(1000);
  expect(restores).toBe(0);
  expect(h.log()).toBe("");
});

test("a failing restore is logged at error level each time and retried later and later, up to 30 s apart, until it succeeds", async () => {
  let attempts = 0;
  let ok = false;
  const h = harness({
    missing: async () => (ok ? [] : ["table inet domainwall"]),
    restore: async () => {
      attempts++;
      if (attempts < 8) throw new Error("nft -f failed: Operation not permitted");
      ok = true;
    },
  });
  h.announce(["delete table"]);
  await h.advance(10);
  expect(attempts).toBe(1);
  await h.advance(1000);
  expect(attempts).toBe(2);
  await h.advance(2000);
  expect(attempts).toBe(3);
  await h.advance(4000 + 8000 + 16000 + 30000 + 30000);
  expect(attempts).toBe(8);
  expect(h.guard.stats()).toEqual({ restored: 1, failed: 7 });
  const errors = h
    .log()
    .split("\n")
    .filter((l) => l.includes("restoring domainwall's rules (missing: table inet domainwall) failed"));
  expect(errors).toHaveLength(7);
  expect(errors.at(-1)).toContain("trying again in 30s: nft -f failed: Operation not permitted");
});

test("without events (the socket refused), a warning says so and the rules are checked every second", async () => {
  let checks = 0;
  let logged = "";
  let clock = 0;
  const timers: { at: number; fire: () => void }[] = [];
  startRulesetGuard({
    missing: async () => (checks++, []),
    restore: async () => {},
    subscribe: () => {
      throw new Error("bind to NFNLGRP_NFTABLES failed: EPERM");
    },
    log: createLogger("json", { write: (text: string) => void (logged += text), stream: () => process.stderr }),
    now: () => clock,
    setTimer: (ms, fire) => (timers.push({ at: clock + ms, fire }), () => {}),
  });
  expect(logged).toContain(
    "cannot watch the kernel for changes to domainwall's rules (bind to NFNLGRP_NFTABLES failed: EPERM): checking them every 1s instead",
  );
  for (let i = 0; i < 3; i++) {
    const next = timers.shift()!;
    clock = next.at;
    next.fire();
    for (let j = 0; j < 10; j++) await Promise.resolve();
  }
  expect(checks).toBe(3);
  expect(clock).toBe(3000);
});

test("stop closes the subscription and cancels what is scheduled", async () => {
  let checks = 0;
  const h = harness({ missing: async () => (checks++, []), restore: async () => {} });
  h.announce(["delete table"]);
  h.guard.stop();
  await h.advance(5000);
  expect(checks).toBe(0);
  expect(h.closed.value).toBe(true);
});

test("the guard's check waits for the loop's load under way and compares with the policy it loaded, never an older one", async () => {
  const [old, next] = [{ id: "old" }, { id: "next" }] as unknown as [Policy, Policy];
  let kernel: Policy = old;
  let finishLoad: () => void = () => {};
  let loading = false;
  const compared: Policy[] = [];
  const backend = {
    name: "nft",
    apply: async (policy: Policy) => {
      loading = true;
      await new Promise<void>((resolve) => (finishLoad = resolve));
      kernel = policy;
      return { renderMs: 0, loadMs: 0 };
    },
    missing: async (policy: Policy) => (compared.push(policy), policy === kernel ? [] : ["rules of chain output"]),
    rules: async () => new Map([["output", "accept"]]),
  } as unknown as Backend;
  const guarded = guardBackend(backend, old);
  const load = guarded.backend.apply(next);
  const check = guarded.missing();
  while (!loading) await Promise.resolve();
  expect(compared).toEqual([]); // not during the load
  finishLoad();
  await load;
  expect(await check).toEqual([]);
  expect(compared).toEqual([next]);
});

test("announcements while a retry is pending do not hurry it; a stream of announcements never postpones a check", async () => {
  let checks = 0;
  const h = harness({
    missing: async () => (checks++, ["table inet domainwall"]),
    restore: async () => {
      throw new Error("busy");
    },
  });
  h.announce(["delete table"]);
  await h.advance(10);
  expect(checks).toBe(1); // failed: next try in 1 s
  for (let t = 0; t < 900; t += 100) {
    h.announce(["delete table"]);
    await h.advance(100);
  }
  expect(checks).toBe(1);
  await h.advance(200);
  expect(checks).toBe(2);

  let steady = 0;
  const s = harness({ missing: async () => (steady++, []), restore: async () => {} });
  for (let t = 0; t < 100; t += 5) {
    s.announce(["new rule in chain output"]);
    await s.advance(5);
  }
  expect(steady).toBeGreaterThanOrEqual(5); // every 10 ms at least, though announcements came every 5 ms
});

test("something that keeps removing the rules: every restore counted, 5 logged per minute, then one line counting the rest", async () => {
  let present = true;
  const h = harness({ missing: async () => (present ? [] : ["table inet domainwall"]), restore: async () => void (present = true) });
  for (let i = 0; i < 20; i++) {
    present = false;
    h.announce(["delete table"]);
    await h.advance(1000);
  }
  expect(h.guard.stats().restored).toBe(20);
  const changed = () =>
    h
      .log()
      .split("\n")
      .filter((l) => l.includes("changed from outside")).length;
  expect(changed()).toBe(5);
  await h.advance(60_000);
  present = false;
  h.announce(["delete table"]);
  await h.advance(1000);
  expect(h.log()).toContain("15 more restores of domainwall's rules in the last 60s were not logged one by one");
  expect(changed()).toBe(6);
});

test("metrics: the restores and failures are counted", async () => {
  const { renderMetrics } = await import("../../src/watch/metrics.ts");
  const process = { residentBytes: 1, cpuSeconds: 1, startTimeSeconds: 1 };
  const text = renderMetrics({ snapshot: undefined, status: { loaded: false }, process, now: 0, guard: { restored: 3, failed: 1 } });
  expect(text).toContain("domainwall_ruleset_restored_total 3\n");
  expect(text).toContain("domainwall_ruleset_restore_failures_total 1\n");
});

test("iptables-legacy: a moved entry count of either family's filter table is announced; steady counts are not", async () => {
  const { legacyTableChanges } = await import("../../src/backends/iptables/changes.ts");
  const entries = { 4: 10, 6: 20 };
  const timers: (() => void)[] = [];
  const told: string[][] = [];
  const source = legacyTableChanges(
    (family) => ({ validHooks: 0b1110, entries: entries[family] }),
    (_ms, fire) => (timers.push(fire), () => {}),
    (events) => told.push([...events]),
  );
  timers.shift()!();
  expect(told).toEqual([]);
  entries[6] = 12;
  timers.shift()!();
  expect(told).toEqual([["filter table entries 10/20 -> 10/12 (IPv4/IPv6)"]]);
  timers.shift()!();
  expect(told).toHaveLength(1);
  source.close();
  expect(() =>
    legacyTableChanges(
      () => undefined,
      () => () => {},
      () => {},
    ),
  ).toThrow("cannot be asked");
});

test("a rule replaced since our last load (same counts) is a change: the rules are compared with the reading right after the load", async () => {
  let held = new Map([["output", "drop-rule"]]);
  const backend = {
    name: "nft",
    apply: async () => ((held = new Map([["output", "drop-rule"]])), { renderMs: 0, loadMs: 0 }),
    missing: async () => [],
    rules: async () => held,
  } as unknown as Backend;
  const guarded = guardBackend(backend, {} as Policy);
  expect(await guarded.missing()).toEqual([]);
  held = new Map([["output", "accept-rule"]]);
  expect(await guarded.missing()).toEqual(["rules of chain output as loaded (one was replaced)"]);
  await guarded.restore();
  expect(await guarded.missing()).toEqual([]);
});
