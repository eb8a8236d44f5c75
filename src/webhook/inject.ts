import { DEFAULT_PROXY_GID } from "../config/proxy-gid.ts";
import type { InjectionSettings } from "../config/webhook.ts";
import { add, pointer, type PatchOp } from "./patch.ts";
import { capabilityName, type Container, type ContainerList, type Pod } from "./pod.ts";
import { containerBaselineProblems, podProblems } from "./pod-checks.ts";
import { sidecarDifferences } from "./sidecar-match.ts";
import { POLICY_VOLUME, RUN_VOLUME, SIDECAR_NAME, sidecarContainer, sidecarVolumes, type SidecarChoice } from "./sidecar.ts";

/** The annotations the webhook reads on a pod, and the one it writes. */
export const ANNOTATION = {
  mode: "domainwall.io/mode",
  policy: "domainwall.io/policy",
  /** No longer read: refused, so that nobody believes a pod is in audit mode when it is not. */
  audit: "domainwall.io/audit",
  injected: "domainwall.io/injected-version",
} as const;
export const DEFAULT_POLICY = "domainwall-policy";
/** Capabilities an app container may not add: each lets it change or step around the pod's rules. */
export const BYPASS_CAPABILITIES = ["NET_ADMIN", "NET_RAW", "SETGID", "SYS_ADMIN"] as const;
/** Added to every app container's `capabilities.drop`: the runtime grants NET_RAW and SETGID by default. */
export const APP_DROPS = ["NET_RAW", "NET_ADMIN", "SETGID"] as const;

export type Decision =
  | { readonly kind: "inject"; readonly patch: readonly PatchOp[]; readonly mode: "proxy" | "apply"; readonly note?: string }
  /** Already injected: nothing added again; `patch` hardens app containers added since (empty when none). */
  | { readonly kind: "unchanged"; readonly patch: readonly PatchOp[]; readonly reason: string }
  | { readonly kind: "refuse"; readonly reason: string };

/** A Kubernetes object name (RFC 1123 subdomain), as a ConfigMap's must be. */
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A value from the pod, quoted and cut short: admission runs before validation, so names and annotations can be any length. */
const show = (value: unknown): string => {
  const text = JSON.stringify(value) ?? "undefined";
  return text.length > 80 ? `${text.slice(0, 80)}...` : text;
};

/**
 * The pod's choices from its annotations, or the problems with them. Mode and policy are the pod
 * author's: `apply` drops the proxy, and any ConfigMap can be named; so they are read only in the
 * namespaces the cluster admin listed (annotation-namespaces). Audit mode is never the pod's: it
 * comes from the namespace's policy ConfigMap (`audit = true`).
 */
function readChoice(pod: Pod, namespace: string, settings: InjectionSettings, problems: string[]): Omit<SidecarChoice, "ports"> {
  const annotations = pod.metadata.annotations ?? {};
  if (annotations[ANNOTATION.audit] !== undefined)
    problems.push(
      `annotation ${ANNOTATION.audit} is not honoured: audit mode comes from the namespace's policy ConfigMap (audit = true); remove the annotation`,
    );
  const allowed = settings.annotationNamespaces.includes(namespace);
  for (const key of [ANNOTATION.mode, ANNOTATION.policy])
    if (annotations[key] !== undefined && !allowed)
      problems.push(
        `annotation ${key} is not allowed in namespace ${show(namespace)}: remove it, or have the cluster admin add the namespace to the webhook's annotation-namespaces`,
      );
  const mode = annotations[ANNOTATION.mode] ?? settings.mode;
  if (mode !== "proxy" && mode !== "apply")
    problems.push(
      `annotation ${ANNOTATION.mode}: ${show(mode)} is not a mode: write "proxy" (the DNS-proxy sidecar) or "apply" (a one-shot initContainer)`,
    );
  const policy = annotations[ANNOTATION.policy] ?? DEFAULT_POLICY;
  if (policy.length > 253 || !SUBDOMAIN.test(policy))
    problems.push(
      `annotation ${ANNOTATION.policy}: ${show(policy)} is not a ConfigMap name (lower-case letters, digits, '-' and '.', at most 253)`,
    );
  return { mode: mode === "apply" ? "apply" : "proxy", policy };
}

