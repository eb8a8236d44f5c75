/**
 * The live denial stream's loop: read the kernel's record of denied destinations every second and
 * hand each event (src/watch/denials.ts) to `emit`. Reading costs the same however many packets
 * are dropped (the sets are bounded; the kernel counts the packets), so a flood does not cost it more.
 */
import type { DeniedRecord } from "../backends/nft/denied.ts";
import { messageOf } from "../messages.ts";
import type { SetTimer } from "../timer.ts";
import type { Logger } from "../log.ts";
import { createDenialTracker, denialEntry, isDestinationEvent, type DenialEvent, type DenialLimits } from "./denials.ts";

export const DENIAL_POLL_MS = 1000;
/**
 * A read costs about 20 µs per recorded destination (libnftables printing the set; 4,000 take
 * 50-100 ms): the next read waits at least this many times as long as the last took, so reading
 * stays under about 0.5 % of a core even with the sets full (a scan), at the price of a slower
 * stream then (one read every 10-20 s). A few destinations read in well under a millisecond: once a second.
 */
const READ_SHARE = 200;

export interface DenialStreamDeps {
  /** The kernel's record now; undefined when nothing of ours is loaded. */
  readonly read: () => Promise<DeniedRecord | undefined>;
  readonly emit: (event: DenialEvent, audit: boolean) => void | Promise<void>;
  /** A read that failed; told once until a read works again. */
  readonly failed: (message: string) => void;
  readonly now: () => number;
  readonly setTimer: SetTimer;
  /** Whether the first read only records what is there (`status --follow`); a full record is still said. */
  readonly baseline?: boolean;
  readonly limits?: DenialLimits;
  readonly intervalMs?: number;
}

export interface DenialStream {
  /** Stop reading; the last summaries (what was hit since its last line, what was held back) are emitted first. */
  stop(): Promise<void>;
}

export function startDenialStream(deps: DenialStreamDeps): DenialStream {
  const tracker = createDenialTracker(deps.now, { ...(deps.baseline && { baseline: true }), ...(deps.limits && { limits: deps.limits }) });
  let stopped = false;
  let cancel = () => {};
  let failing = false;
  let audit = false;
  let running: Promise<void> = Promise.resolve();

  const tick = async () => {
    try {
      const record = await deps.read();
      failing = false;
      if (record !== undefined) audit = record.audit;
      for (const event of tracker.observe(record?.denied ?? [], record?.full)) await deps.emit(event, audit);
    } catch (error) {
      if (!failing) deps.failed(messageOf(error));
      failing = true;
    }
  };
  /** Each read is timed: the next waits at least READ_SHARE times as long. */
  const timedTick = async () => {
    const started = deps.now();
    await tick();
    return deps.now() - started;
  };
  const schedule = (tookMs: number) => {
    const waitMs = Math.max(deps.intervalMs ?? DENIAL_POLL_MS, tookMs * READ_SHARE);
    if (!stopped) cancel = deps.setTimer(waitMs, () => void (running = timedTick().then(schedule)));
  };
  running = timedTick().then(schedule);

  return {
    async stop() {
      if (stopped) return;
      stopped = true;
      cancel();
      await running;
      await tick(); // what the kernel counted since the last read
      for (const event of tracker.flush()) await deps.emit(event, audit);
    },
  };
}

/**
 * The watch's emitter: each event one log line, warn when the rules deny and info in audit mode
 * (they only record); `namesOf` says which listed names last gave an address.
 */
export const logDenial =
  (log: Logger, namesOf: (address: string) => readonly string[]) =>
  (event: DenialEvent, audit: boolean): void => {
    const entry = denialEntry(event, isDestinationEvent(event) ? namesOf(event.address) : [], audit);
    // A full record is a warning in audit mode too: it is the record that audit mode is for.
    if (event.kind === "record-full") log.warn(entry);
    else if (audit || event.kind === "held-back") log.info(entry);
    else log.warn(entry);
  };
