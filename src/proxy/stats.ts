/** The proxy's counters, for metrics and `status`: plain data, bounded whatever the clients send. */

/**
 * What became of a query: `forwarded` (answered by an upstream, its addresses admitted),
 * `refused` (not on the list: NXDOMAIN), `failed` (SERVFAIL: no upstream answered, or admission
 * failed), `invalid` (FORMERR, NOTIMP or REFUSED for a message that is not a plain query),
 * `dropped` (unreadable, oversized, or beyond the in-flight bound: no reply), `audited` (`--audit`:
 * not on the list, forwarded and admitted anyway, and recorded among the refused names).
 */
export type QueryOutcome = "forwarded" | "refused" | "audited" | "failed" | "invalid" | "dropped";

/** Upper bounds (seconds) of the admission latency histogram's buckets; the last is +Inf. */
export const ADMISSION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] as const;

export interface RefusedName {
  readonly count: number;
  /** The query type of the last refused query for the name. */
  readonly qtype: string;
}

export interface ProxyStats {
  readonly queries: Readonly<Record<QueryOutcome, number>>;
  /** Upstream attempts that failed: timeouts, socket errors, answers that did not match the query. */
  readonly upstreamErrors: number;
  /** Time from the upstream's answer to the end of `admit`, as a cumulative histogram. */
  readonly admission: { readonly count: number; readonly sumSeconds: number; readonly buckets: readonly number[] };
  /** Refused names and how often each was asked, at most `maxRefusedNames`; the rest are counted in `refusedOther`. */
  readonly refusedNames: ReadonlyMap<string, RefusedName>;
  readonly refusedOther: number;
  /** Replies the client was gone for (a closed UDP socket, a reset TCP connection): dropped, not logged. */
  readonly undelivered: number;
}

export interface StatsRecorder {
  count(outcome: QueryOutcome): void;
  upstreamError(): void;
  admission(seconds: number): void;
  refused(name: string, qtype: string): void;
  undelivered(): void;
  snapshot(): ProxyStats;
}

export function createStats(maxRefusedNames: number): StatsRecorder {
  const queries: Record<QueryOutcome, number> = { forwarded: 0, refused: 0, audited: 0, failed: 0, invalid: 0, dropped: 0 };
  let upstreamErrors = 0;
  const buckets: number[] = ADMISSION_BUCKETS.map(() => 0);
  let admissions = 0;
  let admissionSeconds = 0;
  const refusedNames = new Map<string, RefusedName>();
  let refusedOther = 0;
  let undelivered = 0;
  return {
    count: (outcome) => void queries[outcome]++,
    upstreamError: () => void upstreamErrors++,
    admission(seconds) {
      admissions++;
      admissionSeconds += seconds;
      ADMISSION_BUCKETS.forEach((le, i) => {
        if (seconds <= le) buckets[i] = (buckets[i] ?? 0) + 1;
      });
    },
    refused(name, qtype) {
      const key = name.toLowerCase();
      const seen = refusedNames.get(key);
      if (seen === undefined && refusedNames.size >= maxRefusedNames) refusedOther++;
      else refusedNames.set(key, { count: (seen?.count ?? 0) + 1, qtype });
    },
    undelivered: () => void undelivered++,
    snapshot: () => ({
      queries: { ...queries },
      upstreamErrors,
      admission: { count: admissions, sumSeconds: admissionSeconds, buckets: [...buckets] },
      refusedNames: new Map(refusedNames),
      refusedOther,
      undelivered,
    }),
  };
}

/**
 * At most `limit` events per `intervalMs` pass; `allow` returns how many were held back since the
 * last event that passed (to say so in that line), or undefined when this one is held back.
 */
export function rateLimiter(limit: number, intervalMs: number, now: () => number): () => number | undefined {
  let windowStart = -Infinity;
  let passed = 0;
  let held = 0;
  return () => {
    const t = now();
    if (t - windowStart >= intervalMs) [windowStart, passed] = [t, 0];
    if (passed >= limit) {
      held++;
      return undefined;
    }
    passed++;
    const report = held;
    held = 0;
    return report;
  };
}