interface AppContainer {
  readonly list: ContainerList;
  readonly index: number;
  readonly container: Container;
}

/** Why an app container could step around the rules, as a sentence that says what to change. */
function appProblems({ list, index, container }: AppContainer, pod: Pod): string[] {
  const podGroup = pod.spec.securityContext?.runAsGroup;
  const where = `${list}[${index}] ${show(container.name)}`;
  const sc = container.securityContext;
  const problems: string[] = [];
  if (sc?.privileged === true)
    problems.push(`${where} is privileged: remove securityContext.privileged (it could rewrite or remove the pod's rules)`);
  const added = (sc?.capabilities?.add ?? []).map(capabilityName);
  const bypass = added.includes("ALL") ? [...BYPASS_CAPABILITIES] : BYPASS_CAPABILITIES.filter((cap) => added.includes(cap));
  if (bypass.length > 0)
    problems.push(
      `${where} adds ${bypass.join(", ")}: remove ${bypass.length === 1 ? "it" : "them"} from securityContext.capabilities.add (each lets the app change or step around the pod's rules)`,
    );
  const mounted = (container.volumeMounts ?? []).filter((m) => m.name === POLICY_VOLUME || m.name === RUN_VOLUME).map((m) => show(m.name));
  if (mounted.length > 0) problems.push(`${where} mounts ${mounted.join(", ")}, the sidecar's: remove the mount`);
  if (sc?.allowPrivilegeEscalation === true)
    problems.push(
      `${where} sets allowPrivilegeEscalation: true: remove it (a setgid binary could join domainwall's DNS-proxy group, whose traffic skips the proxy)`,
    );
  if ((sc?.runAsGroup ?? podGroup) === DEFAULT_PROXY_GID)
    problems.push(
      `${where} runs as group ${DEFAULT_PROXY_GID}, domainwall's DNS-proxy group, whose traffic skips the proxy: choose another runAsGroup`,
    );
  return problems;
}

/**
 * The ops that harden one container, whatever it lacks (securityContext, capabilities, drop): the app
 * drops, and allowPrivilegeEscalation false (no setgid binary reaches the proxy's group). Only "ALL"
 * in any case counts as dropping all; other names count only as written: the runtime prefixes `CAP_`
 * itself, so `CAP_NET_RAW` drops nothing.
 */
function hardening({ list, index, container }: AppContainer): PatchOp[] {
  const base = ["spec", list, index, "securityContext"] as const;
  const sc = container.securityContext;
  const drop = sc?.capabilities?.drop ?? [];
  const missing = drop.some((cap) => /^all$/i.test(cap)) ? [] : APP_DROPS.filter((cap) => !drop.includes(cap));
  const escalation = sc?.allowPrivilegeEscalation === undefined;
  if (sc === undefined)
    return [
      add(pointer(...base), { allowPrivilegeEscalation: false, ...(missing.length > 0 && { capabilities: { drop: [...missing] } }) }),
    ];
  const ops = escalation ? [add(pointer(...base, "allowPrivilegeEscalation"), false)] : [];
  if (missing.length === 0) return ops;
  if (sc.capabilities === undefined) return [...ops, add(pointer(...base, "capabilities"), { drop: [...missing] })];
  if (sc.capabilities.drop === undefined) return [...ops, add(pointer(...base, "capabilities", "drop"), [...missing])];
  return [...ops, ...missing.map((cap) => add(pointer(...base, "capabilities", "drop", "-"), cap))];
}

/**
 * The TCP ports of the app containers and of other native sidecars, for `--ports`; none when one
 * listens on UDP or SCTP (inbound filtering is TCP only).
 */
