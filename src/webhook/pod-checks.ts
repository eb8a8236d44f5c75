import { DEFAULT_PROXY_GID } from "../config/proxy-gid.ts";
import type { Pod } from "./pod.ts";

/**
 * Why the pod as a whole (not one container) could step around the sidecar, as sentences that say
 * what to change. Pure.
 */
export function podProblems(pod: Pod): string[] {
  const problems: string[] = [];
  const sc = pod.spec.securityContext;
  if (sc?.fsGroup === DEFAULT_PROXY_GID)
    problems.push(
      `securityContext.fsGroup is ${DEFAULT_PROXY_GID}, domainwall's DNS-proxy group, which every container would join and whose traffic skips the proxy: choose another fsGroup`,
    );
  if (sc?.supplementalGroups?.includes(DEFAULT_PROXY_GID) === true)
    problems.push(
      `securityContext.supplementalGroups holds ${DEFAULT_PROXY_GID}, domainwall's DNS-proxy group, whose traffic skips the proxy: remove it`,
    );
  return problems;
}
