import { describe, expect, test } from "bun:test";
import { initialState, recordResolutions } from "../../src/watch/refresh.ts";
import type { HostResolution } from "../../src/dns/resolve.ts";
import type { WatchSnapshot } from "../../src/watch/watcher.ts";
import {
  ADMITTED_SHOWN,
  describeWatchState,
  parseWatchState,
  STATE_REFRESH_MS,
  stateWriteDue,
  watchStateOf,
  type WatchState,
} from "../../src/watch/state.ts";
import type { ProxyReport } from "../../src/watch/dns-proxy.ts";
import { createStats } from "../../src/proxy/stats.ts";

const schedule = { minTtlMs: 5_000, maxTtlMs: 3_600_000, graceMs: 300_000 };
const never = () => 0;
const EPOCH = Date.UTC(2026, 10, 25, 12, 0, 0);
const resolved = (host: string, ...addresses: string[]): HostResolution => ({
  host,
  status: "resolved",
  addresses: addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4, ttl: 30 })),
});

/** A watch that resolved api.example at 1 s, and whose lookups of down.example failed at 2 s and 7 s (monotonic ms). */
function snapshot(hostPorts: WatchSnapshot["hostPorts"] = new Map()): WatchSnapshot {
  let state = initialState(["api.example", "down.example", "later.example"], 0);
  state = recordResolutions(
    state,
    [resolved("api.example", "203.0.113.10", "2001:db8:ff::10"), resolved("down.example", "203.0.113.20")],
    1_000,
    schedule,
    never,
  );
  const failed: HostResolution = { host: "down.example", status: "failed", error: "SERVFAIL", addresses: [] };
  state = recordResolutions(state, [failed], 2_000, schedule, never);
  state = recordResolutions(state, [failed], 7_000, schedule, never);
  const empty = { allowV4: [], allowV6: [] } as unknown as WatchSnapshot["loaded"];
  return {
    state,
    hostPorts,
    loaded: empty,
    lastGoodRefresh: 1_000,
    nextWake: 12_000,
    updates: { ok: 0, failed: 0, seconds: 0, refilled: 0 },
    updateError: undefined,
  };
}

