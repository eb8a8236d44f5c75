import type { Backend } from "../backends/backend.ts";
import type { Config } from "../config/config.ts";
import type { Cidr } from "../net/ip.ts";
import type { Logger } from "../log.ts";
import { messageOf } from "../messages.ts";
import { formatPortRange, type PortRange } from "../net/port-range.ts";
import { buildPolicy, type Policy } from "../policy/policy.ts";
import {
  addressesByName,
  dueHosts,
  expire,
  initialState,
  nextEvent,
  recordResolutions,
  sameAddresses,
  type Expired,
  type RefreshState,
  type Schedule,
} from "./refresh.ts";
import { resolveHosts, type HostResolution, type Lookup } from "../dns/resolve.ts";
import { coalescedTimer, type SetTimer } from "../timer.ts";

/** The loop's side of the world; tests pass a fake clock, lookup and backend. */
export interface WatchIo {
  readonly backend: Backend;
  readonly lookup: Lookup;
  readonly log: Logger;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** The timer each lookup attempt's deadline runs on (same clock as `now`). */
  readonly setTimer: SetTimer;
  readonly random: () => number;
  /** Called after each cycle that looked names up or changed the sets (for `status`); its errors are the caller's. */
  readonly cycled?: (snapshot: WatchSnapshot) => Promise<void>;
}

/** What the loop knows, for /healthz and /metrics. Times are in milliseconds of the injected clock. */
export interface WatchSnapshot {
  readonly state: RefreshState;
  /** The ports of the names listed with ports (Config.hostPorts); the others open every port. */
  readonly hostPorts: ReadonlyMap<string, readonly PortRange[]>;
  /** The policy whose sets are loaded now. */
  readonly loaded: Policy;
  /** When no name was failing and the loaded sets matched the answers, last. */
  readonly lastGoodRefresh: number;
  /** When the loop means to run next (a lookup due, an address's grace ending, a retry). */
  readonly nextWake: number;
  /** Updates after the initial load: how many succeeded and failed, and the seconds they took. */
  readonly updates: {
    readonly ok: number;
    readonly failed: number;
    readonly seconds: number;
    /** Updates the kernel refused as a change alone (a set did not hold what was loaded), done as a flush and refill. */
    readonly refilled: number;
  };
  /** Why the last update failed; undefined once one succeeds. */
  readonly updateError: string | undefined;
}

/** A new configuration for a running watch (a reloaded `--config` file): taken at the start of the next cycle. */
export interface Reconfiguration {
  readonly config: Config;
  readonly schedule: Schedule;
  readonly resolvers: readonly Cidr[];
}

export interface Watcher {
  /** Run cycles as they fall due until `stopped` settles; a cycle under way finishes its kernel update first. */
  run(stopped: Promise<unknown>): Promise<void>;
  /**
   * Take a new configuration at the next cycle, which starts now (or when the one under way ends):
   * names no longer listed are dropped, new ones looked up at once, the rest keep their state;
   * then the difference is loaded in one transaction (the allow sets alone when only they differ).
   */
  reconfigure(next: Reconfiguration): void;
  /** One cycle now: look up the due names, expire, update the kernel if the sets changed. */
  cycle(): Promise<void>;
  snapshot(): WatchSnapshot;
}

export interface WatchStart {
  readonly config: Config;
  readonly schedule: Schedule;
  /** The resolvers the loaded policy allows DNS to (they do not change while watching). */
  readonly resolvers: readonly Cidr[];
  /** The initial resolution and the policy loaded from it, and when. */
  readonly resolutions: readonly HostResolution[];
  readonly policy: Policy;
  readonly loadedAt: number;
  /**
   * Whether the loop looks the names up itself (default). With the DNS proxy it does not: the apps'
   * own queries keep the proxy's sets fresh, and the loop keeps only the static sets loaded.
   */
  readonly lookUpNames?: boolean;
}

/** Cycles are at least this far apart, so names falling due close together share a lookup round and an update. */
const MIN_CYCLE_GAP_MS = 1000;
/**
 * A set update sends only what changed, but at least this long after the last full one it flushes
 * and refills the sets instead: an element added from outside (which the change alone would keep)
 * lasts at most this long.
 */
const FULL_SET_UPDATE_EVERY_MS = 10 * 60_000;
/** A refused set change (the sets changed from outside) is logged at most once in this long; the metric counts each. */
const REFILL_LOG_MS = 60_000;
/** Added and removed addresses named in one log line; the rest are counted. */
const LOG_ADDRESSES = 20;

