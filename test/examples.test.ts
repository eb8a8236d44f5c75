// Every Kubernetes manifest we show — examples/*.yaml and the yaml blocks of README.md and docs/ — is checked
// against the Kubernetes API schema (kubernetes-models: the OpenAPI definitions compiled to
// validators, offline; it checks types and required fields, not unknown field names). The drop-in
// initContainer example is then read the way domainwall and the kubelet would read it.
// (examples/sidecar-watch.yaml's own checks are in sidecar-example.test.ts.)
import { expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { parseConfigFile } from "../src/cli/config-file.ts";
import pkg from "../package.json" with { type: "json" };
import { parseCli } from "../src/cli/parse.ts";
import { layerSettings } from "../src/config/settings.ts";
import { parseConfig } from "../src/config/config.ts";
import { expandArgs } from "./support/pod.ts";

const EXAMPLES = `${import.meta.dir}/../examples`;

interface Container {
  name: string;
  image: string;
  restartPolicy?: string;
  args?: string[];
  env?: { name: string; value: string }[];
  securityContext?: {
    runAsUser?: number;
    runAsNonRoot?: boolean;
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
  };
}
interface DeploymentManifest {
  apiVersion: string;
  kind: string;
  spec: { template: { spec: { initContainers?: Container[]; containers: Container[] } } };
}

/** Validate one manifest against the schema of its kind; a kind without a validator here fails unless `lenient`. */
function validate(where: string, manifest: unknown, lenient = false): void {
  const { apiVersion, kind } = manifest as { apiVersion?: string; kind?: string };
  const validators: Record<string, (m: never) => { validate(): void }> = {
    "v1 ConfigMap": (m) => new ConfigMap(m),
    "apps/v1 Deployment": (m) => new Deployment(m),
    "networking.k8s.io/v1 NetworkPolicy": (m) => new NetworkPolicy(m),
  };
  const make = validators[`${apiVersion} ${kind}`];
  if (!make && lenient) return;
  if (!make) throw new Error(`${where}: no validator for ${apiVersion} ${kind}: add one to test/examples.test.ts`);
  try {
    make(manifest as never).validate();
  } catch (error) {
    throw new Error(`${where}: ${(error as Error).message}`);
  }
}

const manifestFiles = readdirSync(EXAMPLES)
  .filter((name) => /\.ya?ml$/.test(name))
  .sort();
const yamlBlocks = async (path: string) =>
  [...(await Bun.file(`${import.meta.dir}/../${path}`).text()).matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
const readmeBlocks = await yamlBlocks("README.md");
const docsBlocks = await Promise.all(
  readdirSync(`${import.meta.dir}/../docs`)
    .filter((name) => name.endsWith(".md"))
    .sort()
    .map(async (name) => ({ name, blocks: await yamlBlocks(`docs/${name}`) })),
);

test("the examples and README's yaml blocks are valid Kubernetes objects", async () => {
  expect(manifestFiles).toEqual([
    "initcontainer-deployment.yaml",
    "podmonitor.yaml", // a Prometheus Operator object: checked in test/webhook/manifests.test.ts
    "sidecar-configmap.yaml",
    "sidecar-dns-proxy.yaml",
    "sidecar-watch.yaml",
  ]);
  for (const name of manifestFiles.filter((file) => file !== "podmonitor.yaml")) {
    const parsed = Bun.YAML.parse(await Bun.file(`${EXAMPLES}/${name}`).text());
    for (const [i, document] of (Array.isArray(parsed) ? parsed : [parsed]).entries())
      validate(`examples/${name} document ${i + 1}`, document);
  }
  expect(readmeBlocks.length).toBeGreaterThan(0);
  readmeBlocks.forEach((block, i) => validate(`README.md yaml block ${i + 1}`, Bun.YAML.parse(block)));
  for (const { name, blocks } of docsBlocks)
    for (const [i, block] of blocks.entries()) {
      const parsed = Bun.YAML.parse(block);
      for (const document of Array.isArray(parsed) ? parsed : [parsed])
        if ((document as { kind?: string })?.kind !== undefined) validate(`docs/${name} yaml block ${i + 1}`, document, true);
    }
});

test("the schema check catches the original example's mistakes", () => {
  // From the original README: initContainers as a map, and a capability list given as a string.
  const broken = Bun.YAML.parse(`
apiVersion: apps/v1
kind: Deployment
metadata: { name: curl-deployment }
spec:
  selector: { matchLabels: { app: curl } }
  template:
    metadata: { labels: { app: curl } }
    spec:
      containers: [{ name: curl, image: alpine/curl }]
      initContainers:
        image: nebev/k8s-dynamic-iptables:latest
        name: iptables-init
        securityContext: { capabilities: { add: NET_ADMIN } }
`);
  expect(() => validate("broken", broken)).toThrow("initContainers must be array");
});

const manifest = Bun.YAML.parse(await Bun.file(`${EXAMPLES}/initcontainer-deployment.yaml`).text()) as DeploymentManifest;
const pod = manifest.spec.template.spec;
const init = pod.initContainers?.find((c) => c.name === "domainwall");

test("initcontainer-deployment.yaml: a plain initContainer whose args and variables are a valid apply configuration", () => {
  expect(init).toBeDefined();
  if (!init) return;
  expect(init.restartPolicy).toBeUndefined(); // runs to completion before the app starts
  expect(init.image).toBe(`ghcr.io/domainwall/domainwall:${pkg.version}`);
  const invocation = parseCli(init.args ?? []);
  expect(invocation.kind === "run" && invocation.command).toBe("apply");
  if (invocation.kind !== "run") return;
  const env = Object.fromEntries((init.env ?? []).map((e) => [e.name, e.value]));
  expect(Object.keys(env).sort()).toEqual(["extra_whitelist_ips_csv", "hosts_csv", "listening_ports_csv"]);
  const { config } = parseConfig(layerSettings("apply", { env, file: new Map(), flags: invocation.flags }), "apply");
  expect(config.policy.hosts).toContain("deb.debian.org");
  // Ports where they make sense: the mirrors and APIs on theirs, cluster names on every port.
  const tcp = (port: number) => ({ protocol: "tcp", first: port, last: port });
  expect(config.policy.hostPorts.get("deb.debian.org")).toEqual([tcp(80), tcp(443)] as never);
  expect(config.policy.hostPorts.get("storage.googleapis.com")).toEqual([tcp(443)] as never);
  // A cluster service by its full name, on its port (svc.cluster.local alone opens nothing).
  expect(config.policy.hostPorts.get("api.test.svc.cluster.local")).toEqual([tcp(8080)] as never);
  expect(config.policy.ports).toEqual([3000]);
  const appPorts = pod.containers.flatMap((c) => (c as { ports?: { containerPort: number }[] }).ports ?? []).map((p) => p.containerPort);
  expect(appPorts.every((port) => config.policy.ports.includes(port))).toBe(true); // inbound is filtered: the app's ports must be open
});

test("initcontainer-deployment.yaml: domainwall gets NET_ADMIN and nothing else; the app gets no way around the rules", () => {
  const sc = init?.securityContext;
  expect(sc?.capabilities).toEqual({ add: ["NET_ADMIN"], drop: ["ALL"] });
  expect(sc?.runAsUser).toBe(0); // added capabilities are effective only for uid 0 (no ambient capabilities)
  expect(sc?.runAsNonRoot).toBe(false);
  expect(sc?.allowPrivilegeEscalation).toBe(false);
  expect(sc?.readOnlyRootFilesystem).toBe(true);
  expect(sc?.privileged).toBeUndefined();
  for (const app of pod.containers) {
    expect(app.securityContext?.capabilities?.add ?? []).toEqual([]);
    expect(app.securityContext?.capabilities?.drop).toContain("ALL"); // NET_RAW is granted by default otherwise
    expect(app.securityContext?.privileged).not.toBe(true);
    expect(app.securityContext?.allowPrivilegeEscalation).toBe(false);
  }
});

test("sidecar-configmap.yaml: the sidecar watches the ConfigMap's file, mounted as a directory (never subPath), and the file is a valid watch configuration", async () => {
  const [configMap, deployment] = Bun.YAML.parse(await Bun.file(`${EXAMPLES}/sidecar-configmap.yaml`).text()) as [
    { metadata: { name: string }; data: Record<string, string> },
    {
      spec: {
        template: {
          spec: {
            initContainers: (Container & { volumeMounts?: { name: string; mountPath: string; subPath?: string }[] })[];
            volumes: { name: string; configMap?: { name: string } }[];
          };
        };
      };
    },
  ];
  const podSpec = deployment.spec.template.spec;
  const sidecar = podSpec.initContainers.find((c) => c.name === "domainwall")!;
  expect(sidecar.restartPolicy).toBe("Always");
  const invocation = parseCli(expandArgs(sidecar));
  if (invocation.kind !== "run") throw new Error("not a run");
  expect(invocation.command).toBe("watch");
  const path = invocation.flags.get("config");
  const configPath = path?.kind === "value" ? path.text : "";
  const volume = podSpec.volumes.find((v) => v.configMap?.name === configMap.metadata.name)!;
  const mount = sidecar.volumeMounts?.find((m) => m.name === volume.name);
  expect(mount?.subPath).toBeUndefined();
  expect(configPath).toBe(`${mount?.mountPath}/domainwall.toml`);
  const file = parseConfigFile(configMap.data["domainwall.toml"] ?? "", configPath);
  expect(file.problems).toEqual([]);
  const { config } = parseConfig(layerSettings("watch", { env: {}, file: file.settings, flags: invocation.flags }), "watch");
  expect(config.policy.hosts).toContain("deb.debian.org");
  expect(config.policy.ports).toEqual([3000, 9464]); // the app's port and the probes' port
  expect(config.watch.configFile).toBe(configPath);
});
