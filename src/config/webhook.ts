import { WEBHOOK_DEFAULTS, type OptionName, type ValueOf } from "./options.ts";
import { show, type ListenAddress, type ResourceItem } from "./values.ts";

/** What the webhook puts into each pod it injects: from its `--config` file, reloaded live. */
export interface InjectionSettings {
  /** The image of the injected container. */
  readonly image: string;
  /** What a pod gets unless annotated otherwise: the `watch --dns-proxy` sidecar, or a one-shot `apply` initContainer. */
  readonly mode: "proxy" | "apply";
  /** Cluster-wide `--extra-hosts` entries, as written; `wildcard` ones need the proxy (left out in apply mode). */
  readonly extraHosts: readonly { readonly raw: string; readonly wildcard: boolean }[];
  /** The sidecar's /healthz and /metrics port. */
  readonly metricsPort: number;
  readonly requests: readonly ResourceItem[];
  readonly limits: readonly ResourceItem[];
  /** Namespaces whose pods may choose their mode and policy ConfigMap by annotation (pod authors there are trusted with it). */
  readonly annotationNamespaces: readonly string[];
}

/** `webhook`: where it listens, its certificate, and what it injects. */
export interface WebhookConfig {
  readonly listen: ListenAddress;
  /** /healthz and /metrics over plain HTTP. */
  readonly metricsAddr: ListenAddress;
  readonly tlsCert: string;
  readonly tlsKey: string;
  /** `--config FILE`: reloaded when it changes. */
  readonly configFile?: string;
  readonly injection: InjectionSettings;
}

type ValueReader = <N extends OptionName>(name: N) => ValueOf<N>;

/** An image reference: no whitespace, no quotes, nothing YAML or a shell would read differently. */
const IMAGE = /^[a-z0-9][a-z0-9._\-/:@]*$/i;

export function webhookConfig(value: ValueReader, fromOf: (name: OptionName) => string, problems: string[]): WebhookConfig {
  const image = value("image");
  if (image === undefined || image.trim() === "")
    problems.push(`${fromOf("image")} is required: the domainwall image to inject (e.g. ghcr.io/domainwall/domainwall:0.1.0)`);
  else if (!IMAGE.test(image)) problems.push(`${fromOf("image")}: ${show(image)} is not an image reference`);
  const tlsCert = value("tls-cert");
  const tlsKey = value("tls-key");
  if (tlsCert === undefined) problems.push("--tls-cert is required: the webhook serves HTTPS only");
  if (tlsKey === undefined) problems.push("--tls-key is required: the webhook serves HTTPS only");
  const configFile = value("config");
  const metricsPort = value("sidecar-metrics-port");
  return {
    listen: value("listen") ?? { hostname: "0.0.0.0", port: Number(WEBHOOK_DEFAULTS.listen.slice(1)) },
    metricsAddr: value("metrics-addr") ?? { hostname: "0.0.0.0", port: Number(WEBHOOK_DEFAULTS.metricsAddr.slice(1)) },
    tlsCert: tlsCert ?? "",
    tlsKey: tlsKey ?? "",
    ...(configFile !== undefined && { configFile }),
    injection: {
      image: image ?? "",
      mode: value("mode"),
      extraHosts: (value("extra-hosts") ?? []).map((h) => ({ raw: h.raw, wildcard: h.host.kind === "wildcard" })),
      metricsPort,
      requests: value("sidecar-requests") ?? [],
      limits: value("sidecar-limits") ?? [],
      annotationNamespaces: value("annotation-namespaces") ?? [],
    },
  };
}
