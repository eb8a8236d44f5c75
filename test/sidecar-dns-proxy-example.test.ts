import { expect, test } from "bun:test";
import { parseCli } from "../src/cli/parse.ts";
import { layerSettings } from "../src/config/settings.ts";
import { parseConfig } from "../src/config/config.ts";
import { tempDirs } from "./support/temp-dirs.ts";
import { containerEnv, expandArgs, type EnvVar } from "./support/pod.ts";

interface Container {
  name: string;
  restartPolicy?: string;
  args?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number }[];
  startupProbe?: { httpGet?: { path: string; port: string | number } };
  securityContext?: { runAsUser?: number; allowPrivilegeEscalation?: boolean; capabilities?: { add?: string[]; drop?: string[] } };
}

const [manifest] = Bun.YAML.parse(await Bun.file(`${import.meta.dir}/../examples/sidecar-dns-proxy.yaml`).text()) as [
  {
    spec: { template: { spec: { initContainers: Container[]; containers: Container[] } } };
  },
  ...unknown[],
];
const pod = manifest.spec.template.spec;
const sidecar = pod.initContainers.find((c) => c.name === "domainwall")!;

test("examples/sidecar-dns-proxy.yaml: a native sidecar whose args and variables are a valid watch --dns-proxy configuration", () => {
  expect(sidecar.restartPolicy).toBe("Always");
  const invocation = parseCli(expandArgs(sidecar));
  if (invocation.kind !== "run") throw new Error("not a command");
  const env = containerEnv(sidecar);
  const { config } = parseConfig(layerSettings("watch", { env, file: new Map(), flags: invocation.flags }), invocation.command);
  if (config.command !== "watch") throw new Error("not watch");
  expect(config.policy.dnsProxy).toEqual({ port: 15353, gid: 2000053 });
  expect(config.policy.wildcards).toEqual(["**.googleapis.com", "*.pypi.org"]);
  expect(config.policy.ports).toContain(9464);
  const port = sidecar.ports?.find((p) => p.name === sidecar.startupProbe?.httpGet?.port)?.containerPort;
  expect([sidecar.startupProbe?.httpGet?.path, port]).toEqual(["/healthz", config.watch.metricsAddr?.port]);
});

test("examples/sidecar-dns-proxy.yaml: the threat model's security contexts (domainwall: root with NET_ADMIN and SETGID only; the app: nothing)", () => {
  expect(sidecar.securityContext?.runAsUser).toBe(0);
  expect(sidecar.securityContext?.capabilities).toEqual({ add: ["NET_ADMIN", "SETGID"], drop: ["ALL"] });
  for (const app of pod.containers) {
    expect(app.securityContext?.capabilities?.drop).toEqual(["ALL"]);
    expect(app.securityContext?.capabilities?.add ?? []).toEqual([]);
    expect(app.securityContext?.allowPrivilegeEscalation).toBe(false);
  }
});

const tempDir = tempDirs();
const unitPath = `${import.meta.dir}/../examples/domainwall-dns-proxy.service`;

test("examples/domainwall-dns-proxy.service: watch --dns-proxy with CAP_NET_ADMIN and CAP_SETGID only, restarted whenever it ends", async () => {
  const lines = (await Bun.file(unitPath).text()).split("\n");
  for (const line of [
    "CapabilityBoundingSet=CAP_NET_ADMIN CAP_SETGID",
    "AmbientCapabilities=CAP_NET_ADMIN CAP_SETGID",
    "NoNewPrivileges=yes",
    "Restart=always",
    "SystemCallFilter=@system-service",
  ]) {
    expect(lines).toContain(line);
  }
  expect(lines.find((l) => l.startsWith("ExecStart="))).toStartWith("ExecStart=/usr/local/bin/domainwall watch --dns-proxy ");
});

test("systemd accepts examples/domainwall-dns-proxy.service (systemd-analyze verify)", async () => {
  const dir = tempDir("dw-unit-");
  const unit = (await Bun.file(unitPath).text()).replace("/usr/local/bin/domainwall", process.execPath);
  await Bun.write(`${dir}/domainwall-dns-proxy.service`, unit);
  const result = Bun.spawnSync(["systemd-analyze", "verify", `${dir}/domainwall-dns-proxy.service`], { stderr: "pipe" });
  expect(result.stderr.toString()).toBe("");
  expect(result.exitCode).toBe(0);
});
