import { describe, expect, test } from "bun:test";
import type { Family } from "../../src/net/ip.ts";
import { resolveHosts, type Answer, type Lookup } from "../../src/dns/resolve.ts";
import { fakeClock } from "../support/fake-clock.ts";

const dnsError = (code: string) => Object.assign(new Error(`getaddrinfo ${code}`), { code });

type Script = Record<string, Partial<Record<Family, (Answer[] | string)[]>>>;

/** A fake resolver: per name and family, a queue of outcomes (answers, or an error code); the last repeats. */
function fakeLookup(script: Script) {
  const calls: string[] = [];
  const lookup: Lookup = async (host, family) => {
    calls.push(`${host}/${family}`);
    const queue = script[host]?.[family] ?? ["DNS_ENOTFOUND"];
    const next = queue.length > 1 ? queue.shift() : queue[0];
    if (typeof next === "string") throw dnsError(next);
    return next ?? [];
  };
  return { lookup, calls };
}

const a = (address: string, ttl = 30): Answer => ({ address, ttl });
const noSleep = async () => {};

describe("resolveHosts", () => {
  test("A and AAAA for every name, in input order", async () => {
    const { lookup } = fakeLookup({
      "api.example": { 4: [[a("203.0.113.10"), a("203.0.113.11")]], 6: [[a("2001:db8:ff::10")]] },
      "v4.example": { 4: [[a("203.0.113.20")]], 6: ["DNS_ENOTFOUND"] },
    });
    const results = await resolveHosts(["api.example", "v4.example"], { lookup, deadlineMs: 1000, sleep: noSleep });
    expect(results).toEqual([
      {
        host: "api.example",
        status: "resolved",
        addresses: [
          { address: "203.0.113.10", ttl: 30, family: 4 },
          { address: "203.0.113.11", ttl: 30, family: 4 },
          { address: "2001:db8:ff::10", ttl: 30, family: 6 },
        ],
      },
      { host: "v4.example", status: "resolved", addresses: [{ address: "203.0.113.20", ttl: 30, family: 4 }] },
    ]);
  });

  test.each(["DNS_ENOTFOUND", "DNS_ENODATA"])("a name answered with %s in both families is empty, not retried", async (code) => {
    const { lookup, calls } = fakeLookup({ "svc.cluster.local": { 4: [code], 6: [code] } });
    expect(await resolveHosts(["svc.cluster.local"], { lookup, deadlineMs: 1000, sleep: noSleep })).toEqual([
      { host: "svc.cluster.local", status: "empty" },
    ]);
    expect(calls).toHaveLength(2);
  });

  test.each(["DNS_ETIMEOUT", "DNS_ESERVFAIL", "DNS_EREFUSED", "DNS_EAI_AGAIN"])(
    "%s is retried with doubling backoff, then succeeds",
    async (code) => {
      const { lookup, calls } = fakeLookup({ "api.example": { 4: [code, code, [a("203.0.113.10")]], 6: [[]] } });
      const sleeps: number[] = [];
      const results = await resolveHosts(["api.example"], {
        lookup,
        deadlineMs: 10_000,
        backoffMs: 50,
        sleep: async (ms) => void sleeps.push(ms),
      });
      expect(results[0]?.status).toBe("resolved");
      expect(calls.filter((c) => c === "api.example/4")).toHaveLength(3);
      expect(sleeps).toEqual([50, 100]);
    },
  );

  test("a lookup that keeps failing fails after the configured attempts, keeping the other family's answers", async () => {
    const { lookup, calls } = fakeLookup({ "flaky.example": { 4: [[a("203.0.113.30")]], 6: ["DNS_ESERVFAIL"] } });
    const [result] = await resolveHosts(["flaky.example"], { lookup, deadlineMs: 10_000, attempts: 4, sleep: noSleep });
    expect(result).toEqual({
      host: "flaky.example",
      status: "failed",
      error: "getaddrinfo DNS_ESERVFAIL (after 4 attempts)",
      addresses: [{ address: "203.0.113.30", ttl: 30, family: 4 }],
      failedFamilies: [6],
    });
    expect(calls.filter((c) => c === "flaky.example/6")).toHaveLength(4);
  });

  test("a failure says which families failed; a family answering no data is not one of them", async () => {
    const { lookup } = fakeLookup({
      "v6down.example": { 4: ["DNS_ENODATA"], 6: ["DNS_ETIMEOUT"] },
      "down.example": { 4: ["DNS_ESERVFAIL"], 6: ["DNS_ETIMEOUT"] },
    });
    const results = await resolveHosts(["v6down.example", "down.example"], { lookup, deadlineMs: 10_000, sleep: noSleep });
    expect(results).toEqual([
      {
        host: "v6down.example",
        status: "failed",
        error: "getaddrinfo DNS_ETIMEOUT (after 3 attempts)",
        addresses: [],
        failedFamilies: [6],
      },
      {
        host: "down.example",
        status: "failed",
        error: "getaddrinfo DNS_ESERVFAIL (after 3 attempts)",
        addresses: [],
        failedFamilies: [4, 6],
      },
    ]);
  });

  test("an unexpected error is not retried", async () => {
    const { lookup, calls } = fakeLookup({ "x.example": { 4: ["DNS_EBADRESP"], 6: [[]] } });
    const [result] = await resolveHosts(["x.example"], { lookup, deadlineMs: 1000, sleep: noSleep });
    expect(result?.status).toBe("failed");
    expect(calls.filter((c) => c === "x.example/4")).toHaveLength(1);
  });

  test("a lookup that never answers hits its own deadline and is retried", async () => {
    const clock = fakeClock();
    const attemptsAt: number[] = [];
    const lookup: Lookup = (_host, family) => {
      if (family === 6) return Promise.resolve([]);
      attemptsAt.push(clock.now());
      return attemptsAt.length === 1 ? new Promise(() => {}) : Promise.resolve([a("203.0.113.40")]);
    };
    const [result] = await clock.run(
      resolveHosts(["slow.example"], { lookup, deadlineMs: 5000, attemptTimeoutMs: 20, backoffMs: 100, ...clock }),
    );
    expect(result?.status).toBe("resolved");
    // The first attempt's deadline fires at 20 ms of the injected clock; the retry follows the 100 ms backoff.
    expect(attemptsAt).toEqual([0, 120]);
    expect(clock.pending()).toBe(0);
  });

  test("the overall deadline fails names that are not done, without waiting for the resolver", async () => {
    const clock = fakeClock();
    const lookup: Lookup = () => new Promise(() => {});
    const [result] = await clock.run(resolveHosts(["hang.example"], { lookup, deadlineMs: 30, attemptTimeoutMs: 1000, ...clock }));
    expect(result?.status).toBe("failed");
    expect(result?.status === "failed" ? result.error : "").toContain("deadline of 30 ms passed");
    expect(result?.status === "failed" ? result.error : "").toContain("no answer within 30 ms");
    expect(clock.now()).toBe(30);
  });

  test("each attempt's deadline is cut to what is left of the overall one, on the injected timer", async () => {
    const clock = fakeClock();
    const budgets: number[] = [];
    const attemptsAt: string[] = [];
    const lookup: Lookup = (_host, family) => {
      attemptsAt.push(`${family}@${clock.now()}`);
      return new Promise(() => {});
    };
    const setTimer: typeof clock.setTimer = (ms, fire) => (budgets.push(ms), clock.setTimer(ms, fire));
    const [result] = await clock.run(
      resolveHosts(["hang.example"], {
        lookup,
        deadlineMs: 70,
        attemptTimeoutMs: 40,
        backoffMs: 10,
        attempts: 5,
        now: clock.now,
        sleep: clock.sleep,
        setTimer,
      }),
    );
    // 0: attempts of 40 ms -> 40, 10 ms backoff -> 50: 20 ms left, so attempts of 20 ms -> 70: nothing left.
    expect(attemptsAt).toEqual(["4@0", "6@0", "4@50", "6@50"]);
    expect(budgets).toEqual([40, 40, 20, 20]);
    expect(result?.status === "failed" ? result.error : "").toBe("resolution deadline of 70 ms passed (ETIMEOUT: no answer within 20 ms)");
    expect(result?.status === "failed" ? result.failedFamilies : []).toEqual([4, 6]);
    expect(clock.now()).toBe(70);
  });

  test("an answered attempt cancels its deadline timer", async () => {
    const clock = fakeClock();
    const { lookup } = fakeLookup({ "api.example": { 4: [[a("203.0.113.10")]], 6: ["DNS_ENOTFOUND"] } });
    const [result] = await clock.run(resolveHosts(["api.example"], { lookup, deadlineMs: 1000, ...clock }));
    expect(result?.status).toBe("resolved");
    expect(clock.pending()).toBe(0);
    expect(clock.now()).toBe(0);
  });

  test("concurrency is capped", async () => {
    let active = 0;
    let peak = 0;
    const lookup: Lookup = async () => {
      active++;
      peak = Math.max(peak, active);
      await Bun.sleep(1);
      active--;
      return [a("203.0.113.1")];
    };
    const hosts = Array.from({ length: 40 }, (_, i) => `h${i}.example`);
    const results = await resolveHosts(hosts, { lookup, deadlineMs: 10_000, concurrency: 5 });
    expect(results.every((r) => r.status === "resolved")).toBe(true);
    expect(peak).toBe(5);
  });
});

describe("resolveHosts: the name asked is the name configured", () => {
  test("an absolute name keeps its trailing dot, so the resolver skips the search list; a relative one is asked as it is", async () => {
    const asked: string[] = [];
    const lookup: Lookup = async (host, family) => {
      asked.push(`${host} ${family}`);
      return host === "allowed.example." ? [{ address: family === 4 ? "203.0.113.1" : "2001:db8::1", ttl: 30 }] : [];
    };
    const results = await resolveHosts(["allowed.example.", "allowed.example"], { lookup, deadlineMs: 1000 });
    expect(asked.sort()).toEqual(["allowed.example 4", "allowed.example 6", "allowed.example. 4", "allowed.example. 6"]);
    expect(results.map((r) => `${r.host} ${r.status}`)).toEqual(["allowed.example. resolved", "allowed.example empty"]);
  });
});
