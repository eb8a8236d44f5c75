/**
 * The live denial stream, pure: successive reads of the kernel's record of denied destinations
 * (the `denied_*` sets, with their packet counters) turned into events a person reads in the logs.
 * One event when a destination first appears; one summary, at most once a minute per destination,
 * while it keeps being hit; a cap on all lines together, with the count of those held back.
 */
import type { DeniedDestination } from "../status.ts";
import type { Direction } from "../policy/rules.ts";
import { deniedFullMessage, type DeniedSetFill } from "../policy/denied-full.ts";

/** A destination's event: `denied` when it first appears, `still-denied` when it keeps being hit. */
export interface DestinationEvent {
  readonly kind: "denied" | "still-denied";
  readonly direction: Direction;
  readonly address: string;
  readonly protocol: string;
  readonly port: number;
  /** Packets since the last line about it (all of them for `denied`). */
  readonly packets: number;
  /** Packets the kernel counted for it in all. */
  readonly totalPackets: number;
}

/** Lines not written because of the cap, since the last such report. */
export interface HeldBackEvent {
  readonly kind: "held-back";
  readonly lines: number;
}

/** The record has no room: later destinations go unrecorded (src/policy/denied-full.ts). */
export interface RecordFullEvent {
  readonly kind: "record-full";
  readonly sets: readonly DeniedSetFill[];
}

export type DenialEvent = DestinationEvent | HeldBackEvent | RecordFullEvent;

/** Whether the event is about one destination (the others have no address to name). */
export const isDestinationEvent = (event: DenialEvent): event is DestinationEvent =>
  event.kind === "denied" || event.kind === "still-denied";

export interface DenialLimits {
  /** A destination that keeps being hit gets a summary at most this often. */
  readonly repeatMs: number;
  /** At most this many destination lines per window, all destinations together... */
  readonly linesPerWindow: number;
  /** ...of this length; what is held back is reported once per window. */
  readonly windowMs: number;
}

export const DENIAL_LIMITS: DenialLimits = { repeatMs: 60_000, linesPerWindow: 30, windowMs: 60_000 };

interface Known {
  /** Packets at the last read. */
  packets: number;
  /** Packets at the last line about it. */
  logged: number;
  lastLineAt: number;
}

export interface DenialTracker {
  /** The events of one read of the kernel's record (everything it holds now, and the sets that are full). */
  observe(denied: readonly DeniedDestination[], full?: readonly DeniedSetFill[]): DenialEvent[];
  /** When the stream stops: a summary of each destination hit since its last line, and what was held back. */
  flush(): DenialEvent[];
}

const keyOf = (d: Pick<DeniedDestination, "direction" | "address" | "protocol" | "port">) =>
  `${d.direction} ${d.address} ${d.protocol} ${d.port}`;

/**
 * `baseline`: the first read only records what is there, without events (`status --follow` shows
 * what happens from now on; `status` shows the rest). Memory is bounded by the kernel's sets: a
 * destination that leaves them is forgotten.
 */
