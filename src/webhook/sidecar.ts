import type { InjectionSettings } from "../config/webhook.ts";
import type { ResourceItem } from "../config/values.ts";
import { DEFAULT_PROXY_GID } from "../config/proxy-gid.ts";

/** The injected container's name: a pod holding one by this name is taken as injected (see inject.ts). */
export const SIDECAR_NAME = "domainwall";
export const POLICY_VOLUME = "domainwall-policy";
export const RUN_VOLUME = "domainwall-run";
/** Where the policy ConfigMap is mounted, and the key it must hold. */
export const POLICY_DIR = "/etc/domainwall";
export const POLICY_KEY = "policy.toml";
export const POLICY_FILE = `${POLICY_DIR}/${POLICY_KEY}`;
export const RUN_DIR = "/run/domainwall";
export const METRICS_PORT_NAME = "dw-metrics";
/** The variable that sets `--ports`: below the policy file, which overrides it when it sets `ports` itself. */
export const PORTS_VARIABLE = "listening_ports_csv";
export const RUN_DIR_VARIABLE = "DOMAINWALL_RUN_DIR";

/** What one pod gets: decided from its annotations and containers (see inject.ts). */
export interface SidecarChoice {
  readonly mode: "proxy" | "apply";
  readonly policy: string;
  /** The app containers' TCP ports; empty leaves inbound traffic to the policy file. */
  readonly ports: readonly number[];
}

const resources = (items: readonly ResourceItem[]) => Object.fromEntries(items.map((r) => [r.name, r.quantity]));

/** The domainwall command line: the policy file, plus what the cluster and the pod's annotations fix for the pod's life. */
export function sidecarArgs(settings: InjectionSettings, choice: SidecarChoice): string[] {
  const proxy = choice.mode === "proxy";
  const extraHosts = settings.extraHosts.filter((h) => proxy || !h.wildcard).map((h) => h.raw);
  return [
    proxy ? "watch" : "apply",
    ...(proxy ? ["--dns-proxy"] : []),
    "--config",
    POLICY_FILE,
    // The group fixed as a flag (a policy file cannot move it): the webhook refuses app containers running as it.
    ...(proxy ? ["--dns-proxy-gid", String(DEFAULT_PROXY_GID)] : []),
    ...(proxy ? ["--metrics-addr", `0.0.0.0:${settings.metricsPort}`, "--extra-ports", String(settings.metricsPort)] : []),
    ...(extraHosts.length > 0 ? ["--extra-hosts", extraHosts.join(",")] : []),
    "--log-format",
    "json",
  ];
}

/** The domainwall container: first of the initContainers, a native sidecar in proxy mode. */
export function sidecarContainer(settings: InjectionSettings, choice: SidecarChoice): Record<string, unknown> {
  const proxy = choice.mode === "proxy";
  const probe = (periodSeconds: number, failureThreshold: number) => ({
    httpGet: { path: "/healthz", port: settings.metricsPort },
    periodSeconds,
    failureThreshold,
  });
  return {
    name: SIDECAR_NAME,
    image: settings.image,
    ...(proxy && { restartPolicy: "Always" }),
    args: sidecarArgs(settings, choice),
    env: [
      // The emptyDir is world-writable (0777), which domainwall refuses as its run directory: it makes this one inside it, 0755.
      { name: RUN_DIR_VARIABLE, value: `${RUN_DIR}/state` },
      ...(choice.ports.length > 0 ? [{ name: PORTS_VARIABLE, value: choice.ports.join(",") }] : []),
    ],
    ...(proxy && {
      ports: [{ name: METRICS_PORT_NAME, containerPort: settings.metricsPort, protocol: "TCP" }],
      // The app starts once the rules are loaded and the proxy has answered (startup), and the sidecar restarts if it stops keeping up.
      startupProbe: probe(1, 60),
      livenessProbe: probe(10, 6),
    }),
    resources: {
      ...(settings.requests.length > 0 && { requests: resources(settings.requests) }),
      ...(settings.limits.length > 0 && { limits: resources(settings.limits) }),
    },
    // Root because capabilities Kubernetes adds are effective only for uid 0; SETGID to switch to the proxy's group.
    securityContext: {
      runAsUser: 0,
      runAsNonRoot: false,
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { add: proxy ? ["NET_ADMIN", "SETGID"] : ["NET_ADMIN"], drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
    volumeMounts: [
      { name: POLICY_VOLUME, mountPath: POLICY_DIR, readOnly: true },
      { name: RUN_VOLUME, mountPath: RUN_DIR },
    ],
  };
}

/** The policy ConfigMap (a directory mount, never subPath: the kubelet updates it in place) and the run directory. */
export const sidecarVolumes = (policy: string): Record<string, unknown>[] => [
  { name: POLICY_VOLUME, configMap: { name: policy } },
  { name: RUN_VOLUME, emptyDir: { medium: "Memory", sizeLimit: "16Mi" } },
];
