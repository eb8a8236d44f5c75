import { DEFAULT_PROXY_GID } from "../config/proxy-gid.ts";
import { capabilityName, type Container, type ContainerList, type Pod } from "./pod.ts";
import { SIDECAR_NAME } from "./sidecar.ts";

/**
 * Pod Security "baseline" for the pod and its app containers. An injected pod's namespace must run
 * at `privileged` (the sidecar needs NET_ADMIN), so nothing else checks what the app containers do:
 * the webhook does, and each message says what to change. Pure.
 */

/** Capabilities baseline lets a container add (NET_RAW and SETGID too, but those are domainwall's own refusals). */
const BASELINE_CAPABILITIES = new Set([
  "AUDIT_WRITE",
  "CHOWN",
  "DAC_OVERRIDE",
  "FOWNER",
  "FSETID",
  "KILL",
  "MKNOD",
  "NET_BIND_SERVICE",
  "SETFCAP",
  "SETPCAP",
  "SETUID",
  "SYS_CHROOT",
]);
/** Reported by the webhook's own refusal (inject.ts), not again here. */
const REFUSED_ELSEWHERE = new Set(["NET_ADMIN", "NET_RAW", "SETGID", "SYS_ADMIN", "SYS_PTRACE"]);
/** The sysctls baseline calls safe. */
const SAFE_SYSCTLS = new Set([
  "kernel.shm_rmid_forced",
  "net.ipv4.ip_local_port_range",
  "net.ipv4.ip_unprivileged_port_start",
  "net.ipv4.tcp_syncookies",
  "net.ipv4.ping_group_range",
  "net.ipv4.ip_local_reserved_ports",
  "net.ipv4.tcp_keepalive_time",
  "net.ipv4.tcp_fin_timeout",
  "net.ipv4.tcp_keepalive_intvl",
  "net.ipv4.tcp_keepalive_probes",
]);
const SELINUX_TYPES = new Set(["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"]);

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);
const objectAt = (value: unknown, key: string): Json | undefined => (isObject(value) && isObject(value[key]) ? value[key] : undefined);
const show = (value: unknown): string => {
  const text = JSON.stringify(value) ?? "undefined";
  return text.length > 80 ? `${text.slice(0, 80)}...` : text;
};

/** Why a security context (the pod's or a container's) is below baseline; `where` names it. */
function contextProblems(sc: Json | undefined, where: string): string[] {
  if (sc === undefined) return [];
  const problems: string[] = [];
  const type = (key: string) => objectAt(sc, key)?.type;
  if (type("seccompProfile") === "Unconfined")
    problems.push(`${where}.seccompProfile is Unconfined: use RuntimeDefault or Localhost, or leave it out`);
  if (type("appArmorProfile") === "Unconfined")
    problems.push(`${where}.appArmorProfile is Unconfined: use RuntimeDefault or Localhost, or leave it out`);
  if (objectAt(sc, "windowsOptions")?.hostProcess === true)
    problems.push(`${where}.windowsOptions.hostProcess is true: remove it (a host process is outside the pod)`);
  const selinux = objectAt(sc, "seLinuxOptions");
  if (selinux !== undefined) {
    if (!SELINUX_TYPES.has(String(selinux.type ?? "")))
      problems.push(`${where}.seLinuxOptions.type ${show(selinux.type)} is not allowed: leave it out`);
    if ((selinux.user ?? "") !== "" || (selinux.role ?? "") !== "")
      problems.push(`${where}.seLinuxOptions sets a user or role: remove them`);
  }
  return problems;
}

