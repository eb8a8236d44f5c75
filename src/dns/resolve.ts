import type { Family } from "../net/ip.ts";
import { realSetTimer, type SetTimer } from "../timer.ts";

/** One DNS answer as the resolver returned it: not yet validated. */
export interface Answer {
  readonly address: string;
  readonly ttl: number;
}

/**
 * The DNS seam: resolve one family of one name. Rejects with an error whose `code` is the resolver's
 * (`DNS_ENOTFOUND`, `DNS_ESERVFAIL`, ...). The real one wraps `Bun.dns.lookup` (dns-lookup.ts).
 */
export type Lookup = (host: string, family: Family) => Promise<readonly Answer[]>;

export interface ResolveOptions {
  readonly lookup: Lookup;
  /** Deadline for the whole resolution; names not done by then have failed. */
  readonly deadlineMs: number;
  /** At most this many lookups in flight. */
  readonly concurrency?: number;
  /** Deadline of a single lookup attempt. */
  readonly attemptTimeoutMs?: number;
  /** Attempts per lookup for transient failures (timeout, SERVFAIL, refused). */
  readonly attempts?: number;
  /** First retry delay; doubles on each further retry. */
  readonly backoffMs?: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Runs each attempt's deadline; `setTimeout` by default. */
  readonly setTimer?: SetTimer;
}

export interface ResolvedAddress {
  readonly address: string;
  readonly family: Family;
  readonly ttl: number;
}

/**
 * - `resolved`: at least one address;
 * - `empty`: the name does not exist or has no A/AAAA records (NXDOMAIN, NODATA);
 * - `failed`: lookups kept failing after retries, or the deadline passed; `failedFamilies` says
 *   which (the other family answered: `addresses` holds what it returned, if anything). Without
 *   `failedFamilies`, every family is taken as failed.
 */
export type HostResolution =
  | { readonly host: string; readonly status: "resolved"; readonly addresses: readonly ResolvedAddress[] }
  | { readonly host: string; readonly status: "empty" }
  | {
      readonly host: string;
      readonly status: "failed";
      readonly error: string;
      readonly addresses: readonly ResolvedAddress[];
      readonly failedFamilies?: readonly Family[];
    };

/** Answers that mean "no such name or no records of this type": not worth retrying. */
const NOT_FOUND = new Set(["DNS_ENOTFOUND", "DNS_ENODATA", "ENOTFOUND", "ENODATA", "DNS_ENONAME"]);
/** Failures worth another attempt. */
const TRANSIENT = new Set([
  "DNS_ETIMEOUT",
  "DNS_ESERVFAIL",
  "DNS_EREFUSED",
  "DNS_EAI_AGAIN",
  "DNS_ECONNREFUSED",
  "ETIMEOUT",
  "ESERVFAIL",
  "EREFUSED",
  "EAI_AGAIN",
  "ECONNREFUSED",
]);

type FamilyOutcome =
  | { readonly kind: "answers"; readonly answers: readonly Answer[] }
  | { readonly kind: "not-found" }
  | { readonly kind: "failed"; readonly error: string };

const codeOf = (error: unknown): string => (typeof error === "object" && error !== null && "code" in error ? String(error.code) : "");

/** A timeout, SERVFAIL, refusal or unreachable server: worth another try. */
export const isTransient = (error: unknown): boolean => TRANSIENT.has(codeOf(error));

const describe = (error: unknown): string => {
  const code = codeOf(error);
  const message = error instanceof Error ? error.message : String(error);
  return code !== "" && !message.includes(code) ? `${code}: ${message}` : message;
};

class AttemptTimeout extends Error {
  readonly code = "ETIMEOUT";
}

/** A tiny semaphore: at most `limit` tasks run at once. */
function limiter(limit: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= limit) await new Promise<void>((resume) => waiting.push(resume));
    active++;
    try {
      return await task();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/**
 * Resolve every name, A and AAAA, concurrently (capped), each lookup with its own deadline and
 * retries with exponential backoff for transient failures, all under one overall deadline.
 * Never rejects: each name gets a `HostResolution`, in input order.
 */
export async function resolveHosts(hosts: readonly string[], options: ResolveOptions): Promise<HostResolution[]> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => Bun.sleep(ms));
  const setTimer = options.setTimer ?? realSetTimer;
  const attempts = options.attempts ?? 3;
  const attemptTimeoutMs = options.attemptTimeoutMs ?? 2000;
  const backoffMs = options.backoffMs ?? 100;
  const deadline = now() + options.deadlineMs;
  const limit = limiter(options.concurrency ?? 64);

  /** One lookup against its deadline: whichever comes first settles it (one promise, not a race of three). */
  const attempt = (host: string, family: Family, budgetMs: number): Promise<readonly Answer[]> =>
    new Promise((resolve, reject) => {
      const answer = options.lookup(host, family); // a lookup that throws at once rejects here, before any timer
      const cancel = setTimer(budgetMs, () => reject(new AttemptTimeout(`no answer within ${Math.round(budgetMs)} ms`)));
      answer.then(
        (answers) => (cancel(), resolve(answers)),
        (error: unknown) => (cancel(), reject(error)),
      );
    });

  const lookupFamily = async (host: string, family: Family): Promise<FamilyOutcome> => {
    let lastError = "";
    for (let n = 1; n <= attempts; n++) {
      const budget = Math.min(attemptTimeoutMs, deadline - now());
      if (budget <= 0)
        return { kind: "failed", error: `resolution deadline of ${options.deadlineMs} ms passed${lastError && ` (${lastError})`}` };
      try {
        const answers = await limit(() => attempt(host, family, budget));
        return answers.length > 0 ? { kind: "answers", answers } : { kind: "not-found" };
      } catch (error) {
        const code = codeOf(error);
        if (NOT_FOUND.has(code)) return { kind: "not-found" };
        lastError = describe(error);
        if (!TRANSIENT.has(code)) return { kind: "failed", error: lastError };
      }
      if (n < attempts) await sleep(Math.min(backoffMs * 2 ** (n - 1), Math.max(0, deadline - now())));
    }
    return { kind: "failed", error: `${lastError} (after ${attempts} attempts)` };
  };

  return Promise.all(
    hosts.map(async (host): Promise<HostResolution> => {
      const [v4, v6] = await Promise.all([lookupFamily(host, 4), lookupFamily(host, 6)]);
      const addresses = [
        ...(v4.kind === "answers" ? v4.answers.map((a) => ({ ...a, family: 4 as const })) : []),
        ...(v6.kind === "answers" ? v6.answers.map((a) => ({ ...a, family: 6 as const })) : []),
      ];
      const failures = [
        { family: 4 as const, outcome: v4 },
        { family: 6 as const, outcome: v6 },
      ].flatMap(({ family, outcome }) => (outcome.kind === "failed" ? [{ family, error: outcome.error }] : []));
      const [failure] = failures;
      if (failure !== undefined)
        return { host, status: "failed", error: failure.error, addresses, failedFamilies: failures.map((f) => f.family) };
      return addresses.length > 0 ? { host, status: "resolved", addresses } : { host, status: "empty" };
    }),
  );
}