describe("the watch state file", () => {
  test("carries each name's addresses, and monotonic times turned into wall-clock times", () => {
    const state = watchStateOf(snapshot(), { monotonicMs: 10_000, epochMs: EPOCH }, 4242, "nft");
    expect(state).toEqual({
      version: 1,
      pid: 4242,
      backend: "nft",
      writtenAt: EPOCH,
      names: [
        { name: "api.example", addresses: ["203.0.113.10", "2001:db8:ff::10"], lastResolved: EPOCH - 9_000, failing: 0, lastError: null },
        { name: "down.example", addresses: ["203.0.113.20"], lastResolved: EPOCH - 9_000, failing: 2, lastError: "SERVFAIL" },
        { name: "later.example", addresses: [], lastResolved: null, failing: 0, lastError: null },
      ],
    });
  });

  test("round-trips through JSON; anything else is ignored rather than trusted", () => {
    const state = watchStateOf(snapshot(), { monotonicMs: 10_000, epochMs: EPOCH }, 4242, "nft");
    expect(parseWatchState(JSON.stringify(state))).toEqual(state);
    expect(parseWatchState("not json")).toBeUndefined();
    expect(parseWatchState(JSON.stringify({ ...state, version: 2 }))).toBeUndefined();
    expect(parseWatchState(JSON.stringify({ ...state, pid: -1 }))).toBeUndefined();
    expect(parseWatchState(JSON.stringify({ ...state, extra: true }))).toBeUndefined();
    expect(parseWatchState(JSON.stringify({ ...state, names: [{ name: "x" }] }))).toBeUndefined();
  });

  test("status lines: addresses, when resolved, and failing lookups", () => {
    const state = watchStateOf(snapshot(), { monotonicMs: 10_000, epochMs: EPOCH }, 4242, "nft");
    expect(describeWatchState(state, EPOCH + 2_000)).toEqual([
      "watch (pid 4242), as of 2s ago:",
      "  api.example: 203.0.113.10, 2001:db8:ff::10; resolved 11s ago at 2026-11-25T11:59:51Z",
      "  down.example: 203.0.113.20; resolved 11s ago at 2026-11-25T11:59:51Z; last 2 lookups failed: SERVFAIL",
      "  later.example: no addresses; never resolved",
    ]);
    expect(describeWatchState({ ...state, writtenAt: EPOCH - 7_200_000 }, EPOCH)[0]).toBe("watch (pid 4242), as of 2h ago:");
  });

  test("a name listed with ports carries them to the file and the status line; the others open every port", () => {
    const hostPorts = new Map([
      [
        "api.example",
        [
          { protocol: "tcp" as const, first: 443, last: 443 },
          { protocol: "udp" as const, first: 8000, last: 8100 },
        ],
      ],
    ]);
    const state = watchStateOf(snapshot(hostPorts), { monotonicMs: 10_000, epochMs: EPOCH }, 4242, "nft");
    expect(state.names[0]).toMatchObject({ name: "api.example", ports: ["443/tcp", "8000-8100/udp"] });
    expect(state.names[1]).not.toHaveProperty("ports");
    expect(parseWatchState(JSON.stringify(state))).toEqual(state);
    expect(describeWatchState(state, EPOCH + 2_000)[1]).toBe(
      "  api.example (443/tcp, 8000-8100/udp): 203.0.113.10, 2001:db8:ff::10; resolved 11s ago at 2026-11-25T11:59:51Z",
    );
  });

  test("rewritten at once when a name's addresses, failures or the list change; otherwise at most every STATE_REFRESH_MS", () => {
    const written = snapshot().state;
    const at = 10_000;
    const due = (state: typeof written, now = at + 1_000) => stateWriteDue({ at, state: written }, state, now);
    expect(stateWriteDue(undefined, written, at)).toBe(true);
    expect(due(written)).toBe(false);
    expect(due(written, at + STATE_REFRESH_MS)).toBe(true);
    // Looked up again, same answers: only the times moved.
    expect(due(recordResolutions(written, [resolved("api.example", "2001:db8:ff::10", "203.0.113.10")], 11_000, schedule, never))).toBe(
      false,
    );
    expect(due(recordResolutions(written, [resolved("api.example", "203.0.113.11", "2001:db8:ff::10")], 11_000, schedule, never))).toBe(
      true,
    );
    expect(
      due(
        recordResolutions(written, [{ host: "api.example", status: "failed", error: "SERVFAIL", addresses: [] }], 11_000, schedule, never),
      ),
    ).toBe(true);
    expect(due(recordResolutions(written, [resolved("down.example", "203.0.113.20")], 11_000, schedule, never))).toBe(true); // its failures end
    expect(due(new Map([...written].slice(1)))).toBe(true);
    expect(due(new Map([...written, ["new.example", written.get("later.example")!]]))).toBe(true);
  });

  test("control characters from the file do not reach the terminal", () => {
    const state: WatchState = {
      version: 1,
      pid: 1,
      backend: "nft",
      writtenAt: EPOCH,
      names: [{ name: "a\u001b[2Jb", addresses: [], lastResolved: null, failing: 1, lastError: "x\ny" }],
    };
    expect(describeWatchState(state, EPOCH)[1]).toBe("  a?[2Jb: no addresses; never resolved; last lookup failed: x?y");
  });

  describe("with the DNS proxy", () => {
    const element = (address: string, names: string[], entries: string[]) => ({
      address,
      family: 4 as const,
      set: "proxy_v4",
      expiresAt: 60_000,
      timeoutSeconds: 60,
      names,
      entries,
    });
    const report = (admitted: ProxyReport["admitted"]): ProxyReport => ({
      port: 15353,
      gid: 2000053,
      stats: createStats(10).snapshot(),
      elements: { v4: admitted.length, v6: 0 },
      admitted,
      list: { names: ["cdn.example"], wildcards: ["*.img.example"] },
      portedEntries: new Map([["*.img.example", { v4: "proxy_v4_tcp443", v6: "proxy_v6_tcp443" }]]),
      admittedTotal: admitted.length,
      expiredTotal: 0,
      refusedAddresses: 0,
    });
    const stateOf = (admitted: ProxyReport["admitted"]) =>
      watchStateOf(snapshot(), { monotonicMs: 10_000, epochMs: EPOCH }, 4242, "nft", report(admitted));

    test("carries the list and each admitted address with the names and entries that admitted it; round-trips", () => {
      const state = stateOf([
        element("203.0.113.57", ["cdn.example"], ["cdn.example"]),
        element("203.0.113.58", ["a.img.example", "b.img.example"], ["*.img.example"]),
      ]);
      expect(state.proxy?.list).toEqual({
        names: ["cdn.example"],
        wildcards: ["*.img.example"],
        ported: { "*.img.example": { v4: "proxy_v4_tcp443", v6: "proxy_v6_tcp443" } },
      });
      expect(state.proxy?.addresses).toEqual([
        { address: "203.0.113.57", set: "proxy_v4", names: ["cdn.example"], entries: ["cdn.example"] },
        { address: "203.0.113.58", set: "proxy_v4", names: ["a.img.example", "b.img.example"], entries: ["*.img.example"] },
      ]);
      expect(parseWatchState(JSON.stringify(state))).toEqual(state);
    });

    test("bounded: at most ADMITTED_SHOWN addresses and 8 names each; a file with more is ignored", () => {
      const many = Array.from({ length: ADMITTED_SHOWN + 5 }, (_, i) =>
        element(`198.51.${100 + Math.floor(i / 256)}.${i % 256}`, ["cdn.example"], ["cdn.example"]),
      );
      const state = stateOf(many);
      expect(state.proxy?.addresses?.length).toBe(ADMITTED_SHOWN);
      expect(parseWatchState(JSON.stringify(state))).toEqual(state);
      const nine = Array.from({ length: 9 }, (_, i) => `n${i}.img.example`);
      const tooMany = {
        ...state,
        proxy: { ...state.proxy, addresses: [{ address: "203.0.113.58", names: nine, entries: ["*.img.example"] }] },
      };
      expect(parseWatchState(JSON.stringify(tooMany))).toBeUndefined();
      const tooLong = {
        ...state,
        proxy: { ...state.proxy, addresses: [...(state.proxy?.addresses ?? []), { address: "203.0.113.9", names: [], entries: [] }] },
      };
      expect(parseWatchState(JSON.stringify(tooLong))).toBeUndefined();
    });
  });
});
