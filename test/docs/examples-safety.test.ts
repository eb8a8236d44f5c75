// Every pod we show (examples/**/*.yaml and the yaml blocks of the README and docs) is safe to copy:
// - app containers drop ALL capabilities, add none, and set allowPrivilegeEscalation: false;
// - domainwall containers drop ALL, add only what domainwall needs, set allowPrivilegeEscalation:
//   false, seccompProfile RuntimeDefault, CPU and memory requests and a memory limit;
// - no allowlist holds `svc.cluster.local` or `cluster.local` alone (no address: they open nothing);
// - --metrics-addr listens on the pod's own address (status.podIP) or loopback, never on every
//   address, and when its port is opened inbound a NetworkPolicy keeps it from the rest of the cluster.
import { describe, expect, test } from "bun:test";
import { codeBlocks, EXAMPLE_FILES, MARKDOWN, read } from "./docs.ts";

interface Container {
  name?: string;
  image?: string;
  args?: string[];
  command?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath?: string } } }[];
  resources?: { requests?: { cpu?: string; memory?: string }; limits?: { memory?: string } };
  securityContext?: {
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
    seccompProfile?: { type?: string };
  };
}
interface PodSpec {
  containers?: Container[];
  initContainers?: Container[];
  securityContext?: { seccompProfile?: { type?: string } };
}
interface Manifest {
  kind?: string;
  metadata?: { labels?: Record<string, string> };
  data?: Record<string, string>;
  spec?: {
    template?: { metadata?: { labels?: Record<string, string> }; spec?: PodSpec };
    jobTemplate?: { spec?: { template?: { metadata?: { labels?: Record<string, string> }; spec?: PodSpec } } };
    podSelector?: { matchLabels?: Record<string, string> };
    policyTypes?: string[];
    ingress?: { ports?: { port?: number | string }[]; from?: unknown[] }[];
  } & PodSpec;
}

/** What domainwall may be given: NET_ADMIN always, SETGID for --dns-proxy, NET_RAW for iptables-legacy. */
const DOMAINWALL_CAPABILITIES = new Set(["NET_ADMIN", "SETGID", "NET_RAW"]);
const EMPTY_NAMES = new Set(["svc.cluster.local", "cluster.local", "svc.cluster.local.", "cluster.local."]);

function podOf(m: Manifest): { spec: PodSpec; labels: Record<string, string> } | undefined {
  if (m.kind === "Pod") return m.spec ? { spec: m.spec, labels: m.metadata?.labels ?? {} } : undefined;
  const template = m.spec?.template ?? m.spec?.jobTemplate?.spec?.template;
  return template?.spec ? { spec: template.spec, labels: template.metadata?.labels ?? {} } : undefined;
}

const isDomainwall = (c: Container): boolean => (c.image ?? "").includes("domainwall");

/** Every problem of one file's manifests (a multi-document file is one unit: its NetworkPolicy counts). */
export function problemsOf(where: string, manifests: readonly Manifest[]): string[] {
  const problems: string[] = [];
  const policies = manifests.filter((m) => m.kind === "NetworkPolicy");
  // Inbound ports a ConfigMap's domainwall.toml opens (`ports = [3000, 9464]`).
  const filePorts = manifests
    .filter((m) => m.kind === "ConfigMap")
    .flatMap((m) => Object.values(m.data ?? {}))
    .flatMap((text) => [...(/^ports\s*=\s*\[([^\]]*)\]/m.exec(text)?.[1]?.split(",") ?? [])].map((p) => p.trim()));
  for (const m of manifests) {
    for (const [key, text] of Object.entries(m.kind === "ConfigMap" ? (m.data ?? {}) : {}))
      for (const entry of text.matchAll(/"([^"]+)"/g))
        if (EMPTY_NAMES.has(entry[1]!)) problems.push(`${where}: ConfigMap ${key} lists ${entry[1]}, which opens nothing`);
    const pod = podOf(m);
    if (!pod) continue;
    for (const c of [...(pod.spec.initContainers ?? []), ...(pod.spec.containers ?? [])]) {
      const at = `${where}: container ${c.name}`;
      const sc = c.securityContext ?? {};
      if (!(sc.capabilities?.drop ?? []).includes("ALL")) problems.push(`${at}: capabilities.drop must hold ALL`);
      if (sc.allowPrivilegeEscalation !== false) problems.push(`${at}: allowPrivilegeEscalation must be false`);
      if (sc.privileged === true) problems.push(`${at}: privileged`);
      const added = sc.capabilities?.add ?? [];
      if (!isDomainwall(c)) {
        if (added.length > 0) problems.push(`${at}: an app container adds ${added.join(", ")}`);
        continue;
      }
      for (const cap of added) if (!DOMAINWALL_CAPABILITIES.has(cap)) problems.push(`${at}: domainwall needs no ${cap}`);
      const seccomp = sc.seccompProfile?.type ?? pod.spec.securityContext?.seccompProfile?.type;
      if (seccomp !== "RuntimeDefault") problems.push(`${at}: seccompProfile must be RuntimeDefault`);
      const r = c.resources;
      if (!r?.requests?.cpu || !r.requests.memory || !r.limits?.memory)
        problems.push(`${at}: needs CPU and memory requests and a memory limit`);
      const env = new Map((c.env ?? []).map((e) => [e.name, e]));
      for (const entry of (env.get("hosts_csv")?.value ?? "").split(","))
        if (EMPTY_NAMES.has(entry.trim())) problems.push(`${at}: hosts_csv lists ${entry.trim()}, which opens nothing`);
      const args = [...(c.command ?? []), ...(c.args ?? [])];
      const i = args.indexOf("--metrics-addr");
      const addr = i >= 0 ? args[i + 1] : args.find((a) => a.startsWith("--metrics-addr="))?.slice("--metrics-addr=".length);
      if (addr === undefined) continue;
      const [, host = "", port = ""] = /^\[?(.*?)\]?:(\d+)$/.exec(addr) ?? [];
      const variable = /^\$\((\w+)\)$/.exec(host)?.[1];
      const fromPodIp = variable !== undefined && env.get(variable)?.valueFrom?.fieldRef?.fieldPath === "status.podIP";
      if (!fromPodIp && !["127.0.0.1", "::1", "localhost"].includes(host))
        problems.push(`${at}: --metrics-addr ${addr} must listen on the pod's own address ($(POD_IP) from status.podIP) or loopback`);
      const opened = [...(env.get("listening_ports_csv")?.value ?? "").split(",").map((p) => p.trim()), ...filePorts].includes(port);
      if (!opened) continue;
      const guarded = policies.some(
        (p) =>
          Object.entries(p.spec?.podSelector?.matchLabels ?? {}).every(([k, v]) => pod.labels[k] === v) &&
          (p.spec?.policyTypes ?? []).includes("Ingress") &&
          (p.spec?.ingress ?? []).every((rule) => rule.ports !== undefined && rule.ports.every((q) => String(q.port) !== port)),
      );
      if (!guarded)
        problems.push(`${at}: the metrics port ${port} is opened inbound; add a NetworkPolicy that admits only the app's ports`);
    }
  }
  return problems;
}

