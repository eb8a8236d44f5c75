import type { Outcome } from "./admit.ts";

/** Latency buckets (seconds) of the review histogram: the API server's timeout is seconds, the target milliseconds. */
export const REVIEW_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] as const;

/** `error`: the review threw (a bug, or input that got past the checks); answered with an AdmissionReview error. */
export type RequestOutcome = Outcome | "bad-request" | "error" | "busy";

/** The webhook's counters: reviews by outcome, their latency, and reloads of the config and certificate. */
export interface WebhookStats {
  readonly requests: Record<RequestOutcome, number>;
  readonly buckets: number[];
  count: number;
  sumSeconds: number;
  readonly reloads: { config: { ok: number; failed: number }; certificate: { ok: number; failed: number } };
}

export const emptyStats = (): WebhookStats => ({
  requests: { injected: 0, unchanged: 0, hardened: 0, refused: 0, skipped: 0, invalid: 0, "bad-request": 0, error: 0, busy: 0 },
  buckets: REVIEW_BUCKETS.map(() => 0),
  count: 0,
  sumSeconds: 0,
  reloads: { config: { ok: 0, failed: 0 }, certificate: { ok: 0, failed: 0 } },
});

export function observe(stats: WebhookStats, outcome: RequestOutcome, seconds: number): void {
  stats.requests[outcome]++;
  stats.count++;
  stats.sumSeconds += seconds;
  REVIEW_BUCKETS.forEach((le, i) => {
    if (seconds <= le) stats.buckets[i]!++;
  });
}

/** The Prometheus text exposition format (0.0.4). Pure. */
export function renderWebhookMetrics(stats: WebhookStats): string {
  const lines = [
    "# HELP domainwall_webhook_requests_total AdmissionReviews answered, by outcome.",
    "# TYPE domainwall_webhook_requests_total counter",
    ...Object.entries(stats.requests).map(([outcome, n]) => `domainwall_webhook_requests_total{outcome="${outcome}"} ${n}`),
    "# HELP domainwall_webhook_request_duration_seconds Time from a request's arrival until its answer is ready.",
    "# TYPE domainwall_webhook_request_duration_seconds histogram",
    ...REVIEW_BUCKETS.map((le, i) => `domainwall_webhook_request_duration_seconds_bucket{le="${le}"} ${stats.buckets[i]}`),
    `domainwall_webhook_request_duration_seconds_bucket{le="+Inf"} ${stats.count}`,
    `domainwall_webhook_request_duration_seconds_sum ${Math.round(stats.sumSeconds * 1e6) / 1e6}`,
    `domainwall_webhook_request_duration_seconds_count ${stats.count}`,
    "# HELP domainwall_webhook_reloads_total Reloads of the config file and the certificate, by result.",
    "# TYPE domainwall_webhook_reloads_total counter",
    ...(["config", "certificate"] as const).flatMap((what) => [
      `domainwall_webhook_reloads_total{file="${what}",result="ok"} ${stats.reloads[what].ok}`,
      `domainwall_webhook_reloads_total{file="${what}",result="error"} ${stats.reloads[what].failed}`,
    ]),
  ];
  return `${lines.join("\n")}\n`;
}
