// End-to-end: the sidecar `domainwall webhook` injects, run as its patch says. The webhook's answer
// to a Deployment's pod is applied (RFC 6902); the injected container's args and env are run
// exactly, with the compiled binary (DOMAINWALL_BIN, else the source), in the lab's app namespace,
// on the policy ConfigMap's content laid out as the kubelet does (`..data` symlink). Only the mount
// points move: the volume mounted at /etc/domainwall is the test's directory, /run/domainwall its
// DOMAINWALL_RUN_DIR (the host's /etc and /run are shared). Then the ConfigMap changes, as the
// kubelet applies it, and what is reachable follows, live.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, mkdirSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import jsonpatch from "fast-json-patch";
import { createLab, describeNetns, killAndRemove, type Lab, until } from "../lab/lab.ts";
import { reviewPod } from "../../src/webhook/admit.ts";
import { readReview, renderResponse } from "../../src/webhook/review.ts";
import { POLICY_DIR, POLICY_KEY, RUN_DIR } from "../../src/webhook/sidecar.ts";
import { review, SETTINGS } from "../webhook/fixtures.ts";

setDefaultTimeout(120_000);

const API = { host: "203.0.113.10", port: 80 };
const OTHER = { host: "203.0.113.20", port: 80 };
const CLUSTER = { host: "203.0.113.30", port: 80 };

interface Sidecar {
  args: string[];
  env?: { name: string; value: string }[];
  volumeMounts: { name: string; mountPath: string }[];
}

/** The injected container of a Deployment's pod (the app listens on 3000), from the webhook's real answer. */
function injectedSidecar(): Sidecar {
  const pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { generateName: "web-5f6d-", namespace: "shop" },
    spec: { containers: [{ name: "web", image: "web:1", ports: [{ containerPort: 3000 }] }] },
  };
  const settings = { ...SETTINGS, extraHosts: [{ raw: "cluster.example", wildcard: false }] };
  const read = readReview(JSON.stringify(review(pod)));
  if (!read.ok) throw new Error(read.reason);
  const answer = JSON.parse(renderResponse(read.request.uid, reviewPod(read.request, settings, "test").verdict)) as {
    response: { patch: string };
  };
  const patch = JSON.parse(Buffer.from(answer.response.patch, "base64").toString());
  const patched = jsonpatch.applyPatch(pod, patch, true, false).newDocument as unknown as { spec: { initContainers: Sidecar[] } };
  return patched.spec.initContainers[0]!;
}

