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
   * Subscribe to changes of our rules (World.tableEvents); throws when it cannot, and the guard
   * then checks every POLL_MS. Absent: the same.
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
/** Announcements kept for the next check's log line (the rest of a burst is not needed to name it). */
const MAX_REASONS = 32;
/** Restores logged one by one per window; beyond, one line counts them (a tool fighting us must not flood the log). */
const LOG_WINDOW_MS = 60_000;
const LOGGED_PER_WINDOW = 5;

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
  /** Something was announced while a check ran: check once more after it. */
  let rerun = false;
  let cancelTimer: () => void = () => {};
  /** When the check now scheduled runs; undefined when none is. */
  let timerAt: number | undefined;
  let retryMs = 0;
  /** After a failure, no check before this (events do not hurry a retry). */
  let retryUntil = -Infinity;
  /** What the kernel announced since the last check, at most MAX_REASONS of it. */
  let waiting: string[] = [];
  /** Restores logged in the current LOG_WINDOW_MS, and those beyond LOGGED_PER_WINDOW left unlogged. */
  let window = { start: -Infinity, logged: 0, unlogged: 0 };

  const remember = (reason: readonly string[]): void => {
    for (const r of reason) if (waiting.length < MAX_REASONS && !waiting.includes(r)) waiting.push(r);
  };

  /** Whether this restore is logged: LOGGED_PER_WINDOW per window, then one line saying how many were not. */
  function mayLog(): boolean {
    const now = io.now();
    if (now - window.start >= LOG_WINDOW_MS) {
      if (window.unlogged > 0)
        io.log.error(
          `${window.unlogged} more restores of domainwall's rules in the last ${LOG_WINDOW_MS / 1000}s were not logged one by one (something keeps removing them; see domainwall_ruleset_restored_total)`,
        );
      window = { start: now, logged: 0, unlogged: 0 };
    }
    if (window.logged < LOGGED_PER_WINDOW) return (window.logged++, true);
    window.unlogged++;
    return false;
  }

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
    const logged = mayLog();
    const why = reason.length > 0 ? ` (the kernel announced: ${listed(reason)})` : "";
    if (logged)
      io.log.error(`domainwall's rules were changed from outside${why}; missing: ${listed(missing)}; loading the whole policy again`);
    const started = io.now();
    try {
      await io.restore();
    } catch (error) {
      failed++;
      io.log.error(
        `restoring domainwall's rules (missing: ${listed(missing)}) failed (${failed} failures so far), trying again in ${nextRetry() / 1000}s: ${messageOf(error)}`,
      );
      return true;
    }
    restored++;
    retryMs = 0;
    if (logged) io.log.info(`domainwall's rules restored in ${Math.round(io.now() - started)} ms (${restored} restores since start)`);
    return false;
  }

  const nextRetry = (): number => (retryMs = Math.min(MAX_RETRY_MS, Math.max(1000, retryMs * 2)));

  /** Check `delayMs` from now (not before a pending retry); a check already due sooner is left as it is, never postponed. */
  function schedule(reason: readonly string[], delayMs: number): void {
    if (stopped) return;
    remember(reason);
    if (running !== undefined) {
      rerun = true;
      return;
    }
    const at = Math.max(io.now() + delayMs, retryUntil);
    if (timerAt !== undefined && timerAt <= at) return;
    cancelTimer();
    timerAt = at;
    cancelTimer = io.setTimer(at - io.now(), () => {
      timerAt = undefined;
      void check();
    });
  }

  function check(reason: readonly string[] = []): Promise<void> {
    remember(reason);
    if (running !== undefined) {
      rerun = true;
      return running;
    }
    const reasons = waiting;
    waiting = [];
    running = checkOnce(reasons).then((retry) => {
      running = undefined;
      retryUntil = retry ? io.now() + retryMs : -Infinity;
      const again = rerun;
      rerun = false;
      if (again || retry) schedule([], again ? SETTLE_MS : retryMs);
    });
    return running;
  }

  let source: { close(): void } | undefined;
  let poll: (() => void) | undefined;
  const polling = (): void => {
    poll = io.setTimer(POLL_MS, () => {
      void (io.now() < retryUntil ? Promise.resolve() : check()).finally(() => {
        if (!stopped) polling();
      });
    });
  };
  if (io.subscribe !== undefined) {
    try {
      source = io.subscribe((events) => schedule(events, SETTLE_MS));
    } catch (error) {
      io.log.warn(
        `cannot watch the kernel for changes to domainwall's rules (${messageOf(error)}): checking them every ${POLL_MS / 1000}s instead`,
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