const parse = (text: string): Manifest[] => {
  const parsed = Bun.YAML.parse(text);
  return (Array.isArray(parsed) ? parsed : [parsed]).filter((m): m is Manifest => typeof m === "object" && m !== null);
};

const UNITS = [
  ...EXAMPLE_FILES.filter((p) => /\.ya?ml$/.test(p)).map((p) => ({ where: p, manifests: parse(read(p)) })),
  ...MARKDOWN.flatMap((doc) =>
    codeBlocks(read(doc))
      .filter((b) => b.lang === "yaml")
      .map((b, i) => ({ where: `${doc} yaml block ${i + 1}`, manifests: parse(b.text) })),
  ),
].filter((unit) => unit.manifests.some((m) => podOf(m) !== undefined));

test("there are pods to check: every example manifest and the README's", () => {
  expect(UNITS.map((u) => u.where)).toEqual(expect.arrayContaining(["examples/initcontainer-deployment.yaml", "README.md yaml block 1"]));
});

describe("every pod shown is safe to copy", () => {
  for (const { where, manifests } of UNITS)
    test(where, () => {
      expect(problemsOf(where, manifests)).toEqual([]);
    });
});

test("the checks catch the unsafe shapes the examples once had", () => {
  const pod = (dw: Container, app: Container, more: Manifest[] = []): Manifest[] => [
    { kind: "Deployment", spec: { template: { metadata: { labels: { app: "a" } }, spec: { initContainers: [dw], containers: [app] } } } },
    ...more,
  ];
  const safeApp: Container = {
    name: "app",
    image: "alpine",
    securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
  };
  const safe: Container = {
    name: "domainwall",
    image: "r/domainwall:1",
    args: ["watch", "--metrics-addr", "$(POD_IP):9464"],
    env: [
      { name: "hosts_csv", value: "api.test.svc.cluster.local:8080" },
      { name: "listening_ports_csv", value: "3000,9464" },
      { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
    ],
    resources: { requests: { cpu: "10m", memory: "64Mi" }, limits: { memory: "128Mi" } },
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { add: ["NET_ADMIN"], drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
  };
  const policy: Manifest = {
    kind: "NetworkPolicy",
    spec: { podSelector: { matchLabels: { app: "a" } }, policyTypes: ["Ingress"], ingress: [{ ports: [{ port: 3000 }] }] },
  };
  expect(problemsOf("x", pod(safe, safeApp, [policy]))).toEqual([]);
  const cases: [string, Manifest[], string][] = [
    ["an app without a security context (keeps NET_RAW)", pod(safe, { name: "app", image: "alpine" }, [policy]), "drop must hold ALL"],
    [
      "no seccomp",
      pod({ ...safe, securityContext: { ...safe.securityContext, seccompProfile: undefined } }, safeApp, [policy]),
      "seccompProfile",
    ],
    ["no resources", pod({ ...safe, resources: undefined }, safeApp, [policy]), "requests"],
    [
      "svc.cluster.local",
      pod({ ...safe, env: [{ name: "hosts_csv", value: "svc.cluster.local,x.example" }, ...safe.env!.slice(1)] }, safeApp, [policy]),
      "opens nothing",
    ],
    ["metrics on 0.0.0.0", pod({ ...safe, args: ["watch", "--metrics-addr", "0.0.0.0:9464"] }, safeApp, [policy]), "pod's own address"],
    ["metrics port open to the cluster", pod(safe, safeApp), "NetworkPolicy"],
  ];
  for (const [name, manifests, expected] of cases) expect(`${name}: ${problemsOf("x", manifests).join("; ")}`).toContain(expected);
});
