import { describe, expect, test } from "bun:test";
import jsonpatch from "fast-json-patch";
import { Pod } from "kubernetes-models/v1/Pod";
import { reviewPod } from "../../src/webhook/admit.ts";
import { readReview, renderResponse } from "../../src/webhook/review.ts";
import { DEFAULT_PROXY_GID } from "../../src/config/proxy-gid.ts";
import { busyPod, deploymentPod, review, SETTINGS } from "./fixtures.ts";

interface Answer {
  response: { uid: string; allowed: boolean; patchType?: string; patch?: string; status?: { code: number; message: string } };
}

/** The webhook's answer to `object` as the API server reads it, and the pod once its patch is applied (RFC 6902, validated). */
function admit(object: Record<string, unknown>, extra: Record<string, unknown> = {}, settings = SETTINGS) {
  const read = readReview(JSON.stringify(review(object, extra)));
  if (!read.ok) throw new Error(read.reason);
  const result = reviewPod(read.request, settings, "0.1.0");
  const answer = JSON.parse(renderResponse(read.request.uid, result.verdict)) as Answer;
  const patch = answer.response.patch === undefined ? [] : JSON.parse(Buffer.from(answer.response.patch, "base64").toString());
  expect(jsonpatch.validate(patch, structuredClone(object))).toBeUndefined();
  const patched = jsonpatch.applyPatch(structuredClone(object), patch, true, false).newDocument as Record<string, never>;
  new Pod(patched as ConstructorParameters<typeof Pod>[0]).validate();
  return { result, answer, patch, pod: patched as unknown as PodShape };
}

interface ContainerShape {
  name: string;
  image: string;
  restartPolicy?: string;
  args?: string[];
  env?: { name: string; value: string }[];
  startupProbe?: { httpGet: { path: string; port: number } };
  livenessProbe?: { httpGet: { path: string; port: number } };
  ports?: { name?: string; containerPort: number }[];
  securityContext?: Record<string, unknown> & { capabilities?: { add?: string[]; drop?: string[] } };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodShape {
  metadata: { name?: string; generateName?: string; annotations?: Record<string, string> };
  spec: {
    initContainers: ContainerShape[];
    containers: ContainerShape[];
    volumes: { name: string; configMap?: { name: string }; emptyDir?: unknown }[];
  };
}

describe("a Deployment's pod (generateName, no initContainers, volumes or securityContext)", () => {
  const { result, answer, pod } = admit(deploymentPod());
  const [sidecar] = pod.spec.initContainers;
  test("is injected: allowed, a JSONPatch echoing the uid, the version annotation", () => {
    expect(result.outcome).toBe("injected");
    expect(answer.response).toMatchObject({ uid: "705ab4f5-6393-11e8-b7cc-42010a800002", allowed: true, patchType: "JSONPatch" });
    expect(pod.metadata.generateName).toBe("web-7d4b9c-");
    expect(pod.metadata.annotations).toEqual({ "domainwall.io/injected-version": "0.1.0" });
    expect(result.fields.pod).toBe("web-7d4b9c-*");
  });
  test("domainwall is the first initContainer, a native sidecar running watch --dns-proxy on the mounted policy", () => {
    expect(sidecar?.name).toBe("domainwall");
    expect(sidecar?.image).toBe(SETTINGS.image);
    expect(sidecar?.restartPolicy).toBe("Always");
    expect(sidecar?.args).toEqual([
      "watch",
      "--dns-proxy",
      "--config",
      "/etc/domainwall/policy.toml",
      "--dns-proxy-gid",
      String(DEFAULT_PROXY_GID),
      "--metrics-addr",
      "0.0.0.0:9464",
      "--extra-ports",
      "9464",
      "--extra-hosts",
      "**.svc.cluster.local,kube-dns.kube-system.svc.cluster.local",
      "--log-format",
      "json",
    ]);
    expect(sidecar?.env).toEqual([
      { name: "DOMAINWALL_RUN_DIR", value: "/run/domainwall/state" },
      { name: "listening_ports_csv", value: "8080,8443" },
    ]);
  });
  test("probes on /healthz, the metrics port, minimal capabilities, read-only root, RuntimeDefault seccomp", () => {
    expect(sidecar?.startupProbe?.httpGet).toEqual({ path: "/healthz", port: 9464 });
    expect(sidecar?.livenessProbe?.httpGet).toEqual({ path: "/healthz", port: 9464 });
    expect(sidecar?.ports).toEqual([{ name: "dw-metrics", containerPort: 9464, protocol: "TCP" }] as never);
    expect(sidecar?.securityContext).toEqual({
      runAsUser: 0,
      runAsNonRoot: false,
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { add: ["NET_ADMIN", "SETGID"], drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
  });
  test("the policy ConfigMap is mounted read-only as a directory, the run directory is an emptyDir", () => {
    expect(pod.spec.volumes).toEqual([
      { name: "domainwall-policy", configMap: { name: "domainwall-policy" } },
      { name: "domainwall-run", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } },
    ]);
    expect(sidecar?.volumeMounts).toEqual([
      { name: "domainwall-policy", mountPath: "/etc/domainwall", readOnly: true },
      { name: "domainwall-run", mountPath: "/run/domainwall" },
    ]);
  });
  test("the app container gets NET_RAW, NET_ADMIN and SETGID dropped, and no privilege escalation", () => {
    expect(pod.spec.containers[0]?.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["NET_RAW", "NET_ADMIN", "SETGID"] },
    });
  });
  test("a dry run gets the same answer", () => {
    const dry = admit(deploymentPod(), { dryRun: true });
    expect(dry.answer.response.patch).toBe(answer.response.patch);
    expect(dry.result.fields.dryRun).toBe(true);
  });
});

describe("a pod with initContainers, volumes and security contexts", () => {
  const { pod, result } = admit(busyPod());
  test("domainwall goes first, the others keep their order; volumes are appended", () => {
    expect(result.outcome).toBe("injected");
    expect(pod.spec.initContainers.map((c) => c.name)).toEqual(["domainwall", "migrate"]);
    expect(pod.spec.volumes.map((v) => v.name)).toEqual(["data", "domainwall-policy", "domainwall-run"]);
    expect(pod.metadata.annotations).toEqual({ "example.com/owner": "team-a", "domainwall.io/injected-version": "0.1.0" });
  });
  test("each app container's drops are completed, whatever it had; drop ALL is left alone", () => {
    expect(pod.spec.initContainers[1]?.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["NET_RAW", "NET_ADMIN", "SETGID"] },
    });
    expect(pod.spec.containers[0]?.securityContext).toEqual({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["NET_RAW", "NET_ADMIN", "SETGID"] },
    });
    expect(pod.spec.containers[1]?.securityContext?.capabilities).toEqual({
      add: ["NET_BIND_SERVICE"],
      drop: ["NET_RAW", "NET_ADMIN", "SETGID"],
    });
    expect(pod.spec.containers[2]?.securityContext).toEqual({ allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
  });
  test("no containerPort: no listening_ports_csv, inbound is left to the policy", () => {
    expect(pod.spec.initContainers[0]?.env).toEqual([{ name: "DOMAINWALL_RUN_DIR", value: "/run/domainwall/state" }]);
  });
});

