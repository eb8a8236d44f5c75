import type { InjectionSettings } from "../config/webhook.ts";
import { reviewPod } from "./admit.ts";
import { observe, type RequestOutcome, type WebhookStats } from "./metrics.ts";
import { MAX_REVIEW_BYTES, readReview, renderResponse } from "./review.ts";

export interface HandlerDeps {
  /** The injection settings loaded now (the config file is reloaded live). */
  readonly settings: () => InjectionSettings;
  readonly version: string;
  readonly now: () => number;
  readonly stats: WebhookStats;
  /** Bytes of request bodies held now, across all requests, and the most they may hold: past it, a 503. */
  readonly bodies: BodyBudget;
  /** One log line per decision. */
  readonly decided: (outcome: RequestOutcome, fields: Readonly<Record<string, unknown>>) => void;
}

/**
 * Past the cap, a body is still read (and thrown away) up to this size before the 400 goes out: a
 * server that answers and closes while the client is still sending resets the connection, and the
 * client sees a failed request instead of the 400. Larger bodies are answered at once.
 */
const DISCARD_LIMIT = 16 * 1024 * 1024;

export interface BodyBudget {
  readonly limit: number;
  used: number;
}
/** Ten reviews of the largest size at once; reviews are kilobytes, so only a flood of unfinished bodies reaches it. */
export const BODY_BUDGET_BYTES = 32 * 1024 * 1024;
export const bodyBudget = (limit = BODY_BUDGET_BYTES): BodyBudget => ({ limit, used: 0 });

/** Thrown when the bodies held at once would pass the budget. */
class Busy extends Error {}

/**
 * The body as text, or undefined when it passes `max` bytes (nothing past `max` is kept). What is
 * kept counts against `budget` until the body is read; throws Busy past it.
 */
async function boundedText(request: Request, max: number, budget: BodyBudget): Promise<string | undefined> {
  const length = Number(request.headers.get("content-length") ?? "0");
  if (length > DISCARD_LIMIT) return undefined;
  if (request.body === null) return "";
  const chunks: Uint8Array[] = [];
  let total = 0;
  let held = 0;
  try {
    for await (const chunk of request.body) {
      total += chunk.byteLength;
      if (total > DISCARD_LIMIT) return undefined;
      if (total > max) continue;
      if (budget.used + chunk.byteLength > budget.limit) throw new Busy();
      budget.used += chunk.byteLength;
      held += chunk.byteLength;
      chunks.push(chunk);
    }
    return total > max ? undefined : Buffer.concat(chunks).toString("utf8");
  } finally {
    budget.used -= held;
  }
}

const json = (body: string) => new Response(body, { headers: { "content-type": "application/json" } });

/** `POST /mutate`: an AdmissionReview in, one out; anything malformed or oversized gets a 400, never an exception. */
export function admissionHandler(deps: HandlerDeps): (request: Request) => Promise<Response> {
  const bad = (start: number, status: number, reason: string, outcome: "bad-request" | "busy" = "bad-request") => {
    observe(deps.stats, outcome, (deps.now() - start) / 1000);
    deps.decided(outcome, { reason });
    return new Response(`${reason}\n`, { status });
  };
  return async (request) => {
    const start = deps.now();
    const path = new URL(request.url).pathname;
    if (path !== "/mutate") return bad(start, 404, `no such path ${JSON.stringify(path.slice(0, 100))}: AdmissionReviews go to /mutate`);
    if (request.method !== "POST") return bad(start, 405, `${request.method.slice(0, 10)} /mutate: AdmissionReviews are POSTed`);
    let body: string | undefined;
    try {
      body = await boundedText(request, MAX_REVIEW_BYTES, deps.bodies);
    } catch (error) {
      if (error instanceof Busy)
        return bad(start, 503, `too many request bodies in flight (${deps.bodies.limit} bytes): try again`, "busy");
      return bad(start, 400, "the request body could not be read");
    }
    if (body === undefined) return bad(start, 400, `the request body is over ${MAX_REVIEW_BYTES} bytes`);
    const read = readReview(body);
    if (!read.ok) return bad(start, 400, read.reason);
    let review: ReturnType<typeof reviewPod>;
    try {
      review = reviewPod(read.request, deps.settings(), deps.version);
    } catch (error) {
      // Never Bun's 500 page: the API server reads an AdmissionReview, and the failure is logged and counted.
      const reason = `the review failed: ${error instanceof Error ? error.message : String(error)}`.slice(0, 200);
      observe(deps.stats, "error", (deps.now() - start) / 1000);
      deps.decided("error", { uid: read.request.uid, reason });
      return json(renderResponse(read.request.uid, { allowed: false, code: 500, message: `domainwall: ${reason}` }));
    }
    const answer = renderResponse(read.request.uid, review.verdict);
    const seconds = (deps.now() - start) / 1000;
    observe(deps.stats, review.outcome, seconds);
    deps.decided(review.outcome, { ...review.fields, ms: Math.round(seconds * 1e5) / 100 });
    return json(answer);
  };
}
