/**
 * The parts of a Pod the webhook reads, checked for shape (never cast): the API server sends valid
 * pods, but the webhook must answer anything it is sent without throwing.
 */
export interface Capabilities {
  readonly add?: readonly string[];
  readonly drop?: readonly string[];
}
export interface ContainerSecurity {
  readonly privileged?: boolean;
  readonly allowPrivilegeEscalation?: boolean;
  readonly runAsGroup?: number;
  readonly capabilities?: Capabilities;
}
export interface ContainerPort {
  readonly containerPort: number;
  readonly protocol?: string;
  readonly hostPort?: number;
}
export interface Container {
  readonly name: string;
  readonly image?: string;
  readonly command?: readonly string[];
  readonly args?: readonly string[];
  readonly env?: readonly { readonly name: string; readonly value?: string; readonly valueFrom?: unknown }[];
  readonly restartPolicy?: string;
  readonly ports?: readonly ContainerPort[];
  readonly securityContext?: ContainerSecurity;
  readonly volumeMounts?: readonly { readonly name: string; readonly mountPath: string; readonly readOnly?: boolean }[];
  readonly [key: string]: unknown;
}
export interface Volume {
  readonly name: string;
  readonly [key: string]: unknown;
}
export interface Pod {
  readonly metadata: {
    readonly name?: string;
    readonly generateName?: string;
    readonly namespace?: string;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly spec: {
    readonly hostNetwork?: boolean;
    readonly shareProcessNamespace?: boolean;
    readonly securityContext?: { readonly runAsGroup?: number; readonly fsGroup?: number; readonly supplementalGroups?: readonly number[] };
    readonly initContainers?: readonly Container[];
    readonly containers: readonly Container[];
    readonly ephemeralContainers?: readonly Container[];
    readonly volumes?: readonly Volume[];
  };
}

export type ContainerList = "initContainers" | "containers" | "ephemeralContainers";

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
const isStrings = (value: unknown): boolean => Array.isArray(value) && value.every((item) => typeof item === "string");
const optional = (value: unknown, check: (value: unknown) => boolean): boolean => value === undefined || check(value);

/** Why a container does not have the shape the webhook reads; undefined when it does. */
function containerProblem(value: unknown, where: string): string | undefined {
  if (!isObject(value) || typeof value.name !== "string") return `${where} is not a container with a name`;
  const sc = value.securityContext;
  if (!optional(sc, isObject)) return `${where}.securityContext is not an object`;
  if (isObject(sc)) {
    for (const key of ["privileged", "allowPrivilegeEscalation"] as const)
      if (!optional(sc[key], (p) => typeof p === "boolean")) return `${where}.securityContext.${key} is not a boolean`;
    if (!optional(sc.runAsGroup, Number.isInteger)) return `${where}.securityContext.runAsGroup is not an integer`;
    const caps = sc.capabilities;
    if (!optional(caps, isObject)) return `${where}.securityContext.capabilities is not an object`;
    if (isObject(caps) && (!optional(caps.add, isStrings) || !optional(caps.drop, isStrings)))
      return `${where}.securityContext.capabilities add and drop must be lists of names`;
  }
  const ports = value.ports;
  if (!optional(ports, (p) => Array.isArray(p) && p.every((port) => isObject(port) && Number.isInteger(port.containerPort))))
    return `${where}.ports is not a list of ports`;
  if (!optional(value.args, isStrings) || !optional(value.command, isStrings)) return `${where} command and args must be lists of strings`;
  if (!optional(value.env, (e) => Array.isArray(e) && e.every((item) => isObject(item) && typeof item.name === "string")))
    return `${where}.env is not a list of variables`;
  if (!optional(value.volumeMounts, (m) => Array.isArray(m) && m.every((item) => isObject(item) && typeof item.name === "string")))
    return `${where}.volumeMounts is not a list of mounts`;
  return undefined;
}

/** The pod, or why it is not one the webhook can read. */
export function readPod(value: unknown): { ok: true; pod: Pod } | { ok: false; reason: string } {
  if (!isObject(value) || !isObject(value.spec)) return { ok: false, reason: "the object is not a Pod with a spec" };
  const metadata = value.metadata;
  if (!isObject(metadata)) return { ok: false, reason: "metadata is not an object" };
  if (!optional(metadata.annotations, (a) => isObject(a) && Object.values(a).every((v) => typeof v === "string")))
    return { ok: false, reason: "metadata.annotations is not a map of strings" };
  for (const key of ["name", "generateName", "namespace"] as const)
    if (!optional(metadata[key], (v) => typeof v === "string")) return { ok: false, reason: `metadata.${key} is not a string` };
  const spec = value.spec;
  if (!Array.isArray(spec.containers)) return { ok: false, reason: "spec.containers is not a list" };
  for (const list of ["initContainers", "containers", "ephemeralContainers"] as const) {
    const containers = spec[list];
    if (containers === undefined) continue;
    if (!Array.isArray(containers)) return { ok: false, reason: `spec.${list} is not a list` };
    for (const [i, container] of containers.entries()) {
      const problem = containerProblem(container, `spec.${list}[${i}]`);
      if (problem !== undefined) return { ok: false, reason: problem };
    }
  }
  if (!optional(spec.volumes, (v) => Array.isArray(v) && v.every((item) => isObject(item) && typeof item.name === "string")))
    return { ok: false, reason: "spec.volumes is not a list of named volumes" };
  for (const key of ["hostNetwork", "shareProcessNamespace"] as const)
    if (!optional(spec[key], (h) => typeof h === "boolean")) return { ok: false, reason: `spec.${key} is not a boolean` };
  if (!optional(spec.securityContext, isObject)) return { ok: false, reason: "spec.securityContext is not an object" };
  if (isObject(spec.securityContext)) {
    for (const key of ["runAsGroup", "fsGroup"] as const)
      if (!optional(spec.securityContext[key], Number.isInteger))
        return { ok: false, reason: `spec.securityContext.${key} is not an integer` };
    if (!optional(spec.securityContext.supplementalGroups, (g) => Array.isArray(g) && g.every(Number.isInteger)))
      return { ok: false, reason: "spec.securityContext.supplementalGroups is not a list of integers" };
  }
  return { ok: true, pod: value as unknown as Pod };
}

/** `CAP_NET_ADMIN`, `net_admin` and `NET_ADMIN` name one capability. */
export const capabilityName = (name: string): string => name.toUpperCase().replace(/^CAP_/, "");
