import { describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { healthOf, metricsHandler, pathOf, renderMetrics } from "../../src/watch/metrics.ts";
import { initialState, recordResolutions } from "../../src/watch/refresh.ts";
import type { WatchSnapshot } from "../../src/watch/watcher.ts";
import { POLICIES } from "../fixtures/policies.ts";

const schedule = { minTtlMs: 5_000, maxTtlMs: 3_600_000, graceMs: 300_000 };
const state = recordResolutions(
  initialState(["api.example", "down.example"], 0),
  [
    { host: "api.example", status: "resolved", addresses: [{ address: "203.0.113.10", family: 4, ttl: 30 }] },
    { host: "down.example", status: "failed", error: "DNS_ETIMEOUT", addresses: [] },
  ],
  0,
  schedule,
  () => 0,
);
const snapshot: WatchSnapshot = {
  state,
  hostPorts: new Map(),
  loaded: POLICIES["egress-only"]!,
  lastGoodRefresh: 1_000,
  nextWake: 5_000,
  updates: { ok: 3, failed: 1, seconds: 0.0425, refilled: 1 },
  updateError: undefined,
};
const process = { residentBytes: 52_428_800, cpuSeconds: 1.25, startTimeSeconds: 1_700_000_000 };
const status = {
  loaded: true as const,
  enforcing: true,
  allowed: [],
  dns: "any" as const,
  sets: [],
  counters: [{ name: "output_dropped", packets: 7, bytes: 420 }],
};

describe("renderMetrics", () => {
  test("reloads by result with the loaded file's hash; audited packets apart from dropped ones; denied destinations recorded, by direction", () => {
    const denied = (direction: "out" | "in") => ({ address: "203.0.113.20", protocol: "tcp", port: 80, direction, packets: 1, bytes: 60 });
    const audit = {
      ...status,
      enforcing: false,
      counters: [
        { name: "output_audited", packets: 5, bytes: 300 },
        { name: "input_dropped", packets: 2, bytes: 120 },
      ],
      denied: [denied("out"), denied("out"), denied("in")],
    };
    const text = renderMetrics({
      snapshot: undefined,
      status: audit,
      process,
      now: 0,
      reloads: { ok: 2, failed: 1, lastOk: false, sha256: "ab12" },
    });
    for (const line of [
      'domainwall_config_reloads_total{result="ok"} 2',
      'domainwall_config_reloads_total{result="error"} 1',
      "domainwall_config_last_reload_successful 0",
      'domainwall_config_info{sha256="ab12"} 1',
      'domainwall_dropped_packets_total{counter="input_dropped",direction="in"} 2',
      'domainwall_audited_packets_total{counter="output_audited",direction="out"} 5',
      'domainwall_denied_destinations{direction="out"} 2',
      'domainwall_denied_destinations{direction="in"} 1',
    ])
      expect(text).toContain(`\n${line}\n`);
    expect(text).not.toContain('dropped_packets_total{counter="output_audited"');
    expect(renderMetrics({ snapshot: undefined, status, process, now: 0 })).not.toContain("domainwall_config_");
  });

  test("the Prometheus text format, every family with HELP and TYPE", () => {
    expect(
      renderMetrics({ snapshot, status, process, now: 4_500 }),
    ).toBe(`# HELP domainwall_rules_loaded 1 once domainwall's rules are loaded.
# TYPE domainwall_rules_loaded gauge
domainwall_rules_loaded 1
# HELP domainwall_allowed_addresses Entries (addresses and CIDRs) in the loaded allow sets, by family.
# TYPE domainwall_allowed_addresses gauge
domainwall_allowed_addresses{family="ipv4"} 2
domainwall_allowed_addresses{family="ipv6"} 1
# HELP domainwall_names Names in the allowlist.
# TYPE domainwall_names gauge
domainwall_names 2
# HELP domainwall_names_failing Names whose last lookup failed; they keep their last known addresses.
# TYPE domainwall_names_failing gauge
domainwall_names_failing 1
# HELP domainwall_resolution_failures_total Failed lookups (after retries) per name.
# TYPE domainwall_resolution_failures_total counter
domainwall_resolution_failures_total{name="api.example"} 0
domainwall_resolution_failures_total{name="down.example"} 1
# HELP domainwall_seconds_since_last_successful_refresh Seconds since every name last resolved and the loaded sets matched the answers.
# TYPE domainwall_seconds_since_last_successful_refresh gauge
domainwall_seconds_since_last_successful_refresh 3.5
# HELP domainwall_ruleset_updates_total Updates of the allowed addresses in the kernel since the first load, by result.
# TYPE domainwall_ruleset_updates_total counter
domainwall_ruleset_updates_total{result="ok"} 3
domainwall_ruleset_updates_total{result="error"} 1
# HELP domainwall_ruleset_sets_refilled_total Updates the kernel refused as a change alone because a set did not hold what watch loaded (changed from outside); the sets were flushed and refilled.
# TYPE domainwall_ruleset_sets_refilled_total counter
domainwall_ruleset_sets_refilled_total 1
# HELP domainwall_ruleset_update_duration_seconds Time spent loading updates of the allowed addresses.
# TYPE domainwall_ruleset_update_duration_seconds summary
domainwall_ruleset_update_duration_seconds_sum 0.043
domainwall_ruleset_update_duration_seconds_count 4
# HELP domainwall_dropped_packets_total Packets dropped (or rejected) by domainwall's rules, by counter and direction.
# TYPE domainwall_dropped_packets_total counter
domainwall_dropped_packets_total{counter="output_dropped",direction="out"} 7
# HELP domainwall_dropped_bytes_total Bytes dropped (or rejected) by domainwall's rules, by counter and direction.
# TYPE domainwall_dropped_bytes_total counter
domainwall_dropped_bytes_total{counter="output_dropped",direction="out"} 420
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 52428800
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 1.25
# HELP process_start_time_seconds Start time of the process since the Unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1700000000
`);
  });

  test("before the first load: only rules_loaded 0 and the process", () => {
    const text = renderMetrics({ snapshot: undefined, status: { loaded: false }, process, now: 0 });
    expect(text).toContain("domainwall_rules_loaded 0\n");
    expect(text).not.toContain("domainwall_names");
    expect(text).not.toContain("dropped");
    expect(text).toContain("process_cpu_seconds_total 1.25\n");
  });

  test("label values are escaped", () => {
    const odd = { ...snapshot, state: new Map([['a"b\\c\nd', state.get("api.example")!]]) };
    expect(renderMetrics({ snapshot: odd, status: undefined, process, now: 0 })).toContain(
      'domainwall_resolution_failures_total{name="a\\"b\\\\c\\nd"} 0\n',
    );
  });
});

describe("healthOf", () => {
  test.each([
    { name: "not loaded yet", snap: undefined, now: 0, ok: false, reason: "the rules are not loaded yet" },
    { name: "loaded and on time", snap: snapshot, now: 5_000, ok: true, reason: "ok: rules loaded; 2 names, 1 failing" },
    { name: "DNS failing alone is still healthy", snap: snapshot, now: 40_000, ok: true, reason: "ok: rules loaded; 2 names, 1 failing" },
    { name: "the loop stuck", snap: snapshot, now: 45_001, ok: false, reason: "the refresh loop is 40s behind" },
    {
      name: "the last update failed",
      snap: { ...snapshot, updateError: "nft -f failed: boom" },
      now: 5_000,
      ok: false,
      reason: "the last update of the allowed addresses failed: nft -f failed: boom",
    },
  ])("$name", ({ snap, now, ok, reason }) => {
    expect(healthOf(snap, now, 40_000)).toEqual({ ok, reason });
  });
});

describe("metricsHandler", () => {
  const handle = metricsHandler({
    snapshot: () => snapshot,
    status: async () => status,
    process: () => process,
    now: () => 5_000,
    lateMs: 40_000,
  });

  test.each([
    { method: "GET", path: "/healthz", code: 200, type: "text/plain; charset=utf-8" },
    { method: "GET", path: "/metrics", code: 200, type: "text/plain; version=0.0.4; charset=utf-8" },
    { method: "GET", path: "/", code: 404, type: "text/plain; charset=utf-8" },
    { method: "POST", path: "/metrics", code: 405, type: "text/plain; charset=utf-8" },
  ])("$method $path → $code", async ({ method, path, code, type }) => {
    const response = await handle(new Request(`http://127.0.0.1:9464${path}`, { method }));
    expect(response.status).toBe(code);
    expect(response.headers.get("content-type")).toBe(type);
  });

  test("/healthz is 503 before the rules are loaded; /metrics still answers when the counters cannot be read", async () => {
    const early = metricsHandler({
      snapshot: () => undefined,
      status: () => Promise.reject(new Error("nft missing")),
      process: () => process,
      now: () => 0,
      lateMs: 40_000,
    });
    expect((await early(new Request("http://x/healthz"))).status).toBe(503);
    const metrics = await early(new Request("http://x/metrics"));
    expect([metrics.status, (await metrics.text()).includes("domainwall_rules_loaded 0")]).toEqual([200, true]);
  });
});

describe("metricsHandler behind a real server, raw requests", () => {
  // As world.ts serves it: Bun.serve with the handler and nothing else.
  const served = () => {
    const handle = metricsHandler({
      snapshot: () => undefined,
      status: async () => undefined,
      process: () => process,
      now: () => 0,
      lateMs: 40_000,
    });
    return Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: handle, idleTimeout: 30 });
  };
  /** Writes `text` on a fresh TCP connection and returns everything the server sent until it closed. */
  const raw = (port: number, text: string) =>
    new Promise<string>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      let received = "";
      socket.on("data", (data) => (received += data.toString()));
      socket.on("close", () => resolve(received));
      socket.on("error", () => resolve(received));
      socket.end(text);
    });

  test.each([
    { request: "GET /healthz HTTP/1.0\r\n\r\n", status: 503 },
    { request: "HEAD /healthz HTTP/1.0\r\n\r\n", status: 503 },
    { request: "GET /metrics HTTP/1.0\r\n\r\n", status: 200 },
    { request: "GET //a/../b HTTP/1.0\r\n\r\n", status: 404 },
    { request: "GET /healthz HTTP/1.1\r\nHost: [::1\r\nConnection: close\r\n\r\n", status: 503 },
    { request: "GET /healthz HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n", status: 503 },
    { request: "GET http://elsewhere.example/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", status: 503 },
    { request: "GET /%zz?%% HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", status: 404 },
    { request: "DELETE /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", status: 405 },
    { request: "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", status: 400 },
    { request: "GET /healthz HTTP/1.1\r\n\r\n", status: 400 },
    { request: "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", status: 505 },
    { request: "GET /healthz\r\n\r\n", status: 505 },
    // Bun's parser closes the connection on a method it does not know: no answer, and no page.
    { request: "BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", status: undefined },
  ])("$request → $status, a small plain answer, never a page or a stack trace", async ({ request, status }) => {
    const server = served();
    try {
      const response = await raw(Number(server.port), request);
      expect(response.length).toBeLessThan(1000);
      expect(response).not.toContain("<");
      expect(response).not.toMatch(/\bat \S+:\d+/);
      expect(response === "" ? undefined : Number(/^HTTP\/1\.1 (\d{3}) /.exec(response)?.[1])).toBe(status);
    } finally {
      server.stop(true);
    }
  });
});

test.each([
  { target: "/healthz", path: "/healthz" },
  { target: "/healthz?verbose=1#x", path: "/healthz" },
  { target: "http://[::1/healthz", path: "/healthz" },
  { target: "HTTP://a.example:9464/metrics?x", path: "/metrics" },
  { target: "http://a.example", path: "/" },
  { target: "//a/../b", path: "//a/../b" },
  { target: "", path: "/" },
])("pathOf($target) is $path", ({ target, path }) => {
  expect(pathOf(target)).toBe(path);
});
