import type { Family } from "../net/ip.ts";
import type { HostResolution } from "../dns/resolve.ts";
import type { NameAddresses } from "../policy/policy.ts";

/** When names are looked up again, and how long an address stays after DNS stopped returning it. */
export interface Schedule {
  /** Shortest wait before a name is looked up again, whatever its TTL (also the first retry after a failure). */
  readonly minTtlMs: number;
  /** Longest wait: a name is looked up again at least this often. */
  readonly maxTtlMs: number;
  /** An address stays allowed this long after its name last returned it, so rotating answers do not flap. */
  readonly graceMs: number;
}

/** An address a name resolved to and when DNS last returned it. */
export interface KnownAddress {
  readonly address: string;
  readonly family: Family;
  readonly lastSeen: number;
}

/** One address family of a name: A (4) or AAAA (6) lookups. */
export interface FamilyState {
  /** When this family's lookup last answered (addresses, or a definite "no such name / no data"). */
  readonly lastAnswer: number | undefined;
  /** Whether its latest lookup failed; while it does, none of the name's addresses of this family expires. */
  readonly failing: boolean;
}

/** One name over time. Times are in milliseconds of the injected clock. */
export interface NameState {
  /** Keyed by the address text. */
  readonly addresses: ReadonlyMap<string, KnownAddress>;
  readonly nextRefresh: number;
  /**
   * Per family: an address expires only against the latest answer of its own family, so a family
   * whose lookups keep failing (AAAA timing out) neither loses its addresses nor holds back the
   * expiry of the other family's.
   */
  readonly families: Readonly<Record<Family, FamilyState>>;
  /** Consecutive failed lookups of either family (they back off the name's next lookup). */
  readonly failures: number;
  /** Failed lookups since start (a Prometheus counter). */
  readonly failuresTotal: number;
  readonly lastError: string | undefined;
}

/** Every name of the allowlist, in configuration order. */
export type RefreshState = ReadonlyMap<string, NameState>;

/** Jitter added to each wait: up to this fraction of it... */
const JITTER_FRACTION = 0.1;
/** ...and never more than this, so a changed answer reaches the ruleset soon after the TTL runs out. */
const JITTER_MAX_MS = 1000;
/** Retries after failures back off from --min-ttl, doubling, up to this (and never past --max-ttl). */
const RETRY_CAP_MS = 60_000;

/**
 * Jitter only lengthens a wait: looking a name up before its TTL runs out would return the cached
 * answer again (c-ares in this process, the cluster's resolver) and miss the change we wait for.
 */
const withJitter = (ms: number, random: () => number): number => ms + random() * Math.min(ms * JITTER_FRACTION, JITTER_MAX_MS);

/** How long to wait before looking a name up again after an answer with this TTL (seconds). */
export function refreshDelay(ttlSeconds: number, schedule: Pick<Schedule, "minTtlMs" | "maxTtlMs">, random: () => number): number {
  const clamped = Math.min(Math.max(ttlSeconds * 1000, schedule.minTtlMs), schedule.maxTtlMs);
  return withJitter(clamped, random);
}

/** How long to wait before retrying a name after its `failures`-th consecutive failure. */
export function retryDelay(failures: number, schedule: Pick<Schedule, "minTtlMs" | "maxTtlMs">, random: () => number): number {
  const cap = Math.max(schedule.minTtlMs, Math.min(schedule.maxTtlMs, RETRY_CAP_MS));
  return withJitter(Math.min(schedule.minTtlMs * 2 ** Math.max(0, failures - 1), cap), random);
}

const FAMILIES: readonly Family[] = [4, 6];

/** When a lookup of this name last got an answer in either family (addresses or a definite "no such name"). */
export function lastAnswerOf(name: NameState): number | undefined {
  const times = FAMILIES.flatMap((family) => name.families[family].lastAnswer ?? []);
  return times.length > 0 ? Math.max(...times) : undefined;
}
const NEVER_ANSWERED: FamilyState = { lastAnswer: undefined, failing: false };

/** Every name known, none resolved yet, all due now. */
export function initialState(hosts: readonly string[], now: number): RefreshState {
  const empty: NameState = {
    addresses: new Map(),
    nextRefresh: now,
    families: { 4: NEVER_ANSWERED, 6: NEVER_ANSWERED },
    failures: 0,
    failuresTotal: 0,
    lastError: undefined,
  };
  return new Map(hosts.map((host) => [host, empty]));
}

const seen = (name: NameState, addresses: readonly { address: string; family: Family }[], now: number) => {
  const known = new Map(name.addresses);
  for (const { address, family } of addresses) known.set(address, { address, family, lastSeen: now });
  return known;
};

/** Each family answered now unless it is among `failed`; the failed ones keep their last answer time. */
const families = (name: NameState, failed: readonly Family[], now: number): Record<Family, FamilyState> => {
  const state = (family: Family): FamilyState =>
    failed.includes(family) ? { lastAnswer: name.families[family].lastAnswer, failing: true } : { lastAnswer: now, failing: false };
  return { 4: state(4), 6: state(6) };
};

/** A lookup answered in both families: these addresses are current (the others age out after the grace period). */
const recordAnswers = (
  name: NameState,
  addresses: readonly { address: string; family: Family }[],
  now: number,
  nextRefresh: number,
): NameState => ({
  ...name,
  addresses: seen(name, addresses, now),
  nextRefresh,
  families: families(name, [], now),
  failures: 0,
  lastError: undefined,
});

