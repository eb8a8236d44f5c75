import { describe, expect, test } from "bun:test";
import type { DeniedDestination } from "../../src/status.ts";
import { createDenialTracker, denialEntry, type DenialEvent } from "../../src/watch/denials.ts";
import { startDenialStream } from "../../src/watch/denial-stream.ts";

const dest = (address: string, packets: number, port = 443, direction: "out" | "in" = "out"): DeniedDestination => ({
  address,
  protocol: "tcp",
  port,
  direction,
  packets,
  bytes: packets * 60,
});

/** A tracker on a clock the test moves; `at(ms, denied)` observes at that time. */
function tracker(options: Parameters<typeof createDenialTracker>[1] = {}) {
  let clock = 0;
  const t = createDenialTracker(() => clock, options);
  return {
    at: (ms: number, denied: DeniedDestination[]) => ((clock = ms), t.observe(denied)),
    flush: () => t.flush(),
  };
}

const brief = (events: DenialEvent[]) =>
  events.map((e) =>
    e.kind === "held-back"
      ? `held-back ${e.lines}`
      : e.kind === "record-full"
        ? "record-full"
        : `${e.kind} ${e.address}:${e.port} +${e.packets}=${e.totalPackets}`,
  );

describe("denial tracker", () => {
  test("a new destination is one line; a known one that keeps being hit, one summary a minute with the packets since the last line", () => {
    const t = tracker();
    expect(brief(t.at(0, [dest("203.0.113.20", 3)]))).toEqual(["denied 203.0.113.20:443 +3=3"]);
    expect(brief(t.at(1000, [dest("203.0.113.20", 1003)]))).toEqual([]);
    expect(brief(t.at(59_000, [dest("203.0.113.20", 60_000)]))).toEqual([]);
    expect(brief(t.at(60_000, [dest("203.0.113.20", 61_000)]))).toEqual(["still-denied 203.0.113.20:443 +60997=61000"]);
    expect(brief(t.at(61_000, [dest("203.0.113.20", 61_000)]))).toEqual([]);
    // Not hit since its last line: nothing, however long.
    expect(brief(t.at(500_000, [dest("203.0.113.20", 61_000)]))).toEqual([]);
    expect(brief(t.flush())).toEqual([]);
  });

  test("stopping reports what was hit since the last line: a flood is two lines", () => {
    const t = tracker();
    const events = [];
    for (let s = 0; s <= 10; s++) events.push(...t.at(s * 1000, [dest("203.0.113.20", 1 + s * 1000)]));
    events.push(...t.flush());
    expect(brief(events)).toEqual(["denied 203.0.113.20:443 +1=1", "still-denied 203.0.113.20:443 +10000=10001"]);
  });

  test("a counter that went back is the element made again after it timed out: a new line", () => {
    const t = tracker();
    t.at(0, [dest("203.0.113.20", 50)]);
    expect(brief(t.at(1000, [dest("203.0.113.20", 2)]))).toEqual(["denied 203.0.113.20:443 +2=2"]);
    // Gone from the set, then back: new again.
    t.at(2000, []);
    expect(brief(t.at(3000, [dest("203.0.113.20", 9)]))).toEqual(["denied 203.0.113.20:443 +9=9"]);
  });

  test("direction, address, protocol and port each make a destination", () => {
    const t = tracker();
    const rows = [dest("203.0.113.20", 1), dest("203.0.113.20", 1, 80), dest("203.0.113.20", 1, 443, "in"), dest("203.0.113.21", 1)];
    expect(t.at(0, rows)).toHaveLength(4);
  });

  test("all lines together are capped per window; what was held back is counted and reported when the window ends", () => {
    const t = tracker({ limits: { repeatMs: 60_000, linesPerWindow: 3, windowMs: 60_000 } });
    const many = Array.from({ length: 10 }, (_, i) => dest(`203.0.113.${i + 1}`, 1));
    expect(brief(t.at(0, many))).toEqual(["denied 203.0.113.1:443 +1=1", "denied 203.0.113.2:443 +1=1", "denied 203.0.113.3:443 +1=1"]);
    expect(brief(t.at(30_000, many))).toEqual([]);
    const next = brief(
      t.at(
        60_000,
        many.map((d) => ({ ...d, packets: 2 })),
      ),
    );
    expect(next[0]).toBe("held-back 7");
    expect(next).toHaveLength(4);
  });

  test("baseline: the first read records what is there without lines", () => {
    const t = tracker({ baseline: true });
    expect(t.at(0, [dest("203.0.113.20", 5)])).toEqual([]);
    expect(brief(t.at(1000, [dest("203.0.113.20", 6), dest("198.51.100.7", 1, 53)]))).toEqual(["denied 198.51.100.7:53 +1=1"]);
  });
});

