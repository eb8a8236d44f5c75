import { describe, expect, test } from "bun:test";
import jsonpatch from "fast-json-patch";
import { Pod } from "kubernetes-models/v1/Pod";
import type { InjectionSettings } from "../../src/config/webhook.ts";
import { reviewPod } from "../../src/webhook/admit.ts";
import { readReview, renderResponse } from "../../src/webhook/review.ts";
import { deploymentPod, review, SETTINGS } from "./fixtures.ts";

/** What a pod author inside the namespace can write to step around domainwall: each must be refused or neutralised. */

type Json = Record<string, any>;

function admit(object: Json, extra: Json = {}, settings: InjectionSettings = SETTINGS) {
  const read = readReview(JSON.stringify(review(object, extra)));
  if (!read.ok) throw new Error(read.reason);
  const result = reviewPod(read.request, settings, "0.1.0");
  const answer = JSON.parse(renderResponse(read.request.uid, result.verdict)).response as Json;
  const patch = answer.patch === undefined ? [] : JSON.parse(Buffer.from(answer.patch, "base64").toString());
  const pod = jsonpatch.applyPatch(structuredClone(object), patch, true, false).newDocument as Json;
  if (answer.allowed) new Pod(pod as never).validate();
  return { result, answer, patch, pod };
}
const withPod = (change: (pod: Json) => void): Json => {
  const pod = deploymentPod() as Json;
  change(pod);
  return pod;
};
const refused = (object: Json, message: string, extra: Json = {}, settings: InjectionSettings = SETTINGS) => {
  const { answer } = admit(object, extra, settings);
  expect(answer.allowed).toBe(false);
  expect(answer.status.message).toContain(message);
};

describe("pod-author annotations", () => {
  test("domainwall.io/audit is refused: audit mode comes from the policy ConfigMap only", () => {
    refused(
      withPod((p) => (p.metadata.annotations = { "domainwall.io/audit": "true" })),
      "audit mode comes from the namespace's policy ConfigMap (audit = true)",
    );
    expect(admit(deploymentPod()).pod.spec.initContainers[0].args).not.toContain("--audit");
  });
  for (const [key, value] of [
    ["domainwall.io/mode", "apply"],
    ["domainwall.io/policy", "kube-root-ca.crt"],
  ] as const)
    test(`${key} is refused outside annotation-namespaces, honoured inside`, () => {
      const pod = withPod((p) => (p.metadata.annotations = { [key]: value }));
      refused(pod, `annotation ${key} is not allowed in namespace "shop"`);
      refused(pod, "annotation-namespaces", {}, { ...SETTINGS, annotationNamespaces: ["other"] });
      expect(admit(pod, {}, { ...SETTINGS, annotationNamespaces: ["shop"] }).answer.allowed).toBe(true);
    });
  test("the namespace is the request's, not the pod's metadata", () => {
    const pod = withPod((p) => {
      p.metadata.namespace = "trusted";
      p.metadata.annotations = { "domainwall.io/mode": "apply" };
    });
    refused(pod, "not allowed", {}, { ...SETTINGS, annotationNamespaces: ["trusted"] });
  });
});
