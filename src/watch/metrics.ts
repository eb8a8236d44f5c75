import type { Status } from "../status.ts";
import type { ProxyReport } from "./dns-proxy.ts";
import { ADMISSION_BUCKETS } from "../proxy/stats.ts";
import type { WatchSnapshot } from "./watcher.ts";
import type { GuardStats } from "./guard.ts";
import { messageOf } from "../messages.ts";

/** The process's own numbers, as Prometheus client libraries export them. */
export interface ProcessStats {
  readonly residentBytes: number;
  readonly cpuSeconds: number;
  readonly startTimeSeconds: number;
}

/** `watch --config`: reloads by outcome, whether the last one took, and the SHA-256 of the file loaded. */
export interface ReloadStats {
  readonly ok: number;
  readonly failed: number;
  readonly lastOk: boolean;
  readonly sha256: string | undefined;
}

export interface MetricsInput {
  /** Undefined until the first ruleset is loaded. */
  readonly snapshot: WatchSnapshot | undefined;
  /** The backend's counters; undefined when they could not be read. */
  readonly status: Status | undefined;
  readonly process: ProcessStats;
  readonly now: number;
  /** Undefined without `--config`. */
  readonly reloads?: ReloadStats;
  /** `--dns-proxy`: the proxy's counts; undefined without it. */
  readonly proxy?: ProxyReport | undefined;
  /** The guard that puts the rules back when they are removed from outside (guard.ts). */
  readonly guard?: GuardStats | undefined;
}

interface Sample {
  readonly value: number;
  readonly labels?: Readonly<Record<string, string>>;
  /** `_sum`, `_count` of a summary. */
  readonly suffix?: string;
}

const escapeLabel = (value: string): string => value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
const formatValue = (value: number): string => (Number.isInteger(value) ? String(value) : String(Math.round(value * 1000) / 1000));
const labelText = (labels: Sample["labels"] = {}): string => {
  const pairs = Object.entries(labels).map(([key, value]) => `${key}="${escapeLabel(value)}"`);
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
};

const family = (name: string, type: "gauge" | "counter" | "summary" | "histogram", help: string, samples: readonly Sample[]): string[] => [
  `# HELP ${name} ${help}`,
  `# TYPE ${name} ${type}`,
  ...samples.map((s) => `${name}${s.suffix ?? ""}${labelText(s.labels)} ${formatValue(s.value)}`),
];

/** The DNS proxy's families: queries by outcome, upstream errors, admission latency, elements. */
function proxyFamilies(proxy: ProxyReport): string[] {
  const { stats } = proxy;
  const histogram: Sample[] = [
    ...ADMISSION_BUCKETS.map((le, i) => ({ suffix: "_bucket", labels: { le: String(le) }, value: stats.admission.buckets[i] ?? 0 })),
    { suffix: "_bucket", labels: { le: "+Inf" }, value: stats.admission.count },
    { suffix: "_sum", value: stats.admission.sumSeconds },
    { suffix: "_count", value: stats.admission.count },
  ];
  return [
    ...family(
      "domainwall_dns_queries_total",
      "counter",
      "DNS queries the proxy answered, by outcome: forwarded (listed, answer admitted), refused (unlisted: NXDOMAIN), audited (unlisted, forwarded anyway under --audit), failed (SERVFAIL), invalid (FORMERR/NOTIMP/REFUSED), dropped.",
      Object.entries(stats.queries).map(([outcome, value]) => ({ labels: { outcome }, value })),
    ),
    ...family(
      "domainwall_dns_replies_undelivered_total",
      "counter",
      "Replies to clients that had gone (a UDP socket closed before its answer, a TCP connection reset): dropped, not logged.",
      [{ value: stats.undelivered }],
    ),
    ...family(
      "domainwall_dns_upstream_errors_total",
      "counter",
      "Upstream attempts that failed (timeouts, socket errors, mismatched answers).",
      [{ value: stats.upstreamErrors }],
    ),
    ...family(
      "domainwall_dns_admission_duration_seconds",
      "histogram",
      "Time from an upstream's answer until its addresses are in the kernel sets.",
      histogram,
    ),
    ...family("domainwall_dns_admitted_elements", "gauge", "Addresses in the proxy's timeout sets now, by family.", [
      { labels: { family: "ipv4" }, value: proxy.elements.v4 },
      { labels: { family: "ipv6" }, value: proxy.elements.v6 },
    ]),
    ...family("domainwall_dns_elements_admitted_total", "counter", "Addresses that entered the proxy's timeout sets.", [
      { value: proxy.admittedTotal },
    ]),
    ...family("domainwall_dns_elements_expired_total", "counter", "Addresses whose timeout ran out.", [{ value: proxy.expiredTotal }]),
    ...family("domainwall_dns_refused_addresses_total", "counter", "Answer addresses never admitted (loopback, link-local, metadata...).", [
      { value: proxy.refusedAddresses },
    ]),
  ];
}