describeNetns("the webhook's sidecar, run as injected (nft, DNS proxy), end to end", () => {
  let lab: Lab;
  const running: Bun.Subprocess[] = [];
  let runDir = "";
  const env = () => ({ DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: `${runDir}/state` });
  beforeAll(async () => {
    lab = await createLab();
    // The run volume as the kubelet makes an emptyDir: world-writable (domainwall makes its own directory inside).
    runDir = `${lab.dir}/run`;
    mkdirSync(runDir);
    chmodSync(runDir, 0o777);
    await lab.setRecords({ "api.example": [API.host], "other.example": [OTHER.host], "cluster.example": [CLUSTER.host] });
  });
  afterEach(() => killAndRemove(lab, running, env()));
  afterAll(() => lab.close());

  /** A ConfigMap volume: each version in its own directory, `..data` pointing at the current one, the key a symlink through it. */
  const volume = () => {
    const dir = `${lab.dir}/configmap`;
    mkdirSync(dir);
    let n = 0;
    const write = (text: string) => {
      const version = `..2026_01_01_00_00_0${n++}.${n}`;
      mkdirSync(`${dir}/${version}`);
      writeFileSync(`${dir}/${version}/${POLICY_KEY}`, text);
      symlinkSync(version, `${dir}/..data_tmp`);
      renameSync(`${dir}/..data_tmp`, `${dir}/..data`); // the kubelet's atomic writer
    };
    return { dir, write, link: () => symlinkSync(`..data/${POLICY_KEY}`, `${dir}/${POLICY_KEY}`) };
  };

  const dig = async (name: string) =>
    JSON.parse(
      (await lab.exec("app", [process.execPath, `${import.meta.dir}/../lab/dig.ts`, "198.51.100.2", name, "A", "udp", "53"])).stdout,
    ) as {
      rcode?: string;
    };
  const resolvesAndConnects = async (name: string) =>
    (
      JSON.parse(
        (await lab.exec("app", [process.execPath, `${import.meta.dir}/../lab/resolve-connect.ts`, name, "1", "80", "4"])).stdout,
      ) as {
        connected: number;
      }
    ).connected === 1;

  test("a listed name and a cluster-wide one connect, an unlisted one gets NXDOMAIN and its address stays closed; a ConfigMap update changes that live", async () => {
    const sidecar = injectedSidecar();
    const policyMount = sidecar.volumeMounts.find((m) => m.mountPath === POLICY_DIR);
    expect(policyMount?.name).toBe("domainwall-policy");
    expect(sidecar.volumeMounts.map((m) => m.mountPath)).toContain(RUN_DIR);
    const configMap = volume();
    configMap.write('hosts = ["api.example"]\n');
    configMap.link();
    // The container's args as injected; only the policy volume's mount point is the test's directory.
    const args = sidecar.args.map((arg) =>
      arg.startsWith(`${POLICY_DIR}/`) ? `${configMap.dir}/${arg.slice(POLICY_DIR.length + 1)}` : arg,
    );
    expect(args.filter((arg, i) => arg !== sidecar.args[i])).toEqual([`${configMap.dir}/${POLICY_KEY}`]);
    const containerEnv = Object.fromEntries((sidecar.env ?? []).map((e) => [e.name, e.value]));
    expect(containerEnv).toEqual({ listening_ports_csv: "3000", DOMAINWALL_RUN_DIR: `${RUN_DIR}/state` });
    // Only the run volume's mount point moves, as the policy volume's did.
    const runEnv = { DOMAINWALL_RUN_DIR: `${runDir}${containerEnv.DOMAINWALL_RUN_DIR!.slice(RUN_DIR.length)}` };
    const child = lab.spawnDomainwall(args, { env: { ...containerEnv, ...runEnv } });
    running.push(child);
    let stderr = "";
    void (async () => {
      for await (const chunk of child.stderr) stderr += new TextDecoder().decode(chunk);
    })();
    // The kubelet's startupProbe, from outside the pod: /healthz on the metrics port through the inbound filter.
    const healthz = async () =>
      (
        await lab.exec("net", [process.execPath, "-e", "console.log((await fetch('http://198.51.100.1:9464/healthz')).status)"])
      ).stdout.trim() === "200";
    await until("the startup probe", 40, async () => child.exitCode !== null || (await healthz()));
    if (child.exitCode !== null) throw new Error(`the sidecar exited ${child.exitCode}: ${stderr}`);

    expect(await resolvesAndConnects("api.example")).toBe(true);
    expect(await resolvesAndConnects("cluster.example")).toBe(true); // the webhook's --extra-hosts
    expect((await dig("other.example")).rcode).toBe("NXDOMAIN");
    expect(await resolvesAndConnects("other.example")).toBe(false);
    expect(await lab.canConnect([OTHER], 500)).toEqual([false]);
    // Inbound: the app's containerPort and the probe port; nothing else.
    expect(
      await lab.canConnectInbound(
        [
          { host: "198.51.100.1", port: 3000 },
          { host: "198.51.100.1", port: 3001 },
        ],
        500,
      ),
    ).toEqual([true, false]);

    configMap.write('hosts = ["other.example"]\n');
    await until("other.example allowed after the ConfigMap update", 20, () => resolvesAndConnects("other.example"));
    expect((await dig("api.example")).rcode).toBe("NXDOMAIN");
    expect(await resolvesAndConnects("cluster.example")).toBe(true);
    expect(stderr).toContain("reloaded");

    // The rollout of docs/kubernetes.md, live: audit = true lets an unlisted name through (and records it), removing it enforces again.
    configMap.write('hosts = ["other.example"]\naudit = true\n');
    await until("api.example let through in audit mode", 20, () => resolvesAndConnects("api.example"));
    // `kubectl exec ... -c domainwall -- domainwall suggest`: the sidecar writes what it saw to the run directory every few seconds.
    await until("suggest names api.example", 20, async () =>
      (await lab.domainwall(["suggest"], { env: env() })).stdout.includes('"api.example"'),
    );
    configMap.write('hosts = ["other.example"]\n');
    await until("api.example refused again once audit is off", 20, async () => (await dig("api.example")).rcode === "NXDOMAIN");
    expect(await resolvesAndConnects("other.example")).toBe(true);
  });
});