/**
 * A lookup failed in the `failed` families: their known addresses all stay. `partial` holds what
 * the other family returned; that family answered, so its addresses it left out age out as usual.
 */
const recordFailure = (
  name: NameState,
  error: string,
  partial: readonly { address: string; family: Family }[],
  failed: readonly Family[],
  now: number,
  nextRefresh: number,
): NameState => ({
  ...name,
  addresses: seen(name, partial, now),
  nextRefresh,
  families: families(name, failed, now),
  failures: name.failures + 1,
  failuresTotal: name.failuresTotal + 1,
  lastError: error,
});

/** Fold lookup results into the state and schedule each name's next lookup (by TTL, or backing off after failures). */
export function recordResolutions(
  state: RefreshState,
  resolutions: readonly HostResolution[],
  now: number,
  schedule: Schedule,
  random: () => number,
): RefreshState {
  const next = new Map(state);
  for (const r of resolutions) {
    const name = next.get(r.host);
    if (name === undefined) continue;
    if (r.status === "failed") {
      // A resolution that does not say which family failed is taken as both failing: nothing fades.
      const failed = r.failedFamilies ?? FAMILIES;
      // While one family fails, the one that answered is still followed at its TTL when that is sooner.
      const answered = r.addresses.filter((a) => !failed.includes(a.family));
      const retry = retryDelay(name.failures + 1, schedule, random);
      const wait = answered.length > 0 ? Math.min(retry, refreshDelay(Math.min(...answered.map((a) => a.ttl)), schedule, random)) : retry;
      next.set(r.host, recordFailure(name, r.error, r.addresses, failed, now, now + wait));
    } else {
      const addresses = r.status === "resolved" ? r.addresses : [];
      // No such name (yet): ask again after --min-ttl, so a name created later is picked up soon.
      const ttl = addresses.length > 0 ? Math.min(...addresses.map((a) => a.ttl)) : 0;
      next.set(r.host, recordAnswers(name, addresses, now, now + refreshDelay(ttl, schedule, random)));
    }
  }
  return next;
}

export interface Expired {
  readonly host: string;
  readonly address: string;
  readonly lastSeen: number;
}

/**
 * Addresses on their way out: the latest answer of their family no longer held them. Those of the
 * latest answer stay however long its TTL is; a failing family's all stay.
 */
const isFading = (name: NameState, a: KnownAddress): boolean => {
  const family = name.families[a.family];
  return !family.failing && family.lastAnswer !== undefined && a.lastSeen < family.lastAnswer;
};

/**
 * Drop addresses that their family's answers have left out for `graceMs` since they last held
 * them. While a family's lookups are failing, the name keeps all of its addresses of that family:
 * DNS trouble never shrinks the allowlist. The other family, answering, follows its answers.
 */
export function expire(state: RefreshState, now: number, graceMs: number): { state: RefreshState; expired: Expired[] } {
  const expired: Expired[] = [];
  let next: Map<string, NameState> | undefined; // copied on the first expiry: most cycles have none
  for (const [host, name] of state) {
    let stale: KnownAddress[] | undefined; // most names have none: no array for them (this runs every cycle)
    for (const a of name.addresses.values()) if (isFading(name, a) && a.lastSeen + graceMs <= now) (stale ??= []).push(a);
    if (stale === undefined) continue;
    next ??= new Map(state);
    const addresses = new Map(name.addresses);
    for (const a of stale) {
      addresses.delete(a.address);
      expired.push({ host, address: a.address, lastSeen: a.lastSeen });
    }
    next.set(host, { ...name, addresses });
  }
  return { state: next ?? state, expired };
}

/** Whether two states of a name hold the same addresses (when they were seen aside). */
export function sameAddresses(a: NameState | undefined, b: NameState | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.addresses.size !== b.addresses.size) return false;
  for (const address of b.addresses.keys()) if (!a.addresses.has(address)) return false; // no array: this runs for every name every cycle
  return true;
}

/** Names whose next lookup is due. */
export function dueHosts(state: RefreshState, now: number): string[] {
  const due: string[] = [];
  for (const [host, name] of state) if (name.nextRefresh <= now) due.push(host);
  return due;
}

/** When something next happens: a lookup falls due or an address reaches the end of its grace. */
export function nextEvent(state: RefreshState, graceMs: number): number {
  let next = Infinity;
  for (const name of state.values()) {
    next = Math.min(next, name.nextRefresh);
    for (const a of name.addresses.values()) if (isFading(name, a)) next = Math.min(next, a.lastSeen + graceMs);
  }
  return next;
}

/**
 * The allowlist as `buildPolicy` takes it: each name that has addresses (answered or kept), in
 * configuration order, so the policy rules (refused answers, --allow, sorting) stay in one place.
 * Names without addresses are left out: the watch loop reports them itself.
 */
export function addressesByName(state: RefreshState): NameAddresses[] {
  return [...state].flatMap(([host, name]) => {
    const addresses = [...name.addresses.values()].map((a) => ({ address: a.address, family: a.family }));
    return addresses.length > 0 ? [{ host, addresses }] : [];
  });
}
