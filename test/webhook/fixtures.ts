import type { InjectionSettings } from "../../src/config/webhook.ts";

export const SETTINGS: InjectionSettings = {
  image: "ghcr.io/domainwall/domainwall:0.1.0",
  mode: "proxy",
  extraHosts: [
    { raw: "**.svc.cluster.local", wildcard: true },
    { raw: "kube-dns.kube-system.svc.cluster.local", wildcard: false },
  ],
  metricsPort: 9464,
  requests: [
    { name: "cpu", quantity: "10m" },
    { name: "memory", quantity: "64Mi" },
  ],
  limits: [{ name: "memory", quantity: "128Mi" }],
  annotationNamespaces: [],
};

/** A Deployment's pod as the API server sends it: generateName, no name, no initContainers, volumes or securityContext. */
export const deploymentPod = (): Record<string, unknown> => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { generateName: "web-7d4b9c-", namespace: "shop", labels: { app: "web" } },
  spec: {
    containers: [{ name: "web", image: "nginx:1.27", ports: [{ containerPort: 8080 }, { containerPort: 8443, protocol: "TCP" }] }],
  },
});

/** A pod with existing initContainers, volumes and security contexts at every level. */
export const busyPod = (): Record<string, unknown> => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "busy", namespace: "shop", annotations: { "example.com/owner": "team-a" } },
  spec: {
    securityContext: { runAsNonRoot: true, runAsUser: 1000, fsGroup: 2000 },
    initContainers: [{ name: "migrate", image: "app:1", securityContext: { capabilities: { drop: ["NET_RAW"] } } }],
    containers: [
      {
        name: "app",
        image: "app:1",
        securityContext: { readOnlyRootFilesystem: true },
        volumeMounts: [{ name: "data", mountPath: "/data" }],
      },
      { name: "helper", image: "helper:1", securityContext: { capabilities: { add: ["NET_BIND_SERVICE"] } } },
      { name: "hardened", image: "h:1", securityContext: { capabilities: { drop: ["ALL"] } } },
    ],
    volumes: [{ name: "data", emptyDir: {} }],
  },
});

export const review = (object: unknown, extra: Record<string, unknown> = {}) => ({
  apiVersion: "admission.k8s.io/v1",
  kind: "AdmissionReview",
  request: {
    uid: "705ab4f5-6393-11e8-b7cc-42010a800002",
    kind: { group: "", version: "v1", kind: "Pod" },
    resource: { group: "", version: "v1", resource: "pods" },
    namespace: "shop",
    operation: "CREATE",
    object,
    dryRun: false,
    ...extra,
  },
});
