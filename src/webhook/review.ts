import type { PatchOp } from "./patch.ts";

/**
 * The largest AdmissionReview read, in bytes: the API server's own limit on a request body (a pod
 * is at most 1.5 MiB in etcd; an UPDATE review carries it twice). Larger bodies get a 400.
 */
export const MAX_REVIEW_BYTES = 3 * 1024 * 1024;

/** The deepest nesting read: a pod is about 20 deep; past this, recursive comparisons could run out of stack. */
export const MAX_REVIEW_DEPTH = 100;

/** How deep `text` (valid JSON) nests its arrays and objects, counted without recursion (brackets in strings skipped). */
function nestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) deepest = Math.max(deepest, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

/** The parts of an `admission.k8s.io/v1` AdmissionReview request the webhook reads. */
export interface ReviewRequest {
  readonly uid: string;
  readonly kind?: { readonly group?: string; readonly version?: string; readonly kind?: string };
  readonly subResource?: string;
  readonly namespace?: string;
  readonly operation?: string;
  readonly object?: unknown;
  /** The pod before the change: UPDATE only. */
  readonly oldObject?: unknown;
  readonly dryRun?: boolean;
}

export type ReadReview = { readonly ok: true; readonly request: ReviewRequest } | { readonly ok: false; readonly reason: string };

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/** The request of an AdmissionReview body, or why it is not one (the caller answers 400). */
export function readReview(body: string): ReadReview {
  if (nestingDepth(body) > MAX_REVIEW_DEPTH) return { ok: false, reason: `the body is nested deeper than ${MAX_REVIEW_DEPTH} levels` };
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch (error) {
    return { ok: false, reason: `the body is not JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (!isObject(data) || data.apiVersion !== "admission.k8s.io/v1" || data.kind !== "AdmissionReview")
    return { ok: false, reason: "expected an admission.k8s.io/v1 AdmissionReview" };
  const request = data.request;
  if (!isObject(request) || typeof request.uid !== "string" || request.uid === "" || request.uid.length > 256)
    return { ok: false, reason: "the AdmissionReview has no request.uid" };
  for (const key of ["namespace", "operation", "subResource"] as const)
    if (request[key] !== undefined && typeof request[key] !== "string") return { ok: false, reason: `request.${key} is not a string` };
  if (request.dryRun !== undefined && typeof request.dryRun !== "boolean") return { ok: false, reason: "request.dryRun is not a boolean" };
  if (request.kind !== undefined && !isObject(request.kind)) return { ok: false, reason: "request.kind is not an object" };
  return { ok: true, request: request as unknown as ReviewRequest };
}

/** The response the API server reads: allowed with an optional JSON Patch, or refused with a message. */
export type Verdict =
  | { readonly allowed: true; readonly patch?: readonly PatchOp[]; readonly warning?: string }
  | { readonly allowed: false; readonly code: number; readonly message: string };

/** An AdmissionReview response echoing `uid`; the patch is base64 JSON (`patchType: JSONPatch`), left out when empty. */
export function renderResponse(uid: string, verdict: Verdict): string {
  const response = verdict.allowed
    ? {
        uid,
        allowed: true,
        ...(verdict.patch !== undefined &&
          verdict.patch.length > 0 && { patchType: "JSONPatch", patch: Buffer.from(JSON.stringify(verdict.patch)).toString("base64") }),
        ...(verdict.warning !== undefined && { warnings: [verdict.warning] }),
      }
    : { uid, allowed: false, status: { code: verdict.code, message: verdict.message } };
  return JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response });
}