/** `output_dropped` → out, `input_audited_v4` → in; `forward_dropped` → out (the same egress policy, see chainsOf). */
const directionOf = (counter: string): string => (counter.startsWith("input") ? "in" : "out");

/** The Prometheus text exposition format (version 0.0.4). Pure: same input, same text. */
export function renderMetrics({ snapshot, status, process, now, reloads, proxy, guard }: MetricsInput): string {
  const lines = [
    // The kernel's answer at this scrape when there is one: a table deleted from outside is 0 until restored.
    ...family("domainwall_rules_loaded", "gauge", "1 once domainwall's rules are loaded.", [
      { value: snapshot === undefined || status?.loaded === false ? 0 : 1 },
    ]),
  ];
  if (snapshot !== undefined) {
    const names = [...snapshot.state];
    lines.push(
      ...family("domainwall_allowed_addresses", "gauge", "Entries (addresses and CIDRs) in the loaded allow sets, by family.", [
        { labels: { family: "ipv4" }, value: snapshot.loaded.allowV4.length },
        { labels: { family: "ipv6" }, value: snapshot.loaded.allowV6.length },
      ]),
      ...family("domainwall_names", "gauge", "Names in the allowlist.", [{ value: names.length }]),
      ...family("domainwall_names_failing", "gauge", "Names whose last lookup failed; they keep their last known addresses.", [
        { value: names.filter(([, n]) => n.failures > 0).length },
      ]),
      ...family(
        "domainwall_resolution_failures_total",
        "counter",
        "Failed lookups (after retries) per name.",
        names.map(([name, n]) => ({ labels: { name }, value: n.failuresTotal })),
      ),
      ...family(
        "domainwall_seconds_since_last_successful_refresh",
        "gauge",
        "Seconds since every name last resolved and the loaded sets matched the answers.",
        [{ value: Math.max(0, (now - snapshot.lastGoodRefresh) / 1000) }],
      ),
      ...family(
        "domainwall_ruleset_updates_total",
        "counter",
        "Updates of the allowed addresses in the kernel since the first load, by result.",
        [
          { labels: { result: "ok" }, value: snapshot.updates.ok },
          { labels: { result: "error" }, value: snapshot.updates.failed },
        ],
      ),
      ...family(
        "domainwall_ruleset_sets_refilled_total",
        "counter",
        "Updates the kernel refused as a change alone because a set did not hold what watch loaded (changed from outside); the sets were flushed and refilled.",
        [{ value: snapshot.updates.refilled }],
      ),
      ...family("domainwall_ruleset_update_duration_seconds", "summary", "Time spent loading updates of the allowed addresses.", [
        { suffix: "_sum", value: snapshot.updates.seconds },
        { suffix: "_count", value: snapshot.updates.ok + snapshot.updates.failed },
      ]),
    );
  }
  if (reloads !== undefined) {
    lines.push(
      ...family(
        "domainwall_config_reloads_total",
        "counter",
        "Reloads of the --config file, by result (error: the loaded policy stayed).",
        [
          { labels: { result: "ok" }, value: reloads.ok },
          { labels: { result: "error" }, value: reloads.failed },
        ],
      ),
      ...family(
        "domainwall_config_last_reload_successful",
        "gauge",
        "1 when the last reload of the --config file (or the start) succeeded.",
        [{ value: reloads.lastOk ? 1 : 0 }],
      ),
      ...(reloads.sha256 === undefined
        ? []
        : family("domainwall_config_info", "gauge", "The SHA-256 of the --config file loaded now.", [
            { labels: { sha256: reloads.sha256 }, value: 1 },
          ])),
    );
  }
  if (status?.loaded) {
    const dropped = status.counters.filter((c) => c.name.includes("_dropped"));
    const audited = status.counters.filter((c) => c.name.includes("_audited"));
    const sample = (value: (c: (typeof dropped)[number]) => number) => (c: (typeof dropped)[number]) => ({
      labels: { counter: c.name, direction: directionOf(c.name) },
      value: value(c),
    });
    lines.push(
      ...family(
        "domainwall_dropped_packets_total",
        "counter",
        "Packets dropped (or rejected) by domainwall's rules, by counter and direction.",
        dropped.map(sample((c) => c.packets)),
      ),
      ...family(
        "domainwall_dropped_bytes_total",
        "counter",
        "Bytes dropped (or rejected) by domainwall's rules, by counter and direction.",
        dropped.map(sample((c) => c.bytes)),
      ),
      ...(audited.length === 0
        ? []
        : family(
            "domainwall_audited_packets_total",
            "counter",
            "Audit mode: packets the rules would have dropped and let through, by counter and direction.",
            audited.map(sample((c) => c.packets)),
          )),
    );
    if (status.denied !== undefined) {
      const recorded = (direction: string) => status.denied?.filter((d) => d.direction === direction).length ?? 0;
      lines.push(
        ...family(
          "domainwall_denied_destinations",
          "gauge",
          "Denied destinations (address, protocol, port) the kernel holds a record of now, by direction.",
          [
            { labels: { direction: "out" }, value: recorded("out") },
            { labels: { direction: "in" }, value: recorded("in") },
          ],
        ),
      );
    }
  }
  if (proxy !== undefined) lines.push(...proxyFamilies(proxy));
  if (guard !== undefined) {
    lines.push(
      ...family(
        "domainwall_ruleset_restored_total",
        "counter",
        "Times the whole policy was loaded again because a part of it was removed or changed from outside.",
        [{ value: guard.restored }],
      ),
      ...family("domainwall_ruleset_restore_failures_total", "counter", "Checks or restores of the rules that failed (each is retried).", [
        { value: guard.failed },
      ]),
    );
  }
  lines.push(
    ...family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", [{ value: process.residentBytes }]),
    ...family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", [{ value: process.cpuSeconds }]),
    ...family("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch in seconds.", [
      { value: process.startTimeSeconds },
    ]),
  );
  return `${lines.join("\n")}\n`;
}