test("the ports of another native sidecar are opened too; a UDP port leaves inbound to the policy, with a warning", () => {
  const pod = deploymentPod() as { spec: Record<string, unknown> };
  pod.spec.initContainers = [{ name: "proxy", image: "envoy", restartPolicy: "Always", ports: [{ containerPort: 15001 }] }];
  expect(admit(pod as never).pod.spec.initContainers[0]?.env).toEqual([
    { name: "DOMAINWALL_RUN_DIR", value: "/run/domainwall/state" },
    { name: "listening_ports_csv", value: "8080,8443,15001" },
  ]);
  const udp = deploymentPod() as { spec: { containers: { ports: unknown[] }[] } };
  udp.spec.containers[0]!.ports.push({ containerPort: 5353, protocol: "UDP" });
  const { pod: patched, answer } = admit(udp as never);
  expect(patched.spec.initContainers[0]?.env).toEqual([{ name: "DOMAINWALL_RUN_DIR", value: "/run/domainwall/state" }]);
  expect((answer.response as { warnings?: string[] }).warnings?.[0]).toContain("5353/UDP");
});

describe("annotations", () => {
  const annotated = (annotations: Record<string, string>) => {
    const pod = deploymentPod();
    (pod.metadata as Record<string, unknown>).annotations = annotations;
    return pod;
  };
  test("mode apply: a one-shot initContainer with NET_ADMIN only, no probes, no wildcard defaults", () => {
    const { pod } = admit(
      annotated({ "domainwall.io/mode": "apply", "domainwall.io/policy": "egress.v2" }),
      {},
      { ...SETTINGS, annotationNamespaces: ["shop"] },
    );
    const [sidecar] = pod.spec.initContainers;
    expect(sidecar?.restartPolicy).toBeUndefined();
    expect(sidecar?.startupProbe).toBeUndefined();
    expect(sidecar?.args).toEqual([
      "apply",
      "--config",
      "/etc/domainwall/policy.toml",
      "--extra-hosts",
      "kube-dns.kube-system.svc.cluster.local",
      "--log-format",
      "json",
    ]);
    expect(sidecar?.securityContext?.capabilities).toEqual({ add: ["NET_ADMIN"], drop: ["ALL"] });
    expect(pod.spec.volumes[0]).toEqual({ name: "domainwall-policy", configMap: { name: "egress.v2" } });
  });
});

