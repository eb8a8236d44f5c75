import { describe, expect, test } from "bun:test";
import {
  dueHosts,
  expire,
  initialState,
  lastAnswerOf,
  nextEvent,
  recordResolutions,
  refreshDelay,
  type RefreshState,
  retryDelay,
  sameAddresses,
  addressesByName,
} from "../../src/watch/refresh.ts";
import type { Family } from "../../src/net/ip.ts";
import type { HostResolution } from "../../src/dns/resolve.ts";

const schedule = { minTtlMs: 5_000, maxTtlMs: 3_600_000, graceMs: 300_000 };
const never = () => 0;
/** The largest value Math.random() can return. */
const almostOne = () => 1 - Number.EPSILON;

const resolved = (host: string, ttl: number, ...addresses: string[]): HostResolution => ({
  host,
  status: "resolved",
  addresses: addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4, ttl })),
});
const failed = (host: string, error = "DNS_ETIMEOUT", ...addresses: string[]): HostResolution => ({
  host,
  status: "failed",
  error,
  addresses: addresses.map((address) => ({ address, family: 4, ttl: 30 })),
});
/** One family's lookup failed; the other answered with `addresses` (none: it answered "no data"). */
const failedIn = (host: string, family: Family, ...addresses: string[]): HostResolution => ({
  host,
  status: "failed",
  error: "DNS_ETIMEOUT",
  failedFamilies: [family],
  addresses: addresses.map((address) => ({ address, family: family === 6 ? 4 : 6, ttl: 30 })),
});
const addressesOf = (state: RefreshState, host: string) => [...(state.get(host)?.addresses.keys() ?? [])].sort();

describe("refreshDelay", () => {
  test.each([
    { name: "a TTL between the bounds is kept", ttl: 30, ms: 30_000 },
    { name: "a short TTL is raised to --min-ttl", ttl: 2, ms: 5_000 },
    { name: "TTL 0 (/etc/hosts, or the last second of a cached answer) is raised to --min-ttl", ttl: 0, ms: 5_000 },
    { name: "a long TTL is cut to --max-ttl", ttl: 86_400, ms: 3_600_000 },
  ])("$name", ({ ttl, ms }) => {
    expect(refreshDelay(ttl, schedule, never)).toBe(ms);
  });

  test.each([
    { ttl: 2, base: 5_000, maxJitter: 500 },
    { ttl: 30, base: 30_000, maxJitter: 1_000 },
    { ttl: 86_400, base: 3_600_000, maxJitter: 1_000 },
  ])("jitter only lengthens the wait, by at most a tenth and at most 1 s (TTL $ttl)", ({ ttl, base, maxJitter }) => {
    for (const random of [never, () => 0.5, almostOne, Math.random]) {
      const delay = refreshDelay(ttl, schedule, random);
      expect(delay).toBeGreaterThanOrEqual(base);
      expect(delay).toBeLessThanOrEqual(base + maxJitter);
    }
    expect(refreshDelay(ttl, schedule, () => 0.5)).toBe(base + maxJitter / 2);
  });
});

describe("retryDelay", () => {
  test.each([
    { name: "doubles from --min-ttl up to a minute", min: 5_000, max: 3_600_000, delays: [5_000, 10_000, 20_000, 40_000, 60_000, 60_000] },
    { name: "never past --max-ttl", min: 1_000, max: 3_000, delays: [1_000, 2_000, 3_000, 3_000] },
    { name: "never below --min-ttl", min: 120_000, max: 3_600_000, delays: [120_000, 120_000] },
  ])("$name", ({ min, max, delays }) => {
    expect(delays.map((_, i) => retryDelay(i + 1, { minTtlMs: min, maxTtlMs: max }, never))).toEqual([...delays]);
  });
});

