/**
 * What the proxy does with one client message, without sockets: check it, refuse an unlisted
 * name at once, forward a listed one, admit the answer's addresses, and only then give the answer.
 */
import { answerAddresses, EDE, encodeReply, RCODE, readQuery, typeName, withId, type AnswerAddress, type Query } from "./message.ts";
import { keyedLimiter } from "./name-limiter.ts";
import type { NameMatcher } from "./match.ts";
import type { StatsRecorder } from "./stats.ts";
import { clampTtls } from "./ttl.ts";
import type { ExchangeFn, Transport, Upstream } from "./upstream.ts";

/** What an answer told a client, handed to `admit` before the client sees it. */
export interface Admission {
  /** The query name, lower case, without the trailing dot. */
  readonly name: string;
  readonly qtype: string;
  /** The list entry that allowed the name (`api.example.com`, `*.example.com`…). */
  readonly entry: string;
  /** The name and the CNAME targets the addresses were reached through. */
  readonly chain: readonly string[];
  /** Validated, canonical, never empty. */
  readonly addresses: readonly AnswerAddress[];
}

/** A structured log line: consola's loggers take these (`log.warn({ message, name, qtype })`). */
export type LogEntry = { readonly message: string } & Readonly<Record<string, string | number>>;
export interface ProxyLog {
  info(entry: LogEntry): void;
  warn(entry: LogEntry): void;
  error(entry: LogEntry): void;
}

export interface HandlerDeps {
  readonly match: NameMatcher;
  /** Puts the addresses into the kernel; a rejection fails the query closed (SERVFAIL). */
  readonly admit: (admission: Admission) => Promise<void>;
  readonly exchange: ExchangeFn;
  readonly upstreams: readonly Upstream[];
  /** Per attempt. */
  readonly timeoutMs: number;
  /** Attempts per query, going through the upstreams in order and round again. */
  readonly attempts: number;
  readonly log: ProxyLog;
  /** Milliseconds, for the admission latency. */
  readonly now: () => number;
  readonly stats: StatsRecorder;
  /** Whether a refused name or a failure may be logged now (and how many were not): see `rateLimiter`. */
  readonly mayLog: () => number | undefined;
  /** `--audit`: forward an unlisted name (and admit its answer) instead of refusing it; asked per query (a reload may change it). */
  readonly audit?: () => boolean;
  /** Every TTL of a forwarded answer is cut to this (see ttl.ts); undefined: passed on as the upstream gave them. */
  readonly maxAnswerTtlSeconds?: number;
}

/**
 * `.invalid` never resolves (RFC 6761): NXDOMAIN at once, even in audit mode, and not listed among
 * the refused names (the watch's own self-check asks `domainwall-self-check.invalid`).
 */
const INVALID = /(^|\.)invalid\.?$/i;

/** The entry an unlisted name is admitted under in audit mode. */
export const AUDIT_ENTRY = "(unlisted: audit mode)";

/** Only answers to these types feed admission: A, AAAA, SVCB, HTTPS. */
const ADMITTED_TYPES = new Set([1, 28, 64, 65]);

const held = (count: number | undefined) => (count ? ` (${count} similar lines held back)` : "");

/** What a client that sent EDNS is told with an unlisted name's NXDOMAIN (dig prints it). */
const BLOCKED = { code: EDE.BLOCKED, text: "not in the domainwall allowlist" } as const;
/** ...and with the SERVFAIL of an answer whose addresses could not be admitted. */
const NOT_ADMITTED = { code: EDE.OTHER, text: "domainwall could not admit the answer's addresses into the firewall" } as const;
/** One line per refused name at most this often (and at most this many names remembered). */
const REFUSED_NAME_INTERVAL_MS = 60_000;
const REFUSED_NAMES_REMEMBERED = 4096;