describe("already injected", () => {
  test("a pod the webhook injected is left unchanged (no patch): re-invocation is idempotent", () => {
    const first = admit(deploymentPod());
    const again = admit(first.pod as never);
    expect(again.result.outcome).toBe("unchanged");
    expect(again.answer.response.allowed).toBe(true);
    expect(again.answer.response.patch).toBeUndefined();
  });
  test("an app container added since (another webhook) only gets its drops", () => {
    const first = admit(deploymentPod());
    first.pod.spec.containers.push({ name: "late", image: "late:1" });
    const again = admit(first.pod as never);
    expect(again.result.outcome).toBe("hardened");
    expect(again.pod.spec.initContainers.filter((c) => c.name === "domainwall")).toHaveLength(1);
    expect(again.pod.spec.containers[1]?.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["NET_RAW", "NET_ADMIN", "SETGID"] },
    });
  });
  test("a container named domainwall that is not the injected one is refused", () => {
    const first = admit(deploymentPod());
    first.pod.spec.initContainers[0]!.args = ["watch", "--hosts", "evil.example"];
    expect(admit(first.pod as never).answer.response).toMatchObject({ allowed: false });
    const swapped = admit(deploymentPod());
    swapped.pod.spec.volumes[0] = { name: "domainwall-policy", configMap: { name: "someone-elses" } };
    expect(admit(swapped.pod as never).result.outcome).toBe("refused");
  });
});

describe("refusals say what to change", () => {
  const withApp = (change: (pod: { spec: Record<string, unknown> & { containers: Record<string, unknown>[] } }) => void) => {
    const pod = deploymentPod() as never as { spec: Record<string, unknown> & { containers: Record<string, unknown>[] } };
    change(pod);
    return pod as never as Record<string, unknown>;
  };
  const rows: { name: string; pod: Record<string, unknown>; message: string }[] = [
    { name: "hostNetwork", pod: withApp((p) => (p.spec.hostNetwork = true)), message: "remove hostNetwork" },
    {
      name: "a privileged app container",
      pod: withApp((p) => (p.spec.containers[0]!.securityContext = { privileged: true })),
      message: 'containers[0] "web" is privileged: remove securityContext.privileged',
    },
    ...["NET_ADMIN", "NET_RAW", "SETGID", "SYS_ADMIN", "cap_net_raw"].map((cap) => ({
      name: `an app container adding ${cap}`,
      pod: withApp((p) => (p.spec.containers[0]!.securityContext = { capabilities: { add: ["CHOWN", cap] } })),
      message: `adds ${cap.toUpperCase().replace("CAP_", "")}: remove it from securityContext.capabilities.add`,
    })),
    {
      name: "an app container adding ALL",
      pod: withApp((p) => (p.spec.containers[0]!.securityContext = { capabilities: { add: ["ALL"] } })),
      message: "adds NET_ADMIN, NET_RAW, SETGID, SYS_ADMIN",
    },
    {
      name: "an init container adding NET_ADMIN (as istio-init would)",
      pod: withApp(
        (p) => (p.spec.initContainers = [{ name: "istio-init", image: "x", securityContext: { capabilities: { add: ["NET_ADMIN"] } } }]),
      ),
      message: 'initContainers[0] "istio-init" adds NET_ADMIN',
    },
    {
      name: "a pod running as the DNS proxy's group",
      pod: withApp((p) => (p.spec.securityContext = { runAsGroup: DEFAULT_PROXY_GID })),
      message: "choose another runAsGroup",
    },
    {
      name: "an unknown mode",
      pod: withApp(
        (p) => ((p as never as { metadata: Record<string, unknown> }).metadata.annotations = { "domainwall.io/mode": "enforce" }),
      ),
      message: 'annotation domainwall.io/mode: "enforce" is not a mode',
    },
    {
      name: "a policy name that is not a ConfigMap name",
      pod: withApp(
        (p) => ((p as never as { metadata: Record<string, unknown> }).metadata.annotations = { "domainwall.io/policy": "../etc" }),
      ),
      message: 'annotation domainwall.io/policy: "../etc" is not a ConfigMap name',
    },
    {
      name: "SYS_PTRACE in a pod that shares its process namespace",
      pod: withApp((p) => {
        p.spec.shareProcessNamespace = true;
        p.spec.containers[0]!.securityContext = { capabilities: { add: ["SYS_PTRACE"] } };
      }),
      message: "adds SYS_PTRACE and can see domainwall's process",
    },
    {
      name: "an app container mounting the sidecar's run directory",
      pod: withApp((p) => (p.spec.containers[0]!.volumeMounts = [{ name: "domainwall-run", mountPath: "/x" }])),
      message: 'mounts "domainwall-run", the sidecar\'s: remove the mount',
    },
    { name: "an app container named domainwall", pod: withApp((p) => (p.spec.containers[0]!.name = "domainwall")), message: "rename it" },
    {
      name: "a volume with the webhook's name",
      pod: withApp((p) => (p.spec.volumes = [{ name: "domainwall-run", emptyDir: {} }])),
      message: 'volume names "domainwall-run" are the webhook\'s',
    },
  ];
  for (const row of rows)
    test(row.name, () => {
      const { answer, result } = admit(row.pod, {}, { ...SETTINGS, annotationNamespaces: ["shop"] });
      expect(result.outcome).toBe("refused");
      expect(answer.response.allowed).toBe(false);
      expect(answer.response.patch).toBeUndefined();
      expect(answer.response.status?.code).toBe(403);
      expect(answer.response.status?.message).toContain(row.message);
    });
});