describe("denial entries", () => {
  const event = {
    kind: "denied",
    direction: "out",
    address: "203.0.113.20",
    protocol: "tcp",
    port: 80,
    packets: 1,
    totalPackets: 1,
  } as const;
  const rows: { name: string; event: DenialEvent; names: string[]; audit: boolean; message: string }[] = [
    {
      name: "new, named",
      event,
      names: ["api.example"],
      audit: false,
      message: "denied: outbound to 203.0.113.20 tcp/80 (api.example), 1 packet",
    },
    {
      name: "audit, inbound, ICMP",
      event: { ...event, direction: "in", protocol: "icmp", port: 0, packets: 2 },
      names: [],
      audit: true,
      message: "would be denied (audit mode): inbound from 203.0.113.20 icmp, 2 packets",
    },
    {
      name: "summary",
      event: { ...event, kind: "still-denied", packets: 9999, totalPackets: 10000 },
      names: [],
      audit: false,
      message: "still denied: outbound to 203.0.113.20 tcp/80, 9999 more packets since the last line (10000 in all)",
    },
    {
      name: "held back",
      event: { kind: "held-back", lines: 1 },
      names: [],
      audit: false,
      message: "1 denial line held back (at most 30 a minute); 'domainwall status' lists every denied destination",
    },
  ];
  for (const row of rows) test(row.name, () => expect(denialEntry(row.event, row.names, row.audit).message).toBe(row.message));

  test("the facts are fields, for JSON logs", () => {
    expect(denialEntry(event, ["api.example"], false)).toEqual({
      message: "denied: outbound to 203.0.113.20 tcp/80 (api.example), 1 packet",
      event: "denied",
      direction: "out",
      address: "203.0.113.20",
      protocol: "tcp",
      port: 80,
      packets: 1,
      totalPackets: 1,
      names: ["api.example"],
    });
  });
});

describe("denial stream", () => {
  test("reads on a timer, emits events, tells a failing read once, and flushes on stop", async () => {
    const timers: (() => void)[] = [];
    const reads = [
      { denied: [dest("203.0.113.20", 1)], audit: false },
      new Error("nft list set denied_out_v4 failed: Operation not permitted"),
      new Error("again"),
      { denied: [dest("203.0.113.20", 40)], audit: false },
      { denied: [dest("203.0.113.20", 41)], audit: false },
    ];
    const emitted: string[] = [];
    const failures: string[] = [];
    const stream = startDenialStream({
      read: async () => {
        const next = reads.shift();
        if (next instanceof Error) throw next;
        return next;
      },
      emit: (e) => void emitted.push(...brief([e])),
      failed: (m) => void failures.push(m),
      now: () => 0,
      setTimer: (_ms, fire) => (timers.push(fire), () => {}),
    });
    for (let i = 0; i < 3; i++) {
      await Bun.sleep(1);
      timers.shift()?.();
    }
    await Bun.sleep(1);
    await stream.stop();
    expect(emitted).toEqual(["denied 203.0.113.20:443 +1=1", "still-denied 203.0.113.20:443 +40=41"]);
    expect(failures).toEqual(["nft list set denied_out_v4 failed: Operation not permitted"]);
  });

  test("a slow read (a full set) spaces the next: at least 200 times as long as it took, never under a second", async () => {
    let clock = 0;
    const waits: number[] = [];
    const timers: (() => void)[] = [];
    const stream = startDenialStream({
      read: async () => ((clock += waits.length === 0 ? 2 : 60), { denied: [], audit: false }),
      emit: () => {},
      failed: () => {},
      now: () => clock,
      setTimer: (ms, fire) => (waits.push(ms), timers.push(fire), () => {}),
    });
    await Bun.sleep(1);
    timers.shift()?.();
    await Bun.sleep(1);
    await stream.stop();
    expect(waits).toEqual([1000, 12_000]);
  });
});
