import { expect, test } from "bun:test";
import { parseCli } from "../src/cli/parse.ts";
import { layerSettings } from "../src/config/settings.ts";
import { parseConfig } from "../src/config/config.ts";
import { containerEnv, expandArgs, POD_IP, type EnvVar } from "./support/pod.ts";

interface Probe {
  httpGet?: { path: string; port: string | number };
}
interface Container {
  name: string;
  restartPolicy?: string;
  args?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number }[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  securityContext?: { capabilities?: { add?: string[] }; readOnlyRootFilesystem?: boolean };
  volumeMounts?: { mountPath: string }[];
}

const [manifest] = Bun.YAML.parse(await Bun.file(`${import.meta.dir}/../examples/sidecar-watch.yaml`).text()) as [
  {
    spec: { template: { spec: { initContainers: Container[]; containers: Container[] } } };
  },
  ...unknown[],
];
const pod = manifest.spec.template.spec;
const sidecar = pod.initContainers.find((c) => c.name === "domainwall")!;

test("examples/sidecar-watch.yaml: a native sidecar whose args and variables are a valid watch configuration", () => {
  expect(sidecar.restartPolicy).toBe("Always");
  const invocation = parseCli(expandArgs(sidecar));
  expect(invocation.kind === "run" && invocation.command).toBe("watch");
  if (invocation.kind !== "run") return;
  const env = containerEnv(sidecar);
  const { config } = parseConfig(layerSettings("watch", { env, file: new Map(), flags: invocation.flags }), "watch");
  expect(config.watch?.metricsAddr).toEqual({ hostname: POD_IP, port: 9464 }); // the pod's own address, not 0.0.0.0
  // The kubelet probes the pod IP from the node: with inbound filtered, the metrics port must be open.
  expect(config.policy.ports).toContain(9464);
  expect(config.policy.hostPorts.get("googleapis.com")).toEqual([{ protocol: "tcp", first: 443, last: 443 }] as never);
  expect(sidecar.volumeMounts?.map((m) => m.mountPath)).toContain("/run/domainwall");
  expect(config.watch?.readyFile?.startsWith("/run/domainwall/")).toBe(true);
});

test("examples/sidecar-watch.yaml: the app starts once /healthz answers (no shell needed in the image)", () => {
  const port = sidecar.ports?.find((p) => p.name === sidecar.startupProbe?.httpGet?.port)?.containerPort;
  expect(sidecar.startupProbe?.httpGet?.path).toBe("/healthz");
  expect(port).toBe(9464);
  expect(sidecar.livenessProbe?.httpGet?.path).toBe("/healthz");
  expect(sidecar.securityContext?.capabilities?.add).toEqual(["NET_ADMIN"]);
  expect(pod.containers.every((c) => !c.securityContext?.capabilities?.add?.includes("NET_ADMIN"))).toBe(true);
});