export function createHandler(deps: HandlerDeps): (bytes: Uint8Array, transport: Transport) => Promise<Uint8Array | undefined> {
  const { stats, log } = deps;
  const byName = keyedLimiter(REFUSED_NAME_INTERVAL_MS, REFUSED_NAMES_REMEMBERED, deps.now);
  /** A refused name's line: once per name per minute, within the overall limit; with what was held back. */
  const mayLogRefused = (name: string): string | undefined => {
    const again = byName(name.toLowerCase());
    const report = again === undefined ? undefined : deps.mayLog();
    if (report === undefined) return undefined;
    return `${again ? ` (asked ${again} more times since its last line)` : ""}${held(report)}`;
  };

  /** The first answer from the upstreams, in order, within `attempts` tries. */
  async function forward(query: Query, transport: Transport) {
    const errors: string[] = [];
    for (let attempt = 0; attempt < deps.attempts && deps.upstreams.length > 0; attempt++) {
      const upstream = deps.upstreams[attempt % deps.upstreams.length] as Upstream;
      const result = await deps.exchange(query, upstream, transport, deps.timeoutMs);
      if (result.ok) return result;
      stats.upstreamError();
      errors.push(`${upstream.address} port ${upstream.port}: ${result.error}`);
    }
    return { ok: false as const, error: errors.join("; ") || "no upstream resolver" };
  }

  /** `counted`: false when the caller counted the query already (audit mode). */
  async function answer(query: Query, entry: string, transport: Transport, counted = true): Promise<Uint8Array> {
    const name = query.name.toLowerCase();
    const qtype = typeName(query.type);
    const servfail = (message: string, level: "warn" | "error", ede?: typeof NOT_ADMITTED) => {
      stats.count("failed");
      const report = deps.mayLog();
      if (report !== undefined) log[level]({ message: `${message}${held(report)}`, name, qtype });
      return encodeReply(query, RCODE.SERVFAIL, ede);
    };
    const result = await forward(query, transport);
    if (!result.ok) return servfail(`${name} ${qtype}: no upstream answered, SERVFAIL: ${result.error}`, "warn");
    const { answer } = result;
    if (answer.rcode === RCODE.NOERROR && !answer.truncated && ADMITTED_TYPES.has(query.type)) {
      const { chain, addresses } = answerAddresses(name, answer.records);
      if (addresses.length > 0) {
        const started = deps.now();
        try {
          await deps.admit({ name, qtype, entry, chain, addresses });
        } catch (error) {
          return servfail(
            `${name} ${qtype}: admitting ${addresses.map((a) => a.address).join(", ")} failed, SERVFAIL: ${error instanceof Error ? error.message : String(error)}`,
            "error",
            NOT_ADMITTED,
          );
        }
        stats.admission((deps.now() - started) / 1000);
      }
    }
    const bytes = deps.maxAnswerTtlSeconds === undefined ? result.bytes : clampTtls(result.bytes, deps.maxAnswerTtlSeconds);
    if (bytes === undefined) return servfail(`${name} ${qtype}: an answer whose records cannot be read, SERVFAIL`, "warn");
    if (counted) stats.count("forwarded");
    return withId(bytes, query.id);
  }

  return async (bytes, transport) => {
    const check = readQuery(bytes);
    if (check.kind === "drop") {
      stats.count("dropped");
      return undefined;
    }
    if (check.kind === "reply") {
      stats.count("invalid");
      return check.reply;
    }
    const { query } = check;
    const entry = query.plain ? deps.match(query.name) : undefined;
    if (entry !== undefined) return answer(query, entry, transport);
    const qtype = typeName(query.type);
    if (INVALID.test(query.name)) {
      stats.count("refused");
      return encodeReply(query, RCODE.NXDOMAIN);
    }
    stats.refused(query.name, qtype);
    if (query.plain && deps.audit?.()) {
      stats.count("audited");
      const report = mayLogRefused(query.name);
      if (report !== undefined)
        log.info({
          message: `would refuse ${query.name} ${qtype} (audit mode): forwarded, its addresses admitted${report}`,
          event: "would-refuse",
          name: query.name.toLowerCase(),
          qtype,
        });
      return answer(query, AUDIT_ENTRY, transport, false);
    }
    stats.count("refused");
    const report = mayLogRefused(query.name);
    if (report !== undefined)
      log.info({
        message: `refused ${query.name} ${qtype}: not in the allowlist, NXDOMAIN${report}`,
        event: "refused",
        name: query.name.toLowerCase(),
        qtype,
      });
    return encodeReply(query, RCODE.NXDOMAIN, BLOCKED);
  };
}
