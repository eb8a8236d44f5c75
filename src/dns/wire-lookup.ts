import { encode } from "dns-packet";
import type { Family } from "../net/ip.ts";
import { answerAddresses, RCODE, readQuery, type Query } from "../proxy/message.ts";
import { exchange as realExchange, type ExchangeFn, type Upstream } from "../proxy/upstream.ts";
import { parseResolvConf } from "./resolv-conf.ts";
import type { Lookup } from "./resolve.ts";

/**
 * A lookup that asks resolv.conf's servers itself and keeps only the addresses on the CNAME chain
 * from the name asked (proxy/message.ts answerAddresses), as getaddrinfo and the DNS proxy do.
 * Bun's c-ares lookup returns every A/AAAA record of the answer section: `other.unlisted.x A ...`
 * in the answer for `stray.x` would be allowed for `stray.x` (checked in the lab). resolv.conf's
 * `search`/`domain` and `ndots` are followed as the resolver library does, so a name resolves to
 * what the apps get; the TTLs are the answer's.
 */

/** How long one server (but the last) gets for one question before the next server is asked. */
const SERVER_TIMEOUT_MS = 1000;
/** A lookup stops asking after this long (resolveHosts' own deadline usually ends it sooner). */
const LOOKUP_BUDGET_MS = 4000;
/** resolv.conf is read again when older than this: an edit is seen within a second. */
const RESOLV_CONF_REUSE_MS = 1000;
const MAX_SEARCH = 8;
const RD = 0x0100;

export interface ResolvConfView {
  readonly servers: readonly Upstream[];
  readonly search: readonly string[];
  readonly ndots: number;
}

/** The servers, search list and ndots of a resolv.conf (the last `search` or `domain` line wins, as in resolv.conf(5)). */
export function resolvConfView(text: string): ResolvConfView {
  let search: string[] = [];
  let ndots = 1;
  for (const line of text.split("\n")) {
    const [keyword, ...rest] = line
      .replace(/[#;].*$/, "")
      .trim()
      .split(/\s+/);
    if (keyword === "search" || keyword === "domain") search = rest.filter((d) => d !== "" && d !== ".").slice(0, MAX_SEARCH);
    if (keyword === "options")
      for (const option of rest) {
        const match = /^ndots:(\d+)$/.exec(option);
        if (match?.[1] !== undefined) ndots = Math.min(Number(match[1]), 15);
      }
  }
  const servers = parseResolvConf(text).servers.map((s) => ({ address: s.text, port: 53 }));
  return { servers, search: search.map((d) => d.replace(/\.$/, "")), ndots };
}

/** The names to ask, in order: the name as given first when it has `ndots` dots or more (or ends with a dot), else last. */
export function candidates(host: string, view: Pick<ResolvConfView, "search" | "ndots">): string[] {
  if (host.endsWith(".")) return [host.slice(0, -1)];
  const searched = view.search.map((domain) => `${host}.${domain}`);
  const dots = host.split(".").length - 1;
  return dots >= view.ndots ? [host, ...searched] : [...searched, host];
}

const dnsError = (code: string, message: string) => Object.assign(new Error(message), { code });

/** Questions already encoded: `watch` asks the same names every cycle. Bounded; cleared when full. */
const QUESTIONS_KEPT = 4096;
const questions = new Map<string, Query>();

function questionOf(name: string, family: Family): Query {
  const key = `${family} ${name}`;
  const known = questions.get(key);
  if (known !== undefined) return known;
  if (questions.size >= QUESTIONS_KEPT) questions.clear();
  const query = encodeQuestion(name, family);
  questions.set(key, query);
  return query;
}

function encodeQuestion(name: string, family: Family): Query {
  const bytes = encode({ type: "query", id: 0, flags: RD, questions: [{ type: family === 4 ? "A" : "AAAA", name, class: "IN" }] });
  const read = readQuery(new Uint8Array(bytes));
  if (read.kind !== "query") throw dnsError("DNS_EBADNAME", `cannot ask for ${JSON.stringify(name)}: ${read.reason}`);
  return read.query;
}

export interface WireLookupOptions {
  readonly exchange?: ExchangeFn;
  /** resolv.conf's text (undefined: none). */
  readonly readResolvConf: () => Promise<string | undefined>;
  readonly now?: () => number;
}

/** See the module comment. Errors carry c-ares' codes (DNS_ENOTFOUND, DNS_ESERVFAIL, DNS_EREFUSED, DNS_ETIMEOUT), as resolveHosts expects. */
export function wireLookup({ exchange = realExchange, readResolvConf, now = () => performance.now() }: WireLookupOptions): Lookup {
  let cached: { view: ResolvConfView; at: number } | undefined;
  const view = async () => {
    if (cached === undefined || now() - cached.at > RESOLV_CONF_REUSE_MS)
      cached = { view: resolvConfView((await readResolvConf()) ?? ""), at: now() };
    return cached.view;
  };
  return async (host, family) => {
    const { search, ndots, ...listed } = await view();
    // No nameserver line: the local host, as the resolver library and c-ares assume.
    const servers = listed.servers.length > 0 ? listed.servers : [{ address: "127.0.0.1", port: 53 }];
    const started = now();
    let transient: { code: string; message: string } | undefined;
    for (const name of candidates(host, { search, ndots })) {
      const query = questionOf(name, family);
      let settled = false;
      for (const [i, server] of servers.entries()) {
        const left = LOOKUP_BUDGET_MS - (now() - started);
        if (left <= 0) break;
        // The last server may take what is left: a cold recursive lookup can take longer than a second.
        const timeoutMs = i === servers.length - 1 ? Math.max(left, SERVER_TIMEOUT_MS) : SERVER_TIMEOUT_MS;
        let result = await exchange(query, server, "udp", timeoutMs);
        if (result.ok && result.answer.truncated) result = await exchange(query, server, "tcp", timeoutMs);
        if (!result.ok) {
          transient = { code: "DNS_ETIMEOUT", message: `${server.address}: ${result.error}` };
          continue;
        }
        const { rcode, records } = result.answer;
        if (rcode === RCODE.SERVFAIL || rcode === RCODE.REFUSED) {
          const code = rcode === RCODE.SERVFAIL ? "DNS_ESERVFAIL" : "DNS_EREFUSED";
          transient = { code, message: `${server.address} answered ${code.slice(5)} for ${name}` };
          continue;
        }
        settled = true;
        if (rcode !== RCODE.NOERROR) break; // NXDOMAIN (or another final answer): the next candidate
        const type = family === 4 ? "A" : "AAAA";
        const found = answerAddresses(name, records).addresses.filter((a) => a.record === type);
        if (found.length > 0) return found.map((a) => ({ address: a.address, ttl: a.ttl }));
        break; // NODATA: the next candidate, as the resolver library does
      }
      if (!settled && now() - started > LOOKUP_BUDGET_MS) break;
    }
    if (transient !== undefined) throw dnsError(transient.code, transient.message);
    throw dnsError("DNS_ENOTFOUND", `${host}: no such name or no ${family === 4 ? "A" : "AAAA"} record`);
  };
}