/** `derive` of each policy computed once: the loaded policy is compared with every rebuild, and an update describes the change. */
const perPolicy = <T>(derive: (policy: Policy) => T): ((policy: Policy) => T) => {
  const derived = new WeakMap<Policy, T>();
  return (policy) => {
    if (!derived.has(policy)) derived.set(policy, derive(policy));
    return derived.get(policy) as T;
  };
};

/** Each element of the allow sets (port sets too) as text: `203.0.113.10`, `203.0.113.10 443/tcp`. */
const elementsOf = perPolicy((policy): ReadonlyMap<string, { address: string; sources: readonly string[] }> => {
  const elements = new Map<string, { address: string; sources: readonly string[] }>();
  for (const e of policy.allowV4) elements.set(e.cidr.text, { address: e.cidr.text, sources: e.sources });
  for (const e of policy.allowV6) elements.set(e.cidr.text, { address: e.cidr.text, sources: e.sources });
  for (const e of [...(policy.allowPorts?.v4 ?? []), ...(policy.allowPorts?.v6 ?? [])])
    elements.set(`${e.cidr.text} ${formatPortRange(e.ports)}`, { address: e.cidr.text, sources: e.sources });
  return elements;
});
/** `3 IPv4 and 1 IPv6 allowed`, and `, 2 with ports` when the port sets hold something. */
const describeCounts = (policy: Policy): string => {
  const ported = (policy.allowPorts?.v4.length ?? 0) + (policy.allowPorts?.v6.length ?? 0);
  return `${policy.allowV4.length} IPv4 and ${policy.allowV6.length} IPv6 allowed${ported > 0 ? `, ${ported} with ports` : ""}`;
};
/** Whether two policies' allow sets hold the same elements (in any order). */
const sameElements = (a: Policy, b: Policy): boolean => {
  const [x, y] = [elementsOf(a), elementsOf(b)];
  if (x.size !== y.size) return false;
  for (const key of x.keys()) if (!y.has(key)) return false;
  return true;
};
/**
 * Everything of a policy but its allow sets' elements: when it differs, the chains or the set
 * declarations change and the whole table is loaded (port sets appearing or going, --forward, the
 * DNS proxy's port sets).
 */
