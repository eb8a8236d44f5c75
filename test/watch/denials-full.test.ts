import { describe, expect, test } from "bun:test";
import type { DeniedDestination } from "../../src/status.ts";
import type { Logger } from "../../src/log.ts";
import { startDenialStream, logDenial } from "../../src/watch/denial-stream.ts";
import { createDenialTracker, denialEntry, type DenialEvent } from "../../src/watch/denials.ts";

const FULL = [{ name: "denied_out_v4", elements: 4096, size: 4096, timeoutSeconds: 3600 }];
const MESSAGE =
  "the record of denied destinations is full (4096): later destinations are dropped but not recorded until entries expire (1h after their last packet); see output_dropped (full: denied_out_v4)";

const dest = (port: number): DeniedDestination => ({
  address: "198.51.100.7",
  protocol: "udp",
  port,
  direction: "out",
  packets: 1,
  bytes: 29,
});
const kinds = (events: DenialEvent[]) => events.map((e) => e.kind);

describe("denial tracker: a full record", () => {
  test("said at once, then at most once a minute while it stays full; nothing once it is not", () => {
    let clock = 0;
    const t = createDenialTracker(() => clock);
    const at = (ms: number, full: typeof FULL | []) => ((clock = ms), kinds(t.observe([], full)));
    expect(at(0, FULL)).toEqual(["record-full"]);
    expect(at(1_000, FULL)).toEqual([]);
    expect(at(59_999, FULL)).toEqual([]);
    expect(at(60_000, FULL)).toEqual(["record-full"]);
    expect(at(70_000, [])).toEqual([]);
    expect(at(200_000, [])).toEqual([]);
    expect(at(200_001, FULL)).toEqual(["record-full"]);
  });

  test("never held back by the cap on destination lines, and not quieted by status --follow's baseline", () => {
    let clock = 0;
    const t = createDenialTracker(() => clock, { baseline: true, limits: { repeatMs: 60_000, linesPerWindow: 2, windowMs: 60_000 } });
    const many = Array.from({ length: 4096 }, (_, i) => dest(i + 1));
    expect(kinds(t.observe(many, FULL))).toEqual(["record-full"]);
    clock = 60_000;
    const next = kinds(t.observe([...many.slice(1), dest(5000)], FULL));
    expect(next.filter((k) => k === "record-full")).toHaveLength(1);
  });

  test("the entry: the plain message, and the sets and size as fields", () => {
    const [event] = createDenialTracker(() => 0).observe([], FULL);
    expect(denialEntry(event!, [], false)).toEqual({
      message: MESSAGE,
      event: "denied-record-full",
      sets: ["denied_out_v4"],
      size: 4096,
    });
  });
});

test("the watch's stream logs it as a warning, once a minute at most, however often it reads", async () => {
  let clock = 0;
  const timers: (() => void)[] = [];
  const lines: { level: string; entry: Record<string, unknown> }[] = [];
  const log = {
    warn: (entry: Record<string, unknown>) => void lines.push({ level: "warn", entry }),
    info: (entry: Record<string, unknown>) => void lines.push({ level: "info", entry }),
  } as unknown as Logger;
  const stream = startDenialStream({
    read: async () => ({ denied: [], audit: false, full: FULL }),
    emit: logDenial(log, () => []),
    failed: () => {},
    now: () => clock,
    setTimer: (_ms, fire) => (timers.push(fire), () => {}),
  });
  for (let s = 1; s <= 61; s++) {
    await Bun.sleep(1);
    clock = s * 1000;
    timers.shift()?.();
  }
  await Bun.sleep(1);
  await stream.stop();
  const full = lines.filter((l) => l.entry.event === "denied-record-full");
  expect(full.map((l) => [l.level, l.entry.message])).toEqual([
    ["warn", MESSAGE],
    ["warn", MESSAGE],
  ]);
});