describe("the allowlist over time", () => {
  const start = initialState(["api.example", "cdn.example"], 0);

  test("every name is due at first; answers schedule the next lookup by TTL", () => {
    expect(dueHosts(start, 0)).toEqual(["api.example", "cdn.example"]);
    const state = recordResolutions(
      start,
      [resolved("api.example", 30, "203.0.113.10"), resolved("cdn.example", 60, "203.0.113.20", "2001:db8::20")],
      0,
      schedule,
      never,
    );
    expect(dueHosts(state, 29_999)).toEqual([]);
    expect(dueHosts(state, 30_000)).toEqual(["api.example"]);
    expect(nextEvent(state, schedule.graceMs)).toBe(30_000);
  });

  test("the shortest TTL of a name's answers wins", () => {
    const state = recordResolutions(
      start,
      [
        {
          host: "api.example",
          status: "resolved",
          addresses: [
            { address: "203.0.113.10", family: 4, ttl: 300 },
            { address: "2001:db8::10", family: 6, ttl: 20 },
          ],
        },
      ],
      0,
      schedule,
      never,
    );
    expect(state.get("api.example")?.nextRefresh).toBe(20_000);
  });

  test("an address that stops appearing stays for the grace period, then goes", () => {
    let state = recordResolutions(initialState(["api.example"], 0), [resolved("api.example", 30, "203.0.113.10")], 0, schedule, never);
    state = recordResolutions(state, [resolved("api.example", 30, "203.0.113.11")], 30_000, schedule, never);
    expect(addressesOf(state, "api.example")).toEqual(["203.0.113.10", "203.0.113.11"]);
    expect(expire(state, 299_999, schedule.graceMs).expired).toEqual([]);
    expect(nextEvent(state, schedule.graceMs)).toBe(60_000);
    state = recordResolutions(state, [resolved("api.example", 30, "203.0.113.11")], 60_000, schedule, never);
    expect(
      nextEvent(recordResolutions(state, [resolved("api.example", 3600, "203.0.113.11")], 90_000, schedule, never), schedule.graceMs),
    ).toBe(300_000);
    const after = expire(state, 300_000, schedule.graceMs);
    expect(after.expired).toEqual([{ host: "api.example", address: "203.0.113.10", lastSeen: 0 }]);
    expect(addressesOf(after.state, "api.example")).toEqual(["203.0.113.11"]);
  });

  test("an answer's addresses stay until an answer leaves them out, even when its TTL is longer than the grace", () => {
    let state = recordResolutions(initialState(["api.example"], 0), [resolved("api.example", 3600, "203.0.113.10")], 0, schedule, never);
    expect(expire(state, 3_000_000, schedule.graceMs).expired).toEqual([]);
    expect(nextEvent(state, schedule.graceMs)).toBe(3_600_000);
    state = recordResolutions(state, [resolved("api.example", 3600, "203.0.113.11")], 3_600_000, schedule, never);
    expect(expire(state, 3_600_000, schedule.graceMs).expired.map((e) => e.address)).toEqual(["203.0.113.10"]);
  });

  test("while a name fails, all its addresses stay, however old; lookups back off", () => {
    let state = recordResolutions(start, [resolved("api.example", 30, "203.0.113.10")], 0, schedule, never);
    for (const [i, now] of [30_000, 35_000, 45_000, 65_000, 400_000].entries()) {
      state = recordResolutions(state, [failed("api.example")], now, schedule, never);
      expect(state.get("api.example")?.failures).toBe(i + 1);
      state = expire(state, now, schedule.graceMs).state;
      expect(addressesOf(state, "api.example")).toEqual(["203.0.113.10"]);
    }
    expect(state.get("api.example")).toMatchObject({ failuresTotal: 5, lastError: "DNS_ETIMEOUT", nextRefresh: 460_000 });
    expect(lastAnswerOf(state.get("api.example")!)).toBe(0);
    // Answering again ends the failure; what it no longer returns has long passed its grace.
    state = recordResolutions(state, [resolved("api.example", 30, "203.0.113.11")], 460_000, schedule, never);
    expect(state.get("api.example")).toMatchObject({ failures: 0, failuresTotal: 5, lastError: undefined });
    expect(lastAnswerOf(state.get("api.example")!)).toBe(460_000);
    expect(expire(state, 460_000, schedule.graceMs).expired.map((e) => e.address)).toEqual(["203.0.113.10"]);
  });

  test("a failure keeps what the other family did return", () => {
    const state = recordResolutions(start, [failed("api.example", "DNS_ESERVFAIL", "203.0.113.10")], 0, schedule, never);
    expect(addressesOf(state, "api.example")).toEqual(["203.0.113.10"]);
    expect(state.get("api.example")?.nextRefresh).toBe(5_000);
  });

  test("while only AAAA fails, IPv4 addresses the A answers left out expire after the grace; the IPv6 ones stay", () => {
    const grace = 60_000;
    let state = recordResolutions(
      initialState(["api.example"], 0),
      [resolved("api.example", 30, "203.0.113.10", "2001:db8::10")],
      0,
      schedule,
      never,
    );
    for (const now of [30_000, 35_000, 45_000])
      state = recordResolutions(state, [failedIn("api.example", 6, "203.0.113.11")], now, schedule, never);
    expect(state.get("api.example")).toMatchObject({ failures: 3, failuresTotal: 3, nextRefresh: 65_000, lastError: "DNS_ETIMEOUT" });
    expect(lastAnswerOf(state.get("api.example")!)).toBe(45_000);
    expect(state.get("api.example")?.families).toEqual({ 4: { lastAnswer: 45_000, failing: false }, 6: { lastAnswer: 0, failing: true } });
    // The next event is the end of 203.0.113.10's grace (from when A last returned it), not the retry.
    expect(nextEvent(state, grace)).toBe(60_000);
    expect(expire(state, 59_999, grace).expired).toEqual([]);
    const after = expire(state, 60_000, grace);
    expect(after.expired).toEqual([{ host: "api.example", address: "203.0.113.10", lastSeen: 0 }]);
    expect(addressesOf(after.state, "api.example")).toEqual(["2001:db8::10", "203.0.113.11"]);
    // The IPv6 address, unseen since 0, stays while AAAA fails, however long; nothing else is scheduled.
    expect(nextEvent(after.state, grace)).toBe(65_000);
    expect(expire(after.state, 36_000_000, grace).expired).toEqual([]);
  });

  test("a CDN rotating its A records every 10 minutes while AAAA keeps failing: 8 hours keep only the current IPv4 address", () => {
    const grace = 60_000;
    const v4 = (now: number) => `203.0.113.${Math.floor(now / 600_000)}`;
    let state = recordResolutions(
      initialState(["cdn.example"], 0),
      [resolved("cdn.example", 30, v4(0), "2001:db8::20")],
      0,
      { ...schedule, graceMs: grace },
      never,
    );
    const expired: string[] = [];
    const lag: number[] = [];
    let now = 0;
    // Eight hours, and long enough after for the last rotation's grace to end.
    while (now < 8 * 3_600_000 + 120_000) {
      now = nextEvent(state, grace);
      if (dueHosts(state, now).length > 0)
        state = recordResolutions(state, [failedIn("cdn.example", 6, v4(now))], now, { ...schedule, graceMs: grace }, never);
      const after = expire(state, now, grace);
      state = after.state;
      expired.push(...after.expired.map((e) => e.address));
      const held = addressesOf(state, "cdn.example").filter((a) => !a.includes(":"));
      // Never more than the current address and the one in its grace period.
      expect(held.length).toBeLessThanOrEqual(2);
      if (held.includes(v4(now)) && lag.length < Math.floor(now / 600_000)) lag.push(now % 600_000);
    }
    expect(expired).toEqual(Array.from({ length: 48 }, (_, i) => `203.0.113.${i}`));
    // Each rotated-in address is picked up within the A records' TTL (30 s), not the failure backoff (60 s).
    expect(Math.max(...lag)).toBeLessThanOrEqual(30_000);
    expect(addressesOf(expire(state, now + grace, grace).state, "cdn.example")).toEqual(["2001:db8::20", v4(now)]);
    expect(state.get("cdn.example")?.failuresTotal).toBeGreaterThan(400);
  });

  test("a family that answers no data lets its addresses go after the grace; the failing family's stay", () => {
    let state = recordResolutions(
      initialState(["api.example"], 0),
      [resolved("api.example", 30, "203.0.113.10", "2001:db8::10")],
      0,
      schedule,
      never,
    );
    state = recordResolutions(state, [failedIn("api.example", 6)], 30_000, schedule, never);
    expect(nextEvent(state, schedule.graceMs)).toBe(35_000);
    expect(expire(state, 299_999, schedule.graceMs).expired).toEqual([]);
    expect(expire(state, 300_000, schedule.graceMs).expired.map((e) => e.address)).toEqual(["203.0.113.10"]);
    expect(addressesOf(expire(state, 300_000, schedule.graceMs).state, "api.example")).toEqual(["2001:db8::10"]);
  });

  test("a failing family keeps even the addresses its last answer had already left out; both failing keeps everything", () => {
    let state = recordResolutions(
      initialState(["api.example"], 0),
      [resolved("api.example", 30, "203.0.113.10", "2001:db8::10")],
      0,
      schedule,
      never,
    );
    state = recordResolutions(state, [resolved("api.example", 30, "203.0.113.11", "2001:db8::11")], 30_000, schedule, never);
    expect(nextEvent(state, schedule.graceMs)).toBe(60_000);
    // A answers, AAAA fails: 2001:db8::10 is held while AAAA fails; 203.0.113.10 keeps fading.
    state = recordResolutions(state, [failedIn("api.example", 6, "203.0.113.11")], 60_000, schedule, never);
    const partial = expire(state, 400_000, schedule.graceMs);
    expect(partial.expired.map((e) => e.address)).toEqual(["203.0.113.10"]);
    expect(addressesOf(partial.state, "api.example")).toEqual(["2001:db8::10", "2001:db8::11", "203.0.113.11"]);
    // Both families fail (the resolver is down): nothing of the name fades, nothing's expiry is scheduled.
    state = recordResolutions(
      state,
      [{ host: "api.example", status: "failed", error: "DNS_ECONNREFUSED", addresses: [], failedFamilies: [4, 6] }],
      65_000,
      schedule,
      never,
    );
    expect(state.get("api.example")).toMatchObject({ failures: 2 });
    expect(lastAnswerOf(state.get("api.example")!)).toBe(60_000);
    expect(nextEvent(state, schedule.graceMs)).toBe(state.get("api.example")?.nextRefresh ?? NaN);
    expect(expire(state, 36_000_000, schedule.graceMs).expired).toEqual([]);
    // AAAA answers again: what it left out goes (its grace passed long ago), IPv4 still held while A fails.
    state = recordResolutions(state, [failedIn("api.example", 4, "2001:db8::11")], 36_000_000, schedule, never);
    expect(expire(state, 36_000_000, schedule.graceMs).expired.map((e) => e.address)).toEqual(["2001:db8::10"]);
  });

  test("a name that no longer exists loses its addresses after the grace period and is asked again after --min-ttl", () => {
    let state = recordResolutions(start, [resolved("api.example", 30, "203.0.113.10")], 0, schedule, never);
    state = recordResolutions(state, [{ host: "api.example", status: "empty" }], 30_000, schedule, never);
    expect(state.get("api.example")?.nextRefresh).toBe(35_000);
    expect(addressesOf(expire(state, 299_999, schedule.graceMs).state, "api.example")).toEqual(["203.0.113.10"]);
    expect(addressesOf(expire(state, 300_000, schedule.graceMs).state, "api.example")).toEqual([]);
  });

  test("addressesByName gives buildPolicy the names that have addresses, in configuration order", () => {
    const three = initialState(["api.example", "cdn.example", "new.example"], 0);
    const state = recordResolutions(
      three,
      [resolved("new.example", 60, "203.0.113.30"), resolved("cdn.example", 60, "2001:db8::20", "203.0.113.20"), failed("api.example")],
      0,
      schedule,
      never,
    );
    expect(addressesByName(state)).toEqual([
      {
        host: "cdn.example",
        addresses: [
          { address: "2001:db8::20", family: 6 },
          { address: "203.0.113.20", family: 4 },
        ],
      },
      { host: "new.example", addresses: [{ address: "203.0.113.30", family: 4 }] },
    ]);
  });

  test("sameAddresses compares the addresses, not when they were seen", () => {
    const one = recordResolutions(start, [resolved("api.example", 30, "203.0.113.10")], 0, schedule, never);
    const again = recordResolutions(one, [resolved("api.example", 30, "203.0.113.10")], 30_000, schedule, never);
    const more = recordResolutions(one, [resolved("api.example", 30, "203.0.113.11")], 30_000, schedule, never);
    expect(sameAddresses(one.get("api.example"), again.get("api.example"))).toBe(true);
    expect(sameAddresses(one.get("api.example"), more.get("api.example"))).toBe(false);
    expect(sameAddresses(start.get("api.example"), one.get("api.example"))).toBe(false);
    expect(sameAddresses(undefined, undefined)).toBe(true);
  });

  test("results for names not in the allowlist are ignored", () => {
    expect(recordResolutions(start, [resolved("other.example", 30, "203.0.113.99")], 0, schedule, never)).toEqual(start);
  });
});