const chainKey = perPolicy((policy): string =>
  JSON.stringify({
    dns: policy.dns,
    inboundPorts: policy.inboundPorts,
    verdict: policy.verdict,
    forward: policy.forward === true,
    ports: policy.allowPorts !== undefined,
    proxy: policy.proxy,
  }),
);
const seconds = (ms: number): string => `${Math.round(ms / 100) / 10}s`;
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "es"}`;

function listed(items: readonly string[]): string {
  const shown = items.slice(0, LOG_ADDRESSES).join(", ");
  return items.length > LOG_ADDRESSES ? `${shown} and ${items.length - LOG_ADDRESSES} more` : shown;
}

/** `+203.0.113.20 (api.example)`, `+203.0.113.21 443/tcp (api.example)` and `-203.0.113.10 (api.example, last seen 5m ago)`. */
function describeChange(before: Policy, after: Policy, expired: readonly Expired[], now: number) {
  const [old, next] = [elementsOf(before), elementsOf(after)];
  const lastSeen = new Map(expired.map((e) => [e.address, e.lastSeen]));
  const added: string[] = [];
  const removed: string[] = [];
  for (const [key, e] of next) if (!old.has(key)) added.push(`+${key} (${e.sources.join(", ")})`);
  for (const [key, e] of old) {
    if (next.has(key)) continue;
    const seen = lastSeen.get(e.address);
    removed.push(`-${key} (${e.sources.join(", ")}${seen === undefined ? "" : `, last seen ${seconds(now - seen)} ago`})`);
  }
  return { added, removed };
}

/**
 * The refresh loop of `watch`. It starts from what the initial apply resolved and loaded; each
 * cycle looks up the names that are due, folds the answers into the state, expires addresses past
 * their grace, builds the policy the way `apply` does and, only when the allow sets differ from
 * the loaded ones, replaces them (`Backend.updateSets`, or a full `apply` after a failed update). A failed update leaves the loaded rules as they were and is
 * retried after --min-ttl.
 */
export function createWatcher(start: WatchStart, io: WatchIo): Watcher {
  let { config, schedule, resolvers } = start;
  let pending: Reconfiguration | undefined;
  const namesOf = (c: Config): readonly string[] => (start.lookUpNames === false ? [] : c.hosts);
  let state = recordResolutions(initialState(namesOf(config), start.loadedAt), start.resolutions, start.loadedAt, schedule, io.random);
  let loaded = start.policy;
  let lastGoodRefresh = start.loadedAt;
  let updates = { ok: 0, failed: 0, seconds: 0, refilled: 0 };
  /** When a refused change was last logged: at most one line a minute (REFILL_LOG_MS). */
  let refillLoggedAt = -Infinity;
  /** When the sets were last loaded whole (the first load, a full apply, or a flush and refill). */
  let wholeSetsAt = start.loadedAt;
  let updateError: string | undefined;
  let retryAt = Infinity;
  let lastCycle = -Infinity;
  let stopping = false;
  /**
   * Ends the wait under way (a sleep or a lookup round) when `run` is told to stop; nothing is
   * changed after it. Each wait gets its own short-lived promise: racing every wait against one
   * long-lived "stopped" promise would pile a reaction onto it per cycle for the life of the process.
   */
  let interrupt: () => void = () => {};
  const interruptible = <T>(work: Promise<T>): Promise<T | undefined> =>
    stopping
      ? Promise.resolve(undefined)
      : new Promise<T | undefined>((resolve, reject) => {
          interrupt = () => resolve(undefined);
          work.then(resolve, reject);
        });
  /** The lookups' deadlines: a cycle starts its lookups together, and they share one timer. */
  const deadlines = coalescedTimer(io.setTimer, io.now);
  /** Warnings of the last policy build, so each is logged once rather than every cycle. */
  let warned = new Set<string>();
  /** Names whose last answer was "no such name / no addresses". */
  const vanished = new Set(start.resolutions.filter((r) => r.status === "empty").map((r) => r.host));

  const wakeAt = () =>
    Math.max(pending !== undefined ? io.now() : Math.min(nextEvent(state, schedule.graceMs), retryAt), lastCycle + MIN_CYCLE_GAP_MS);

  function report(resolutions: readonly HostResolution[], now: number): void {
    for (const r of resolutions) {
      const name = state.get(r.host);
      if (name === undefined) continue;
      if (r.status === "failed") {
        // One family failing (AAAA timing out while A answers): only its addresses are held; the other follows its answers.
        const only = r.failedFamilies?.length === 1 ? r.failedFamilies[0] : undefined;
        const held = [...name.addresses.values()].filter((a) => only === undefined || a.family === only);
        const newest = Math.max(...held.map((a) => a.lastSeen));
        const known = only === undefined ? "known address" : `known IPv${only} address`;
        const kept =
          held.length > 0 ? `keeping its ${plural(held.length, known)}, last seen ${seconds(now - newest)} ago` : `it has no ${known}es`;
        const lookup = only === undefined ? "lookup" : `${only === 4 ? "A" : "AAAA"} lookup`;
        io.log.warn(`${r.host}: ${lookup} failed (${r.error}); ${kept}; next try in ${seconds(name.nextRefresh - now)}`);
      } else if (r.status === "empty" && !vanished.has(r.host)) {
        vanished.add(r.host);
        const held =
          name.addresses.size > 0
            ? `${name.addresses.size === 1 ? "its address stays" : `its ${plural(name.addresses.size, "address")} stay`} for the grace period (${seconds(schedule.graceMs)})`
            : "nothing to allow";
        io.log.warn(`${r.host}: no such name or no addresses now; ${held}`);
      } else if (r.status === "resolved") {
        vanished.delete(r.host);
      }
    }
  }

  async function update(policy: Policy, expired: readonly Expired[]): Promise<void> {
    const full = updateError !== undefined || chainKey(policy) !== chainKey(loaded);
    const started = io.now();
    // A full apply or a set update without the loaded policy (a flush and refill) loads the sets whole.
    const whole = full || started - wholeSetsAt >= FULL_SET_UPDATE_EVERY_MS;
    let refused: string | undefined;
    try {
      if (full) await io.backend.apply(policy);
      else refused = await io.backend.updateSets(policy, whole ? undefined : loaded);
    } catch (error) {
      const took = io.now() - started;
      updates = { ...updates, failed: updates.failed + 1, seconds: updates.seconds + took / 1000 };
      updateError = messageOf(error);
      retryAt = io.now() + schedule.minTtlMs;
      io.log.error(
        `updating the allowed addresses failed; the rules loaded before stay, retrying in ${seconds(schedule.minTtlMs)}: ${updateError}`,
      );
      return;
    }
    const now = io.now();
    const { added, removed } = describeChange(loaded, policy, expired, now);
    updates = {
      ok: updates.ok + 1,
      failed: updates.failed,
      seconds: updates.seconds + (now - started) / 1000,
      refilled: updates.refilled + (refused === undefined ? 0 : 1),
    };
    if (whole || refused !== undefined) wholeSetsAt = started;
    if (refused !== undefined && now - refillLoggedAt >= REFILL_LOG_MS) {
      refillLoggedAt = now;
      io.log.warn(
        `the allow sets did not hold what watch had loaded (changed from outside?): the kernel refused the change alone (${refused}); they were flushed and refilled (${updates.refilled} so far; domainwall_ruleset_sets_refilled_total)`,
      );
    }
    updateError = undefined;
    retryAt = Infinity;
    loaded = policy;
    io.log.info({
      message: `allowlist updated${full ? " (full reload)" : ""} in ${Math.round(now - started)} ms: ${listed([...added, ...removed])}; ${describeCounts(policy)}`,
      added: added.length,
      removed: removed.length,
    });
  }

  /** Build the policy from the state as `apply` does; load its sets when they differ from the loaded ones. */
  async function rebuild(expired: readonly Expired[]): Promise<void> {
    const built = buildPolicy(config, addressesByName(state), resolvers, start.policy.onLink, start.policy.localNets);
    for (const warning of built.warnings) if (!warned.has(warning)) io.log.warn(warning);
    warned = new Set(built.warnings);
    if (updateError !== undefined || !sameElements(built.policy, loaded) || chainKey(built.policy) !== chainKey(loaded))
      await update(built.policy, expired);
  }

  /** Take a pending configuration: the names' state follows the new list, in its order. */
  function adopt(next: Reconfiguration): void {
    const fresh = initialState(namesOf(next.config), io.now());
    state = new Map(namesOf(next.config).map((host) => [host, state.get(host) ?? fresh.get(host)!]));
    for (const host of vanished) if (!state.has(host)) vanished.delete(host);
    ({ config, schedule, resolvers } = next);
  }

  async function cycle(): Promise<void> {
    lastCycle = io.now();
    const next = pending;
    pending = undefined;
    if (next !== undefined) adopt(next);
    let changed = updateError !== undefined || next !== undefined;
    const due = dueHosts(state, lastCycle);
    if (due.length > 0) {
      const resolutions = await interruptible(
        resolveHosts(due, { lookup: io.lookup, deadlineMs: config.resolveTimeoutMs, now: io.now, sleep: io.sleep, setTimer: deadlines }),
      );
      if (resolutions === undefined || stopping) return;
      const before = state;
      state = recordResolutions(state, resolutions, io.now(), schedule, io.random);
      changed ||= resolutions.some((r) => !sameAddresses(before.get(r.host), state.get(r.host)));
      report(resolutions, io.now());
    }
    const expiry = expire(state, io.now(), schedule.graceMs);
    state = expiry.state;
    // Same addresses for every name: the policy is the one built last time (most cycles end here).
    if (changed || expiry.expired.length > 0) await rebuild(expiry.expired);
    if (updateError === undefined && [...state.values()].every((name) => name.failures === 0)) lastGoodRefresh = io.now();
    if (due.length > 0 || changed || expiry.expired.length > 0) await io.cycled?.(snapshot());
  }

  const snapshot = (): WatchSnapshot => ({
    state,
    hostPorts: config.hostPorts,
    loaded,
    lastGoodRefresh,
    nextWake: wakeAt(),
    updates,
    updateError,
  });

  async function run(stop: Promise<unknown>): Promise<void> {
    void stop.then(() => {
      stopping = true;
      interrupt();
    });
    while (!stopping) {
      const wait = wakeAt() - io.now();
      // Nothing scheduled (no names): only a stop ends the wait.
      if (wait > 0) await interruptible(Number.isFinite(wait) ? io.sleep(wait) : new Promise<void>(() => {}));
      if (stopping) break;
      await cycle();
    }
  }

  return {
    run,
    cycle,
    snapshot,
    reconfigure(next) {
      pending = next;
      interrupt();
    },
  };
}
