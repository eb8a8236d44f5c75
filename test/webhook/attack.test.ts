import { describe, expect, test } from "bun:test";
import jsonpatch from "fast-json-patch";
import { Pod } from "kubernetes-models/v1/Pod";
import type { InjectionSettings } from "../../src/config/webhook.ts";
import { reviewPod } from "../../src/webhook/admit.ts";
import { readReview, renderResponse } from "../../src/webhook/review.ts";
import { deploymentPod, review, SETTINGS } from "./fixtures.ts";

/** What a pod author inside the namespace can write to step around domainwall: each must be refused or neutralised. */

type Json = Record<string, any>;

function admit(object: Json, extra: Json = {}, settings: InjectionSettings = SETTINGS) {
  const read = readReview(JSON.stringify(review(object, extra)));
  if (!read.ok) throw new Error(read.reason);
  const result = reviewPod(read.request, settings, "0.1.0");
  const answer = JSON.parse(renderResponse(read.request.uid, result.verdict)).response as Json;
  const patch = answer.patch === undefined ? [] : JSON.parse(Buffer.from(answer.patch, "base64").toString());
  const pod = jsonpatch.applyPatch(structuredClone(object), patch, true, false).newDocument as Json;
  if (answer.allowed) new Pod(pod as never).validate();
  return { result, answer, patch, pod };
}
const withPod = (change: (pod: Json) => void): Json => {
  const pod = deploymentPod() as Json;
  change(pod);
  return pod;
};
const refused = (object: Json, message: string, extra: Json = {}, settings: InjectionSettings = SETTINGS) => {
  const { answer } = admit(object, extra, settings);
  expect(answer.allowed).toBe(false);
  expect(answer.status.message).toContain(message);
};

describe("pod-author annotations", () => {
  test("domainwall.io/audit is refused: audit mode comes from the policy ConfigMap only", () => {
    refused(
      withPod((p) => (p.metadata.annotations = { "domainwall.io/audit": "true" })),
      "audit mode comes from the namespace's policy ConfigMap (audit = true)",
    );
    expect(admit(deploymentPod()).pod.spec.initContainers[0].args).not.toContain("--audit");
  });
  for (const [key, value] of [
    ["domainwall.io/mode", "apply"],
    ["domainwall.io/policy", "kube-root-ca.crt"],
  ] as const)
    test(`${key} is refused outside annotation-namespaces, honoured inside`, () => {
      const pod = withPod((p) => (p.metadata.annotations = { [key]: value }));
      refused(pod, `annotation ${key} is not allowed in namespace "shop"`);
      refused(pod, "annotation-namespaces", {}, { ...SETTINGS, annotationNamespaces: ["other"] });
      expect(admit(pod, {}, { ...SETTINGS, annotationNamespaces: ["shop"] }).answer.allowed).toBe(true);
    });
  test("the namespace is the request's, not the pod's metadata", () => {
    const pod = withPod((p) => {
      p.metadata.namespace = "trusted";
      p.metadata.annotations = { "domainwall.io/mode": "apply" };
    });
    refused(pod, "not allowed", {}, { ...SETTINGS, annotationNamespaces: ["trusted"] });
  });
});

describe("a home-made 'already injected' sidecar", () => {
  const injected = () => admit(deploymentPod()).pod;
  const withSidecar = (change: (sidecar: Json, pod: Json) => void): Json => {
    const pod = injected();
    change(pod.spec.initContainers[0], pod);
    return pod;
  };
  const extras: [string, (sidecar: Json, pod: Json) => void, string][] = [
    ["livenessProbe.exec", (s) => (s.livenessProbe = { exec: { command: ["sh", "-c", "nft flush ruleset"] } }), "livenessProbe"],
    ["lifecycle.postStart", (s) => (s.lifecycle = { postStart: { exec: { command: ["sh"] } } }), "lifecycle"],
    ["envFrom", (s) => (s.envFrom = [{ configMapRef: { name: "evil" } }]), "envFrom"],
    ["workingDir", (s) => (s.workingDir = "/tmp"), "workingDir"],
    ["command", (s) => (s.command = ["/bin/sh"]), "command"],
    ["another env variable", (s) => (s.env = [...s.env, { name: "LD_PRELOAD", value: "/x.so" }]), "env"],
    ["stdin", (s) => (s.stdin = true), "stdin"],
    ["a probe timeout that is not the default", (s) => (s.livenessProbe = { ...s.livenessProbe, timeoutSeconds: 30 }), "livenessProbe"],
    ["a policy volume with items", (_s, p) => (p.spec.volumes[0].configMap.items = [{ key: "x", path: "policy.toml" }]), "configMap"],
    ["an optional policy volume", (_s, p) => (p.spec.volumes[0].configMap.optional = true), "configMap"],
    ["a run volume on disk", (_s, p) => (p.spec.volumes[1] = { name: "domainwall-run", emptyDir: {} }), "domainwall-run"],
  ];
  for (const [name, change, field] of extras)
    test(`${name} is refused, naming the field`, () => {
      refused(withSidecar(change), `initContainers[0] "domainwall" is not the container this webhook injects (it differs in`);
      expect(admit(withSidecar(change)).answer.status.message).toContain(field);
    });
  test("the fields the API server defaults, at their default values, are accepted", () => {
    const pod = withSidecar((s, p) => {
      Object.assign(s, {
        terminationMessagePath: "/dev/termination-log",
        terminationMessagePolicy: "File",
        imagePullPolicy: "IfNotPresent",
      });
      for (const probe of [s.startupProbe, s.livenessProbe]) {
        Object.assign(probe, { timeoutSeconds: 1, successThreshold: 1 });
        probe.httpGet.scheme = "HTTP";
      }
      p.spec.volumes[0].configMap.defaultMode = 420;
    });
    expect(admit(pod).result.outcome).toBe("unchanged");
  });
});