test("a refusal quotes pod values cut short (admission runs before validation: a value may be huge)", () => {
  const pod = deploymentPod() as { metadata: Record<string, unknown> };
  pod.metadata.annotations = { "domainwall.io/mode": "x".repeat(100_000) };
  const { answer } = admit(pod as never);
  expect(answer.response.status?.message.length).toBeLessThan(400);
  expect(answer.response.status?.message).toContain(`"${"x".repeat(79)}...`);
});

describe("malformed input", () => {
  test("bodies that are not an AdmissionReview are named", () => {
    expect(readReview("{not json")).toMatchObject({ ok: false, reason: expect.stringContaining("not JSON") });
    expect(readReview("[]")).toMatchObject({ ok: false, reason: "expected an admission.k8s.io/v1 AdmissionReview" });
    expect(readReview(JSON.stringify({ ...review({}), request: { uid: 5 } }))).toMatchObject({ ok: false });
  });
  test("a review whose pod has the wrong shape is refused with a 400 status, naming the field", () => {
    const bad = { ...deploymentPod(), spec: { containers: [{ name: "web", securityContext: { capabilities: { add: "NET_ADMIN" } } }] } };
    const read = readReview(JSON.stringify(review(bad)));
    if (!read.ok) throw new Error(read.reason);
    const result = reviewPod(read.request, SETTINGS, "0.1.0");
    expect(result.verdict).toEqual({
      allowed: false,
      code: 400,
      message: "domainwall: malformed pod: spec.containers[0].securityContext.capabilities add and drop must be lists of names",
    });
  });
  test("a review that is not about a pod is allowed unchanged", () => {
    const read = readReview(JSON.stringify(review({}, { kind: { group: "apps", version: "v1", kind: "Deployment" } })));
    if (!read.ok) throw new Error(read.reason);
    expect(reviewPod(read.request, SETTINGS, "0.1.0")).toMatchObject({ outcome: "skipped", verdict: { allowed: true } });
  });
});

describe("kubectl debug (the pods/ephemeralcontainers subresource)", () => {
  const withDebug = (pod: Record<string, unknown>, securityContext?: unknown) => {
    const copy = structuredClone(pod) as { spec: Record<string, unknown> };
    copy.spec.ephemeralContainers = [{ name: "debugger", image: "busybox", ...(securityContext !== undefined && { securityContext }) }];
    return copy as never as Record<string, unknown>;
  };
  const debug = { operation: "UPDATE", subResource: "ephemeralcontainers" };
  test("an ephemeral container in an injected pod gets the app drops; nothing is injected again", () => {
    const injected = admit(deploymentPod()).pod as never as Record<string, unknown>;
    const { result, pod } = admit(withDebug(injected), debug);
    expect(result.outcome).toBe("hardened");
    expect((pod.spec as never as { ephemeralContainers: ContainerShape[] }).ephemeralContainers[0]?.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["NET_RAW", "NET_ADMIN", "SETGID"] },
    });
    expect(pod.spec.initContainers.filter((c) => c.name === "domainwall")).toHaveLength(1);
  });
  test("one adding NET_ADMIN is refused", () => {
    const injected = admit(deploymentPod()).pod as never as Record<string, unknown>;
    const { result } = admit(withDebug(injected, { capabilities: { add: ["NET_ADMIN"] } }), debug);
    expect(result.outcome).toBe("refused");
  });
  test("a pod without domainwall is left alone (it has nothing to bypass)", () => {
    const { result, patch } = admit(withDebug(deploymentPod()), debug);
    expect(result.outcome).toBe("skipped");
    expect(patch).toEqual([]);
  });
});
