import type { Container, ContainerList, Pod } from "./pod.ts";
import { POLICY_VOLUME, RUN_VOLUME, SIDECAR_NAME } from "./sidecar.ts";
import { canonical } from "./sidecar-match.ts";

/** Pod fields that decide whether the sidecar can be stepped around: an UPDATE may not change them once injected. */
const GUARDED_SPEC = ["securityContext", "hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace", "hostAliases"] as const;
const LISTS: readonly ContainerList[] = ["initContainers", "containers", "ephemeralContainers"];

/**
 * Why an UPDATE of an injected pod is refused, or undefined when it changes nothing of the sidecar,
 * its volumes or the app containers' hardening. An UPDATE is only ever validated, never patched:
 * the pod was injected and hardened at CREATE, and `kubectl patch` must not undo that. Pure.
 */
export function updateProblem(old: Pod, next: Pod): string | undefined {
  const changed: string[] = [];
  const oldSidecar = old.spec.initContainers?.[0];
  if (canonical(next.spec.initContainers?.[0]) !== canonical(oldSidecar)) changed.push(`initContainers[0] ${JSON.stringify(SIDECAR_NAME)}`);
  for (const name of [POLICY_VOLUME, RUN_VOLUME]) {
    const find = (pod: Pod) => pod.spec.volumes?.find((v) => v.name === name);
    if (canonical(find(next)) !== canonical(find(old))) changed.push(`volume ${name}`);
  }
  const oldSpec = old.spec as unknown as Record<string, unknown>;
  const nextSpec = next.spec as unknown as Record<string, unknown>;
  for (const field of GUARDED_SPEC) if (canonical(nextSpec[field]) !== canonical(oldSpec[field])) changed.push(`spec.${field}`);
  for (const list of LISTS) {
    const before: readonly Container[] = old.spec[list] ?? [];
    const after: readonly Container[] = next.spec[list] ?? [];
    if (after.length !== before.length) changed.push(`the number of ${list}`);
    for (const [i, container] of after.entries()) {
      const was = before[i];
      if (was === undefined) continue;
      if (container.name !== was.name) changed.push(`${list}[${i}].name`);
      else if (canonical(container.securityContext) !== canonical(was.securityContext)) changed.push(`${list}[${i}].securityContext`);
    }
  }
  if (changed.length === 0) return undefined;
  return `domainwall: this update changes ${changed.slice(0, 8).join(", ")} of a pod domainwall protects: recreate the pod instead (the webhook injects and hardens pods when they are created)`;
}

/** Whether the pod carries the injected sidecar (first initContainer by its name). */
export const isInjected = (pod: Pod): boolean => pod.spec.initContainers?.[0]?.name === SIDECAR_NAME;