const G = 2000053;
const app = (securityContext: Json) => ({ name: "web", image: "nginx:1.27", securityContext });

describe("app drops are counted only as the runtime reads them", () => {
  const dropsAfter = (drop: string[]) =>
    admit(withPod((p) => (p.spec.containers = [app({ capabilities: { drop } })]))).pod.spec.containers[0].securityContext.capabilities.drop;
  test("CAP_-prefixed or lower-case names drop nothing (containerd makes CAP_CAP_NET_RAW): the exact names are appended", () => {
    expect(dropsAfter(["CAP_NET_RAW", "CAP_NET_ADMIN", "CAP_SETGID"])).toEqual([
      "CAP_NET_RAW",
      "CAP_NET_ADMIN",
      "CAP_SETGID",
      "NET_RAW",
      "NET_ADMIN",
      "SETGID",
    ]);
    expect(dropsAfter(["net_raw"])).toEqual(["net_raw", "NET_RAW", "NET_ADMIN", "SETGID"]);
  });
  test("ALL in any case counts as all; exact names already there are not repeated", () => {
    expect(dropsAfter(["all"])).toEqual(["all"]);
    expect(dropsAfter(["NET_RAW", "SETGID"])).toEqual(["NET_RAW", "SETGID", "NET_ADMIN"]);
  });
  test("adds are still read whatever the spelling", () =>
    refused(
      withPod((p) => (p.spec.containers = [app({ capabilities: { add: ["cap_net_admin"] } })])),
      "adds NET_ADMIN",
    ));
});

describe("the proxy's group cannot be gained", () => {
  test("every app container (init, regular, ephemeral) gets allowPrivilegeEscalation: false", () => {
    const injected = admit(
      withPod((p) => {
        p.spec.initContainers = [{ name: "init", image: "i:1" }];
        p.spec.containers.push(app({ runAsUser: 0 }));
      }),
    ).pod;
    const apps = [...injected.spec.initContainers.slice(1), ...injected.spec.containers];
    expect(apps.map((c: Json) => c.securityContext.allowPrivilegeEscalation)).toEqual([false, false, false]);
    injected.spec.ephemeralContainers = [{ name: "debugger", image: "busybox" }];
    const debugged = admit(injected, { operation: "UPDATE", subResource: "ephemeralcontainers" }).pod;
    expect(debugged.spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation).toBe(false);
  });
  test("an explicit allowPrivilegeEscalation: true is refused", () =>
    refused(
      withPod((p) => (p.spec.containers = [app({ allowPrivilegeEscalation: true })])),
      "allowPrivilegeEscalation: true: remove it",
    ));
  test("the group as fsGroup or in supplementalGroups is refused", () => {
    refused(
      withPod((p) => (p.spec.securityContext = { fsGroup: G })),
      "choose another fsGroup",
    );
    refused(
      withPod((p) => (p.spec.securityContext = { supplementalGroups: [1000, G] })),
      `supplementalGroups holds ${G}`,
    );
  });
});

