import type { InjectionSettings } from "../config/webhook.ts";
import { decide } from "./inject.ts";
import { readPod } from "./pod.ts";
import type { ReviewRequest, Verdict } from "./review.ts";
import { SIDECAR_NAME } from "./sidecar.ts";
import { isInjected, updateProblem } from "./update.ts";

const EPHEMERAL = "ephemeralcontainers";

/** How a review ended, for the decision log and the metrics. */
export type Outcome = "injected" | "unchanged" | "hardened" | "refused" | "skipped" | "invalid";

export interface Review {
  readonly verdict: Verdict;
  readonly outcome: Outcome;
  /** The decision log line's fields. */
  readonly fields: Readonly<Record<string, unknown>>;
}

/** The answer to one AdmissionReview request: pure, the same for a dry run (the webhook has no side effects). */
export function reviewPod(request: ReviewRequest, settings: InjectionSettings, version: string): Review {
  const base = {
    uid: request.uid,
    namespace: request.namespace ?? "",
    operation: request.operation ?? "",
    ...(request.dryRun === true && { dryRun: true }),
  };
  const subResource = request.subResource ?? "";
  if (request.kind?.kind !== "Pod" || (request.kind.group ?? "") !== "" || (subResource !== "" && subResource !== EPHEMERAL))
    return { verdict: { allowed: true }, outcome: "skipped", fields: { ...base, reason: "not a pod" } };
  const read = readPod(request.object);
  if (!read.ok)
    return {
      verdict: { allowed: false, code: 400, message: `domainwall: malformed pod: ${read.reason}` },
      outcome: "invalid",
      fields: { ...base, reason: read.reason },
    };
  const { metadata } = read.pod;
  // Cut to a name's maximum: admission runs before validation, and this goes to the log.
  const pod = (metadata.name ?? (metadata.generateName === undefined ? "" : `${metadata.generateName}*`)).slice(0, 254);
  if (request.operation === "UPDATE" && subResource === "") {
    const old = readPod(request.oldObject);
    if (!old.ok)
      return {
        verdict: { allowed: false, code: 400, message: `domainwall: malformed oldObject: ${old.reason}` },
        outcome: "invalid",
        fields: { ...base, pod, reason: old.reason },
      };
    if (!isInjected(old.pod))
      return { verdict: { allowed: true }, outcome: "skipped", fields: { ...base, pod, reason: "update of a pod without domainwall" } };
    const problem = updateProblem(old.pod, read.pod);
    return problem === undefined
      ? { verdict: { allowed: true }, outcome: "unchanged", fields: { ...base, pod, reason: "update leaves domainwall as it was" } }
      : { verdict: { allowed: false, code: 403, message: problem }, outcome: "refused", fields: { ...base, pod, reason: problem } };
  }
  // `kubectl debug` adds ephemeral containers to a running pod: checked and hardened like the others, when there is a sidecar to protect.
  if (subResource === EPHEMERAL && read.pod.spec.initContainers?.[0]?.name !== SIDECAR_NAME)
    return {
      verdict: { allowed: true },
      outcome: "skipped",
      fields: { ...base, pod, reason: "ephemeral containers of a pod without domainwall" },
    };
  const decision = decide(read.pod, request.namespace ?? read.pod.metadata.namespace ?? "", settings, version);
  const fields = { ...base, pod };
  switch (decision.kind) {
    case "refuse":
      return {
        verdict: { allowed: false, code: 403, message: decision.reason },
        outcome: "refused",
        fields: { ...fields, reason: decision.reason },
      };
    case "unchanged":
      return {
        verdict: { allowed: true, patch: decision.patch },
        outcome: decision.patch.length === 0 ? "unchanged" : "hardened",
        fields: { ...fields, reason: decision.reason, ops: decision.patch.length },
      };
    case "inject":
      return {
        verdict: { allowed: true, patch: decision.patch, ...(decision.note !== undefined && { warning: `domainwall: ${decision.note}` }) },
        outcome: "injected",
        fields: { ...fields, mode: decision.mode, ops: decision.patch.length, ...(decision.note !== undefined && { note: decision.note }) },
      };
  }
}