/** Why an app container is below baseline. `seesSidecar`: it shares a process namespace with domainwall. */
export function containerBaselineProblems(list: ContainerList, index: number, container: Container, pod: Pod): string[] {
  const where = `${list}[${index}] ${show(container.name)}`;
  const sc = isObject(container.securityContext) ? (container.securityContext as Json) : undefined;
  const problems = contextProblems(sc, `${where} securityContext`);
  if (sc?.procMount !== undefined && sc.procMount !== "Default")
    problems.push(`${where} sets securityContext.procMount ${show(sc.procMount)}: remove it (the default masks /proc)`);
  const added = (container.securityContext?.capabilities?.add ?? []).map(capabilityName);
  const outside = added.filter((cap) => !BASELINE_CAPABILITIES.has(cap) && !REFUSED_ELSEWHERE.has(cap));
  if (outside.length > 0)
    problems.push(
      `${where} adds ${outside.join(", ")}: remove ${outside.length === 1 ? "it" : "them"} from securityContext.capabilities.add (Pod Security baseline allows only ${[...BASELINE_CAPABILITIES].join(", ")})`,
    );
  const seesSidecar =
    pod.spec.shareProcessNamespace === true ||
    (pod.spec as Json).hostPID === true ||
    (list === "ephemeralContainers" && container.targetContainerName === SIDECAR_NAME);
  if (added.includes("SYS_PTRACE") || added.includes("ALL"))
    problems.push(
      seesSidecar
        ? `${where} adds SYS_PTRACE and can see domainwall's process (shareProcessNamespace, hostPID or targetContainerName ${SIDECAR_NAME}): remove SYS_PTRACE (it could take over the process that holds NET_ADMIN)`
        : `${where} adds SYS_PTRACE: remove it (Pod Security baseline)`,
    );
  for (const [i, port] of (container.ports ?? []).entries())
    if (port.hostPort !== undefined && port.hostPort !== 0) problems.push(`${where} ports[${i}] sets hostPort: remove it (use a Service)`);
  return problems;
}

/**
 * Why the pod as a whole (not one container) could step around the sidecar or is below baseline,
 * as sentences that say what to change.
 */
export function podProblems(pod: Pod): string[] {
  const problems: string[] = [];
  const spec = pod.spec as unknown as Json;
  const sc = pod.spec.securityContext;
  if (sc?.fsGroup === DEFAULT_PROXY_GID)
    problems.push(
      `securityContext.fsGroup is ${DEFAULT_PROXY_GID}, domainwall's DNS-proxy group, which every container would join and whose traffic skips the proxy: choose another fsGroup`,
    );
  if (sc?.supplementalGroups?.includes(DEFAULT_PROXY_GID) === true)
    problems.push(
      `securityContext.supplementalGroups holds ${DEFAULT_PROXY_GID}, domainwall's DNS-proxy group, whose traffic skips the proxy: remove it`,
    );
  if (spec.hostPID === true) problems.push("hostPID: true shares the node's processes: remove it");
  if (spec.hostIPC === true) problems.push("hostIPC: true shares the node's IPC: remove it");
  // /etc/hosts is read before DNS: an allowed name pointed at any address would pass the allowlist.
  if (Array.isArray(spec.hostAliases) && spec.hostAliases.length > 0)
    problems.push("hostAliases write names into /etc/hosts, past domainwall's DNS proxy: remove them (use DNS names the policy allows)");
  // The proxy forwards to the resolvers in the pod's resolv.conf: one the pod names could answer an allowed name with any address.
  const nameservers = objectAt(spec, "dnsConfig")?.nameservers;
  if (Array.isArray(nameservers) && nameservers.length > 0)
    problems.push(
      "dnsConfig.nameservers choose the resolver domainwall's DNS proxy trusts: remove them (the namespace's policy can set dns-servers)",
    );
  const hostPaths = (pod.spec.volumes ?? []).filter((v) => v.hostPath !== undefined).map((v) => show(v.name));
  if (hostPaths.length > 0)
    problems.push(`volumes ${hostPaths.join(", ")} are hostPath: use another volume type (the node's files are outside the pod)`);
  problems.push(...contextProblems(isObject(sc) ? (sc as Json) : undefined, "securityContext"));
  const sysctls = Array.isArray((sc as Json | undefined)?.sysctls) ? ((sc as Json).sysctls as unknown[]) : [];
  const unsafe = sysctls.map((s) => (isObject(s) ? s.name : s)).filter((name) => typeof name !== "string" || !SAFE_SYSCTLS.has(name));
  if (unsafe.length > 0) problems.push(`securityContext.sysctls ${unsafe.map(show).join(", ")} are not safe sysctls: remove them`);
  for (const [key, value] of Object.entries(pod.metadata.annotations ?? {}))
    if (key.startsWith("container.apparmor.security.beta.kubernetes.io/") && value === "unconfined")
      problems.push(`annotation ${show(key)} is unconfined: remove it`);
  return problems;
}