describe("Pod Security baseline for the app containers of an injected pod", () => {
  const rows: [string, (p: Json) => void, string][] = [
    ["hostPID", (p) => (p.spec.hostPID = true), "hostPID: true shares the node's processes: remove it"],
    ["hostIPC", (p) => (p.spec.hostIPC = true), "hostIPC: true shares the node's IPC: remove it"],
    [
      "a hostPath volume (containerd.sock)",
      (p) => {
        p.spec.volumes = [{ name: "sock", hostPath: { path: "/run/containerd/containerd.sock" } }];
        p.spec.containers[0].volumeMounts = [{ name: "sock", mountPath: "/s" }];
      },
      'volumes "sock" are hostPath: use another volume type',
    ],
    ["SYS_MODULE", (p) => (p.spec.containers[0].securityContext = { capabilities: { add: ["SYS_MODULE"] } }), "adds SYS_MODULE: remove it"],
    [
      "BPF, PERFMON, DAC_READ_SEARCH",
      (p) => (p.spec.containers[0].securityContext = { capabilities: { add: ["BPF", "PERFMON", "DAC_READ_SEARCH", "CHOWN"] } }),
      "adds BPF, PERFMON, DAC_READ_SEARCH: remove them",
    ],
    ["procMount Unmasked", (p) => (p.spec.containers[0].securityContext = { procMount: "Unmasked" }), 'procMount "Unmasked": remove it'],
    [
      "a pod's seccomp Unconfined",
      (p) => (p.spec.securityContext = { seccompProfile: { type: "Unconfined" } }),
      "securityContext.seccompProfile is Unconfined: use RuntimeDefault",
    ],
    [
      "a container's AppArmor Unconfined",
      (p) => (p.spec.containers[0].securityContext = { appArmorProfile: { type: "Unconfined" } }),
      "appArmorProfile is Unconfined",
    ],
    [
      "the AppArmor annotation unconfined",
      (p) => (p.metadata.annotations = { "container.apparmor.security.beta.kubernetes.io/web": "unconfined" }),
      "is unconfined: remove it",
    ],
    [
      "a Windows host process",
      (p) => (p.spec.securityContext = { windowsOptions: { hostProcess: true } }),
      "windowsOptions.hostProcess is true",
    ],
    [
      "SYS_PTRACE with hostPID",
      (p) => {
        p.spec.hostPID = true;
        p.spec.containers[0].securityContext = { capabilities: { add: ["SYS_PTRACE"] } };
      },
      "adds SYS_PTRACE and can see domainwall's process",
    ],
    [
      "SYS_PTRACE alone",
      (p) => (p.spec.containers[0].securityContext = { capabilities: { add: ["SYS_PTRACE"] } }),
      "adds SYS_PTRACE: remove it",
    ],
  ];
  for (const [name, change, message] of rows) test(`${name} is refused`, () => refused(withPod(change), message));
  test("an ephemeral container aimed at domainwall with SYS_PTRACE is refused", () => {
    const injected = admit(deploymentPod()).pod;
    injected.spec.ephemeralContainers = [
      { name: "dbg", image: "busybox", targetContainerName: "domainwall", securityContext: { capabilities: { add: ["SYS_PTRACE"] } } },
    ];
    refused(injected, "can see domainwall's process", { operation: "UPDATE", subResource: "ephemeralcontainers" });
  });
  test("what baseline allows is still allowed", () => {
    const pod = withPod((p) => {
      p.spec.securityContext = { seccompProfile: { type: "RuntimeDefault" }, sysctls: [{ name: "net.ipv4.tcp_syncookies", value: "1" }] };
      p.spec.containers[0].securityContext = { capabilities: { add: ["NET_BIND_SERVICE", "CHOWN"] }, procMount: "Default" };
    });
    expect(admit(pod).result.outcome).toBe("injected");
  });
});

describe("hostAliases", () => {
  test("are refused: /etc/hosts would point an allowed name anywhere", () =>
    refused(
      withPod((p) => (p.spec.hostAliases = [{ ip: "203.0.113.66", hostnames: ["api.allowed.example"] }])),
      "hostAliases write names into /etc/hosts, past domainwall's DNS proxy: remove them",
    ));
});

