// Every object `kubectl kustomize` renders for both overlays of deploy/, and the PodMonitor example,
// checked against the Kubernetes schema (kubernetes-models); cert-manager's and the Prometheus
// Operator's kinds have no validator there, so they get a structural check. The webhook's own
// arguments and ConfigMap must make a valid `webhook` configuration.
import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { MutatingWebhookConfiguration } from "kubernetes-models/admissionregistration.k8s.io/v1/MutatingWebhookConfiguration";
import { parseConfigFile } from "../../src/cli/config-file.ts";
import { parseCli } from "../../src/cli/parse.ts";
import { layerSettings } from "../../src/config/settings.ts";
import { parseConfig } from "../../src/config/config.ts";

type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
} & Record<string, never>;

const VALIDATORS: Record<string, new (data: never) => { validate(): void }> = {
  "v1/Namespace": Namespace,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "admissionregistration.k8s.io/v1/MutatingWebhookConfiguration": MutatingWebhookConfiguration,
};

/** The fields each custom kind must have, by path, with a check of its value. */
const CUSTOM: Record<string, Record<string, (value: unknown) => boolean>> = {
  "cert-manager.io/v1/Issuer": { spec: (s) => typeof s === "object" && s !== null && ("selfSigned" in s || "ca" in s) },
  "cert-manager.io/v1/Certificate": {
    "spec.secretName": (v) => typeof v === "string",
    "spec.issuerRef.name": (v) => typeof v === "string",
    "spec.issuerRef.kind": (v) => v === "Issuer",
  },
  "monitoring.coreos.com/v1/PodMonitor": {
    "spec.selector": (v) => typeof v === "object" && v !== null,
    "spec.podMetricsEndpoints": (v) => Array.isArray(v) && v.length > 0 && v.every((e) => typeof e.port === "string"),
  },
};

const at = (object: unknown, path: string): unknown =>
  path.split(".").reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], object);

function validate(where: string, manifest: Manifest): void {
  const key = `${manifest.apiVersion}/${manifest.kind}`;
  const Validator = VALIDATORS[key];
  const custom = CUSTOM[key];
  if (Validator === undefined && custom === undefined) throw new Error(`${where}: no validator for ${key}`);
  if (typeof manifest.metadata?.name !== "string") throw new Error(`${where}: ${key} has no name`);
  try {
    if (Validator !== undefined) new Validator(manifest as never).validate();
  } catch (error) {
    throw new Error(`${where}: ${key} ${manifest.metadata.name}: ${(error as Error).message}`);
  }
  for (const [path, check] of Object.entries(custom ?? {}))
    if (!check(at(manifest, path))) throw new Error(`${where}: ${key} ${manifest.metadata.name}: ${path} is missing or wrong`);
}