function appPorts(pod: Pod): { ports: number[]; note?: string } {
  const sidecars = (pod.spec.initContainers ?? []).filter((c) => c.restartPolicy === "Always" && c.name !== SIDECAR_NAME);
  const ports = [...pod.spec.containers, ...sidecars].flatMap((c) => c.ports ?? []);
  const other = ports.filter((p) => (p.protocol ?? "TCP") !== "TCP");
  if (other.length > 0)
    return {
      ports: [],
      note: `inbound left to the policy: a container listens on ${other.map((p) => `${p.containerPort}/${p.protocol}`).join(", ")}`,
    };
  return { ports: [...new Set(ports.map((p) => p.containerPort))].sort((a, b) => a - b) };
}

/**
 * What to do with a pod to be injected: the JSON Patch that injects domainwall and hardens the app
 * containers, nothing (already injected), or a refusal that says what to change. Pure.
 */
export function decide(pod: Pod, namespace: string, settings: InjectionSettings, version: string): Decision {
  const problems: string[] = [];
  const choice = readChoice(pod, namespace, settings, problems);
  if (pod.spec.hostNetwork === true)
    problems.push(
      "hostNetwork: true shares the node's network: domainwall would firewall the node, not the pod; remove hostNetwork or run the pod in a namespace without domainwall.io/inject=enabled",
    );
  problems.push(...podProblems(pod));
  const init = pod.spec.initContainers ?? [];
  const ours = init[0]?.name === SIDECAR_NAME;
  const lists: ContainerList[] = ["initContainers", "containers", "ephemeralContainers"];
  const apps: AppContainer[] = lists.flatMap((list) =>
    (pod.spec[list] ?? [])
      .map((container, index) => ({ list, index, container }))
      .filter((c) => !(ours && c.list === "initContainers" && c.index === 0)),
  );
  const impostor = apps.find((c) => c.container.name === SIDECAR_NAME);
  if (impostor !== undefined)
    problems.push(
      `${impostor.list}[${impostor.index}] is named ${show(SIDECAR_NAME)}, the name of the container this webhook injects first: rename it`,
    );
  for (const app of apps) problems.push(...appProblems(app, pod), ...containerBaselineProblems(app.list, app.index, app.container, pod));
  const { ports, note } = appPorts(pod);
  const expected = sidecarContainer(settings, { ...choice, ports });
  const volumes = pod.spec.volumes ?? [];
  if (ours) {
    const differences = sidecarDifferences(init[0]!, expected, volumes, sidecarVolumes(choice.policy));
    if (differences.length > 0)
      problems.push(
        `initContainers[0] ${show(SIDECAR_NAME)} is not the container this webhook injects (it differs in ${differences.join(", ").slice(0, 200)}): remove it and its volumes and let the webhook inject them`,
      );
  } else {
    const taken = volumes.filter((v) => v.name === POLICY_VOLUME || v.name === RUN_VOLUME).map((v) => show(v.name));
    if (taken.length > 0) problems.push(`volume names ${taken.join(", ")} are the webhook's: rename the pod's`);
  }
  if (problems.length > 0) return { kind: "refuse", reason: `domainwall: ${problems.join("; ")}` };
  const hardened = apps.flatMap(hardening);
  if (ours) return { kind: "unchanged", patch: hardened, reason: "already injected" };
  const patch: PatchOp[] = [...hardened];
  const added = sidecarVolumes(choice.policy);
  if (pod.spec.volumes === undefined) patch.push(add(pointer("spec", "volumes"), added));
  else patch.push(...added.map((volume) => add(pointer("spec", "volumes", "-"), volume)));
  patch.push(
    pod.spec.initContainers === undefined
      ? add(pointer("spec", "initContainers"), [expected])
      : add(pointer("spec", "initContainers", 0), expected),
  );
  patch.push(
    pod.metadata.annotations === undefined
      ? add(pointer("metadata", "annotations"), { [ANNOTATION.injected]: version })
      : add(pointer("metadata", "annotations", ANNOTATION.injected), version),
  );
  return { kind: "inject", patch, mode: choice.mode, ...(note !== undefined && { note }) };
}