export function createDenialTracker(now: () => number, options: { baseline?: boolean; limits?: DenialLimits } = {}): DenialTracker {
  const limits = options.limits ?? DENIAL_LIMITS;
  const known = new Map<string, Known>();
  let quiet = options.baseline ?? false;
  let windowStart = Number.NEGATIVE_INFINITY;
  let lines = 0;
  let heldBack = 0;
  let fullSaidAt = Number.NEGATIVE_INFINITY;

  /** A destination line if the window has room; otherwise counted as held back. */
  const line = (events: DenialEvent[], event: DestinationEvent): boolean => {
    if (lines >= limits.linesPerWindow) return (heldBack++, false);
    lines++;
    events.push(event);
    return true;
  };
  const report = (events: DenialEvent[]) => {
    if (heldBack > 0) events.push({ kind: "held-back", lines: heldBack });
    heldBack = 0;
  };
  const eventOf = (kind: DestinationEvent["kind"], d: DeniedDestination, packets: number): DestinationEvent => ({
    kind,
    direction: d.direction,
    address: d.address,
    protocol: d.protocol,
    port: d.port,
    packets,
    totalPackets: d.packets,
  });
  const last = new Map<string, DeniedDestination>();

  return {
    observe(denied, full = []) {
      const t = now();
      const events: DenialEvent[] = [];
      // Outside the cap and the baseline: it is what says that lines are missing. Once a minute at most.
      if (full.length > 0 && t - fullSaidAt >= limits.repeatMs) {
        events.push({ kind: "record-full", sets: full });
        fullSaidAt = t;
      }
      if (t - windowStart >= limits.windowMs) {
        report(events);
        [windowStart, lines] = [t, 0];
      }
      const seen = new Set<string>();
      for (const d of denied) {
        const key = keyOf(d);
        seen.add(key);
        last.set(key, d);
        const was = known.get(key);
        // Not known, or its counter went back: the element timed out and the kernel made it again.
        if (was === undefined || d.packets < was.packets) {
          const entry = { packets: d.packets, logged: d.packets, lastLineAt: t };
          known.set(key, entry);
          if (!quiet && !line(events, eventOf("denied", d, d.packets))) entry.logged = 0;
          continue;
        }
        was.packets = d.packets;
        if (d.packets > was.logged && t - was.lastLineAt >= limits.repeatMs) {
          if (line(events, eventOf("still-denied", d, d.packets - was.logged))) [was.logged, was.lastLineAt] = [d.packets, t];
        }
      }
      for (const key of known.keys()) if (!seen.has(key)) known.delete(key), last.delete(key);
      quiet = false;
      return events;
    },
    flush() {
      const events: DenialEvent[] = [];
      for (const [key, was] of known) {
        const d = last.get(key);
        if (d !== undefined && was.packets > was.logged && line(events, eventOf("still-denied", d, was.packets - was.logged)))
          was.logged = was.packets;
      }
      report(events);
      return events;
    },
  };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** `203.0.113.20 tcp/80`: the destination, its protocol and port (none for ICMP). */
const destinationText = (e: DestinationEvent) => `${e.address} ${e.protocol}${e.port === 0 ? "" : `/${e.port}`}`;

/**
 * One event as a log entry: a line a person reads (`message`) and the same facts as fields for
 * JSON logs. `names`: the listed names that last gave the address, when known. `audit`: the rules
 * only record (audit mode), so "would be denied".
 */
export function denialEntry(
  event: DenialEvent,
  names: readonly string[],
  audit: boolean,
): { readonly message: string; readonly [field: string]: unknown } {
  if (event.kind === "record-full") {
    return {
      message: deniedFullMessage(event.sets, { audit }),
      event: "denied-record-full",
      sets: event.sets.map((s) => s.name),
      size: Math.max(...event.sets.map((s) => s.size)),
    };
  }
  if (event.kind === "held-back") {
    return {
      message: `${plural(event.lines, "denial line")} held back (at most ${DENIAL_LIMITS.linesPerWindow} a minute); 'domainwall status' lists every denied destination`,
      event: "denials-held-back",
      suppressed: event.lines,
    };
  }
  const verb = audit ? "would be denied (audit mode)" : "denied";
  const named = names.length > 0 ? ` (${names.join(", ")})` : "";
  const what = `${event.direction === "out" ? "outbound to" : "inbound from"} ${destinationText(event)}${named}`;
  const message =
    event.kind === "denied"
      ? `${verb}: ${what}, ${plural(event.packets, "packet")}`
      : `still ${verb}: ${what}, ${plural(event.packets, "more packet")} since the last line (${event.totalPackets} in all)`;
  return {
    message,
    event: event.kind,
    direction: event.direction,
    address: event.address,
    protocol: event.protocol,
    port: event.port,
    packets: event.packets,
    totalPackets: event.totalPackets,
    ...(names.length > 0 && { names }),
    ...(audit && { audit: true }),
  };
}