describe("pod UPDATE (kubectl patch) is validated, never patched", () => {
  const update = (change: (pod: Json) => void) => {
    const old = admit(deploymentPod()).pod;
    old.metadata.name = "web-7d4b9c-abcde";
    const next = structuredClone(old);
    change(next);
    return admit(next, { operation: "UPDATE", oldObject: old });
  };
  test("swapping the sidecar's image is refused", () => {
    const { answer } = update((p) => (p.spec.initContainers[0].image = "evil.example/domainwall:1"));
    expect(answer.allowed).toBe(false);
    expect(answer.status.message).toContain('changes initContainers[0] "domainwall"');
    expect(answer.status.message).toContain("recreate the pod");
  });
  test("undoing an app container's hardening is refused", () => {
    const { answer } = update((p) => (p.spec.containers[0].securityContext = {}));
    expect(answer.allowed).toBe(false);
    expect(answer.status.message).toContain("containers[0].securityContext");
  });
  test("changing the policy volume is refused", () =>
    expect(update((p) => (p.spec.volumes[0].configMap.name = "kube-root-ca.crt")).answer.status.message).toContain(
      "volume domainwall-policy",
    ));
  test("an ordinary update (labels, an app image) is allowed with no patch", () => {
    const { answer, result } = update((p) => {
      p.metadata.labels = { app: "web", extra: "1" };
      p.spec.containers[0].image = "nginx:1.28";
    });
    expect(answer.allowed).toBe(true);
    expect(answer.patch).toBeUndefined();
    expect(result.outcome).toBe("unchanged");
  });
  test("an update of a pod without domainwall is let through unreviewed, never injected", () => {
    const old = { ...deploymentPod(), metadata: { name: "web-1", namespace: "shop" } };
    const { answer, result } = admit(structuredClone(old), { operation: "UPDATE", oldObject: old });
    expect(answer).toMatchObject({ allowed: true });
    expect(answer.patch).toBeUndefined();
    expect(result.outcome).toBe("skipped");
  });
});

test("deploy/: both webhooks register UPDATE on pods", async () => {
  const text = await Bun.file(`${import.meta.dir}/../../deploy/base/mutatingwebhookconfiguration.yaml`).text();
  const config = Bun.YAML.parse(text) as { webhooks: { rules: { operations: string[]; resources: string[] }[] }[] };
  for (const webhook of config.webhooks)
    expect(webhook.rules.filter((r) => r.resources.includes("pods")).flatMap((r) => r.operations)).toEqual(["CREATE", "UPDATE"]);
});

test("a re-invocation after another webhook added a container with ports keeps the sidecar (its ports variable is from the first pass)", () => {
  const injected = admit(deploymentPod()).pod;
  injected.spec.containers.push({ name: "mesh-proxy", image: "proxy:1", ports: [{ containerPort: 4143 }] });
  const again = admit(injected);
  expect(again.result.outcome).toBe("hardened");
  const udpFirst = admit(withPod((p) => p.spec.containers[0].ports.push({ containerPort: 53, protocol: "UDP" }))).pod;
  expect(udpFirst.spec.initContainers[0].env).toEqual([{ name: "DOMAINWALL_RUN_DIR", value: "/run/domainwall/state" }]);
  udpFirst.spec.containers[0].ports.pop();
  expect(admit(udpFirst).result.outcome).toBe("unchanged");
  injected.spec.initContainers[0].env = [
    { name: "DOMAINWALL_RUN_DIR", value: "/run/domainwall/state" },
    { name: "listening_ports_csv", value: "22,8080" },
    { name: "X", value: "1" },
  ];
  refused(injected, "it differs in env");
  injected.spec.initContainers[0].env = [{ name: "listening_ports_csv", valueFrom: { configMapKeyRef: { name: "x", key: "y" } } }];
  refused(injected, "it differs in env");
  // The run directory is the webhook's, exactly: elsewhere the app could share or swap it.
  injected.spec.initContainers[0].env = [{ name: "DOMAINWALL_RUN_DIR", value: "/run/domainwall" }];
  refused(injected, "it differs in env");
});

test("resources the API server rewrote in canonical form (0.1 → 100m) still match; other values do not", () => {
  const settings = { ...SETTINGS, requests: [{ name: "cpu" as const, quantity: "0.1" }] };
  const injected = admit(deploymentPod(), {}, settings).pod;
  injected.spec.initContainers[0].resources.requests.cpu = "100m";
  expect(admit(injected, {}, settings).result.outcome).toBe("unchanged");
  injected.spec.initContainers[0].resources.requests.cpu = "200m";
  refused(injected, "it differs in resources", {}, settings);
  injected.spec.initContainers[0].resources.requests = { cpu: "100m", memory: "1Gi" };
  refused(injected, "it differs in resources", {}, settings);
});

test("dnsConfig.nameservers are refused: the proxy forwards to the pod's resolv.conf, whose server would answer allowed names with any address", () => {
  refused(
    withPod((p) => {
      p.spec.dnsPolicy = "None";
      p.spec.dnsConfig = { nameservers: ["203.0.113.53"] };
    }),
    "dnsConfig.nameservers",
  );
  expect(admit(withPod((p) => (p.spec.dnsConfig = { options: [{ name: "ndots", value: "2" }] }))).result.outcome).toBe("injected");
});
