import type { Logger } from "../log.ts";
import { messageOf } from "../messages.ts";
import type { SetTimer } from "../timer.ts";

/** What a running watch needs to keep its rules in the kernel; tests pass fakes. */
export interface GuardIo {
  /** What of the loaded policy the kernel does not hold now (Backend.missing). */
  readonly missing: () => Promise<readonly string[]>;
  /** Load the whole policy again, in one transaction (with the proxy's admissions carried over). */
  readonly restore: () => Promise<void>;
  /**
   * Subscribe to changes of our table (nft: backends/nft/events.ts); throws when it cannot. Absent
   * for a backend without change events (iptables-legacy): the guard then checks every `pollMs`.
   */
  readonly subscribe?: (changed: (events: readonly string[]) => void) => { close(): void };
  readonly log: Logger;
  readonly now: () => number;
  readonly setTimer: SetTimer;
}

export interface GuardStats {
  /** Restores that put the whole policy back. */
  readonly restored: number;
  /** Restores (and checks) that failed; each is retried. */
  readonly failed: number;
}

export interface RulesetGuard {
  stats(): GuardStats;
  /** Check now (and restore when something is missing); resolves when done. */
  check(reason?: readonly string[]): Promise<void>;
  stop(): void;
}

/** Events come in bursts (a `flush ruleset` is one message per object): one check after the burst. */
const SETTLE_MS = 10;
/** Without events (iptables-legacy, or the socket refused): a check this often. */
export const POLL_MS = 1000;
/** A failed restore is retried after 1 s, then twice as long each time, up to this. */
const MAX_RETRY_MS = 30_000;
/** Events and parts named in one log line; the rest are counted. */
const NAMED = 8;

const listed = (items: readonly string[]): string => {
  const unique = [...new Set(items)];
  const shown = unique.slice(0, NAMED).join(", ");
  return unique.length > NAMED ? `${shown} and ${unique.length - NAMED} more` : shown;
};

/**
 * Keeps a running watch's rules in the kernel: on each change the kernel announces to our table
 * (or every POLL_MS without announcements) it reads what the kernel holds and, when a part of the
 * loaded policy is missing or changed, loads the whole policy again and logs an error naming what
 * was gone. A failed restore is logged at error level and retried with a growing delay.
 */
export function startRulesetGuard(io: GuardIo): RulesetGuard {
  let restored = 0;
  let failed = 0;
  let stopped = false;
  let running: Promise<void> | undefined;
  let again: string[] | undefined;
  let cancelTimer: () => void = () => {};
  let retryMs = 0;
  /** What the kernel announced since the check now scheduled was (re)scheduled: a burst is named whole. */
  let waiting: readonly string[] = [];

  /** One check, and a restore when something is missing; true when it failed and should be retried. */
  async function checkOnce(reason: readonly string[]): Promise<boolean> {
    let missing: readonly string[];
    try {
      missing = await io.missing();
    } catch (error) {
      failed++;
      io.log.error(
        `cannot read domainwall's rules from the kernel to check them, trying again in ${nextRetry() / 1000}s: ${messageOf(error)}`,
      );
      return true;
    }
    if (missing.length === 0 || stopped) {
      retryMs = 0;
      return false;
    }
    const why = reason.length > 0 ? ` (the kernel announced: ${listed(reason)})` : "";
    io.log.error(`domainwall's rules were changed from outside${why}; missing: ${listed(missing)}; loading the whole policy again`);
    const started = io.now();
    try {
      await io.restore();
    } catch (error) {
      failed++;
      io.log.error(
        `restoring domainwall's rules failed (${failed} failures so far), trying again in ${nextRetry() / 1000}s: ${messageOf(error)}`,
      );
      return true;
    }
    restored++;
    retryMs = 0;
    io.log.info(`domainwall's rules restored in ${Math.round(io.now() - started)} ms (${restored} restores since start)`);
    return false;
  }

  const nextRetry = (): number => (retryMs = Math.min(MAX_RETRY_MS, Math.max(1000, retryMs * 2)));

  function schedule(reason: readonly string[], delayMs: number): void {
    if (stopped) return;
    if (running !== undefined) {
      again = [...(again ?? []), ...reason];
      return;
    }
    cancelTimer();
    waiting = [...waiting, ...reason];
    cancelTimer = io.setTimer(delayMs, () => {
      const reasons = waiting;
      waiting = [];
      void check(reasons);
    });
  }

  function check(reason: readonly string[] = []): Promise<void> {
    if (running !== undefined) {
      again = [...(again ?? []), ...reason];
      return running;
    }
    running = checkOnce(reason).then((retry) => {
      running = undefined;
      const next = again;
      again = undefined;
      if (next !== undefined) schedule(next, SETTLE_MS);
      else if (retry) schedule([], retryMs);
    });
    return running;
  }

  let source: { close(): void } | undefined;
  let poll: (() => void) | undefined;
  const polling = (): void => {
    poll = io.setTimer(POLL_MS, () => {
      void check().finally(() => {
        if (!stopped) polling();
      });
    });
  };
  if (io.subscribe !== undefined) {
    try {
      source = io.subscribe((events) => schedule(events, SETTLE_MS));
    } catch (error) {
      io.log.warn(
        `cannot subscribe to the kernel's nftables events (${messageOf(error)}): checking domainwall's rules every ${POLL_MS / 1000}s instead`,
      );
    }
  }
  if (source === undefined) polling();

  return {
    stats: () => ({ restored, failed }),
    check,
    stop() {
      stopped = true;
      cancelTimer();
      poll?.();
      source?.close();
    },
  };
}