/**
 * Healthy once the rules are loaded, while the loop keeps to its schedule (it is not stuck past
 * `lateMs`) and the last kernel update succeeded. DNS failures alone do not make it unhealthy: the
 * last known addresses stay loaded and a restart would not bring DNS back; alert on the metrics.
 */
export function healthOf(snapshot: WatchSnapshot | undefined, now: number, lateMs: number): { ok: boolean; reason: string } {
  if (snapshot === undefined) return { ok: false, reason: "the rules are not loaded yet" };
  if (snapshot.updateError !== undefined)
    return { ok: false, reason: `the last update of the allowed addresses failed: ${snapshot.updateError}` };
  const late = now - snapshot.nextWake;
  if (late > lateMs) return { ok: false, reason: `the refresh loop is ${Math.round(late / 1000)}s behind` };
  const failing = [...snapshot.state.values()].filter((n) => n.failures > 0).length;
  return { ok: true, reason: `ok: rules loaded; ${snapshot.state.size} names, ${failing} failing` };
}

export interface MetricsSource {
  readonly snapshot: () => WatchSnapshot | undefined;
  /** The backend's counters; undefined before a backend is chosen. */
  readonly status: () => Promise<Status | undefined>;
  readonly process: () => ProcessStats;
  readonly now: () => number;
  readonly reloads?: () => ReloadStats | undefined;
  /** How far behind schedule the loop may be before /healthz fails. */
  readonly lateMs: number;
  readonly proxy?: () => ProxyReport | undefined;
  /** What of the loaded policy the kernel does not hold, read at each /healthz request (Backend.missing). */
  readonly missing?: () => Promise<readonly string[]>;
  readonly guard?: () => GuardStats | undefined;
}

const PLAIN = "text/plain; charset=utf-8";
const reply = (body: string, status = 200, type = PLAIN) => new Response(body, { status, headers: { "content-type": type } });

/**
 * The path of a request target: origin form (`/healthz?x`) or absolute form (`http://h/healthz`).
 * Not `new URL(request.url)`: Bun builds that URL from the Host header, so a request without one
 * (HTTP/1.0) or with a malformed one makes it throw.
 */
export const pathOf = (target: string): string => /^(?:[a-z][a-z0-9+.-]*:\/\/[^/?#]*)?([^?#]*)/i.exec(target)?.[1] || "/";

/**
 * `GET /healthz` and `GET /metrics`; anything else is 404, other methods 405. Whatever the request,
 * the answer is a small plain text: a failure inside is a plain 500, never the runtime's error page.
 */
export function metricsHandler(source: MetricsSource): (request: Request) => Promise<Response> {
  const answer = async (request: Request): Promise<Response> => {
    const path = pathOf(request.url);
    if (request.method !== "GET" && request.method !== "HEAD") return reply("method not allowed\n", 405);
    if (path === "/healthz") {
      const health = healthOf(source.snapshot(), source.now(), source.lateMs);
      if (!health.ok || source.missing === undefined) return reply(`${health.reason}\n`, health.ok ? 200 : 503);
      const missing = await source.missing().then(
        (parts) => (parts.length === 0 ? undefined : `domainwall's rules are not all loaded: missing ${parts.join(", ")}`),
        (error: unknown) => `cannot read domainwall's rules from the kernel: ${messageOf(error)}`,
      );
      return missing === undefined ? reply(`${health.reason}\n`) : reply(`${missing}\n`, 503);
    }
    if (path === "/metrics") {
      const status = await Promise.resolve()
        .then(source.status)
        .catch(() => undefined);
      const reloads = source.reloads?.();
      return reply(
        renderMetrics({
          snapshot: source.snapshot(),
          status,
          process: source.process(),
          now: source.now(),
          proxy: source.proxy?.(),
          guard: source.guard?.(),
          ...(reloads !== undefined && { reloads }),
        }),
        200,
        "text/plain; version=0.0.4; charset=utf-8",
      );
    }
    return reply("not found: try /healthz or /metrics\n", 404);
  };
  return (request) => answer(request).catch(() => reply("internal error\n", 500));
}