const ROOT = `${import.meta.dir}/../..`;
const work = mkdtempSync(`${tmpdir()}/domainwall-deploy-`);
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** manual-certs needs its files: made here with the openssl commands docs/kubernetes.md gives. */
function makeCertificates(dir: string): void {
  const run = (...args: string[]) => {
    const done = Bun.spawnSync(["openssl", ...args], { cwd: dir, stderr: "pipe" });
    if (done.exitCode !== 0) throw new Error(`openssl ${args.join(" ")}: ${done.stderr.toString()}`);
  };
  const name = "domainwall-webhook.domainwall-system.svc";
  run(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "365",
    "-subj",
    "/CN=domainwall-webhook-ca",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
  );
  run("req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${name}`, "-keyout", "tls.key", "-out", "tls.csr");
  Bun.write(`${dir}/san.ext`, `subjectAltName=DNS:${name},DNS:${name}.cluster.local\n`);
  run(
    "x509",
    "-req",
    "-in",
    "tls.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "365",
    "-extfile",
    "san.ext",
    "-out",
    "tls.crt",
  );
}

/**
 * kustomize wraps the base64 of generated Secrets (and so of the caBundle copied from one) every 76
 * characters; the API server's decoder (Go's encoding/base64) ignores line breaks, the schema's
 * "byte" format does not: compare the unwrapped text.
 */
function unwrapBase64(object: Manifest): Manifest {
  const copy = structuredClone(object) as Record<string, unknown>;
  const strip = (v: unknown) => (typeof v === "string" ? v.replace(/[\r\n]/g, "") : v);
  if (copy.kind === "Secret" && copy.data) copy.data = Object.fromEntries(Object.entries(copy.data).map(([k, v]) => [k, strip(v)]));
  for (const hook of (copy.webhooks ?? []) as { clientConfig: { caBundle?: string } }[])
    if (hook.clientConfig.caBundle !== undefined) hook.clientConfig.caBundle = strip(hook.clientConfig.caBundle) as string;
  return copy as Manifest;
}

async function render(overlay: string): Promise<Manifest[]> {
  if (Bun.which("kubectl") === null) throw new Error("kubectl (with its built-in kustomize, v5) is needed to render deploy/: install it");
  cpSync(`${ROOT}/deploy`, `${work}/${overlay}/deploy`, { recursive: true });
  const dir = `${work}/${overlay}/deploy/overlays/${overlay}`;
  if (overlay === "manual-certs") makeCertificates(dir);
  const done = Bun.spawnSync(["kubectl", "kustomize", dir], { stderr: "pipe" });
  if (done.exitCode !== 0) throw new Error(`kubectl kustomize ${overlay}: ${done.stderr.toString()}`);
  return (Bun.YAML.parse(done.stdout.toString()) as Manifest[]).flat().map(unwrapBase64);
}

for (const overlay of ["cert-manager", "manual-certs"]) {
  describe(`deploy/overlays/${overlay}`, async () => {
    const objects = await render(overlay);
    const find = (kind: string) => objects.filter((o) => o.kind === kind);

    test("every rendered object validates", () => {
      expect(objects.length).toBeGreaterThan(6);
      for (const [i, object] of objects.entries()) validate(`object ${i + 1}`, object);
    });

    test("a NetworkPolicy selects the webhook's pods and lets in only port 8443 from outside the pod network, and 8080", () => {
      const [policy] = find("NetworkPolicy") as never as {
        metadata: { namespace: string };
        spec: {
          podSelector: { matchLabels: Record<string, string> };
          policyTypes: string[];
          ingress: { ports: { port: number }[]; from?: { ipBlock?: { cidr: string; except?: string[] } }[] }[];
        };
      }[];
      const [deployment] = find("Deployment") as never as { spec: { template: { metadata: { labels: Record<string, string> } } } }[];
      expect(policy?.metadata.namespace).toBe("domainwall-system");
      expect(policy?.spec.policyTypes).toEqual(["Ingress"]);
      for (const [key, value] of Object.entries(policy?.spec.podSelector.matchLabels ?? {}))
        expect(deployment?.spec.template.metadata.labels[key]).toBe(value);
      const [admission, metrics] = policy?.spec.ingress ?? [];
      expect(admission?.ports).toEqual([{ port: 8443, protocol: "TCP" }] as never);
      expect(admission?.from?.[0]?.ipBlock?.except?.length).toBeGreaterThan(0);
      expect(metrics?.ports).toEqual([{ port: 8080, protocol: "TCP" }] as never);
      expect(policy?.spec.ingress).toHaveLength(2);
    });

    test("the MutatingWebhookConfiguration: Fail, no side effects, v1 reviews, a timeout, never kube-system or domainwall-system", () => {
      const [config] = find("MutatingWebhookConfiguration") as never as {
        webhooks: {
          failurePolicy: string;
          sideEffects: string;
          admissionReviewVersions: string[];
          timeoutSeconds: number;
          reinvocationPolicy: string;
          clientConfig: { caBundle?: string; service: { namespace: string; path: string } };
          namespaceSelector: { matchExpressions: { key: string; operator: string; values: string[] }[] };
          objectSelector?: { matchLabels: Record<string, string> };
        }[];
      }[];
      expect(config?.webhooks).toHaveLength(2);
      for (const hook of config?.webhooks ?? []) {
        expect(hook.failurePolicy).toBe("Fail");
        expect(hook.sideEffects).toBe("None");
        expect(hook.admissionReviewVersions).toEqual(["v1"]);
        expect(hook.timeoutSeconds).toBeGreaterThan(0);
        expect(hook.timeoutSeconds).toBeLessThanOrEqual(30);
        expect(hook.reinvocationPolicy).toBe("IfNeeded");
        expect(hook.clientConfig.service).toMatchObject({ namespace: "domainwall-system", path: "/mutate" });
        expect(hook.namespaceSelector.matchExpressions).toContainEqual({
          key: "kubernetes.io/metadata.name",
          operator: "NotIn",
          values: ["kube-system", "domainwall-system"],
        });
      }
      const [byNamespace, byPod] = config!.webhooks;
      expect(byNamespace?.namespaceSelector.matchExpressions).toContainEqual({
        key: "domainwall.io/inject",
        operator: "In",
        values: ["enabled"],
      });
      expect(byPod?.objectSelector).toEqual({ matchLabels: { "domainwall.io/inject": "true" } });
      if (overlay === "manual-certs") {
        const secret = find("Secret")[0] as never as { data: Record<string, string> };
        for (const hook of config!.webhooks) expect(hook.clientConfig.caBundle).toBe(secret.data["ca.crt"]!);
      } else {
        expect((config as never as Manifest).metadata.annotations?.["cert-manager.io/inject-ca-from"]).toBe(
          "domainwall-system/domainwall-webhook",
        );
        const certificate = find("Certificate").find((c) => c.metadata.name === "domainwall-webhook") as never as {
          spec: { secretName: string; dnsNames: string[] };
        };
        expect(certificate.spec.dnsNames).toContain("domainwall-webhook.domainwall-system.svc");
      }
    });

    test("the webhook: 2 replicas spread over nodes, a PDB, non-root, no capabilities, read-only root", () => {
      const [deployment] = find("Deployment") as never as {
        spec: {
          replicas: number;
          template: {
            spec: {
              affinity: { podAntiAffinity: unknown };
              securityContext: { runAsNonRoot: boolean };
              containers: { args: string[]; securityContext: Record<string, unknown> }[];
              volumes: { secret?: { secretName: string } }[];
            };
          };
        };
      }[];
      const pod = deployment!.spec.template.spec;
      expect(deployment!.spec.replicas).toBe(2);
      expect(pod.affinity.podAntiAffinity).toBeDefined();
      expect(pod.securityContext.runAsNonRoot).toBe(true);
      expect(pod.containers[0]?.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ["ALL"] },
      });
      expect(find("PodDisruptionBudget")).toHaveLength(1);
      const secretName = pod.volumes.find((v) => v.secret)?.secret?.secretName;
      if (overlay === "manual-certs") expect(find("Secret").map((s) => s.metadata.name)).toContain(secretName!);
    });

    test("its arguments and ConfigMap make a valid webhook configuration", () => {
      const [deployment] = find("Deployment") as never as { spec: { template: { spec: { containers: { args: string[] }[] } } } }[];
      const invocation = parseCli(deployment!.spec.template.spec.containers[0]!.args);
      expect(invocation.kind === "run" && invocation.command).toBe("webhook");
      if (invocation.kind !== "run") return;
      expect(invocation.problems).toEqual([]);
      const configMap = find("ConfigMap")[0] as never as { data: Record<string, string> };
      const file = parseConfigFile(configMap.data["webhook.toml"]!, "webhook.toml");
      expect(file.problems).toEqual([]);
      const { config } = parseConfig(layerSettings("webhook", { env: {}, file: file.settings, flags: invocation.flags }), "webhook");
      expect(config.webhook.injection).toMatchObject({
        mode: "proxy",
        metricsPort: 9464,
        extraHosts: [{ raw: "**.svc.cluster.local", wildcard: true }],
      });
      expect(config.webhook.listen.port).toBe(8443);
    });
  });
}

test("examples/podmonitor.yaml scrapes the port the webhook names", async () => {
  const monitor = Bun.YAML.parse(await Bun.file(`${ROOT}/examples/podmonitor.yaml`).text()) as Manifest;
  validate("examples/podmonitor.yaml", monitor);
  expect((monitor as never as { spec: { podMetricsEndpoints: { port: string }[] } }).spec.podMetricsEndpoints[0]?.port).toBe("dw-metrics");
});
