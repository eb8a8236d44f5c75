import type { AllowedEntry, LoadedStatus, ProxyElement } from "../status.ts";
import { formatPortRange } from "../net/port-range.ts";
import { contains, parseCidr } from "../net/ip.ts";
import { entryHolds } from "./explain.ts";

/** What a running watch says of the proxy's admitted addresses (watch.json), to name them. */
export interface AdmittedNames {
  readonly address: string;
  readonly set?: string;
  readonly names: readonly string[];
  readonly entries: readonly string[];
}

/** `all`, or the port ranges as the entry syntax writes them: `["443/tcp", "123/udp"]`. */
export const portsText = (ports: AllowedEntry["ports"]): "all" | string[] => (ports === "all" ? "all" : ports.map(formatPortRange));

/** Whether every address of `inner` is in `outer` (loaded entries: an address, a CIDR or an `a-b` range). */
function covers(outer: string, inner: string): boolean {
  if (inner.includes("-")) return inner.split("-").every((end) => entryHolds(outer, end));
  const a = parseCidr(outer);
  const b = parseCidr(inner);
  if (a.ok && b.ok) return contains(a.cidr, b.cidr);
  // A range around a network: it holds the network's first address and is wide enough only when it holds both ends.
  return b.ok && b.cidr.prefix === (b.cidr.family === 4 ? 32 : 128) && entryHolds(outer, inner);
}

/**
 * The loaded entries with ports that no every-port entry covers whole: an address that a name
 * without ports also holds is open on every port, not "on some ports only".
 */
export function portedOnly(allowed: readonly AllowedEntry[]): AllowedEntry[] {
  const everyPort = allowed.filter((e) => e.ports === "all");
  return allowed.filter((e) => e.ports !== "all" && !everyPort.some((outer) => covers(outer.network, e.network)));
}

const namesFor = (admitted: readonly AdmittedNames[], e: ProxyElement) =>
  admitted.find((a) => a.address === e.address && (a.set === undefined || a.set === e.set));

/**
 * `status --json` `allowed`: the allowlist's entries as the kernel holds them (`from: "allowlist"`),
 * then each address the DNS proxy admitted with time left, on its set's ports (`from: "dns-proxy"`).
 */
export function allowedJson(status: LoadedStatus, admitted: readonly AdmittedNames[]) {
  return [
    ...status.allowed.map((e) => ({ network: e.network, ports: portsText(e.ports), from: "allowlist" as const })),
    ...(status.proxy ?? [])
      .filter((e) => e.expiresInSeconds > 0)
      .map((e) => ({
        network: e.address,
        ports: portsText(e.ports),
        from: "dns-proxy" as const,
        set: e.set,
        expiresInSeconds: e.expiresInSeconds,
        names: namesFor(admitted, e)?.names ?? [],
      })),
  ];
}

/**
 * `status --json` `dnsProxy`: null without the proxy's rules. The port and group are the kernel's
 * redirect rule's; each set with the ports its rules open and its elements, named from a running
 * watch's state (empty names without one).
 */
export function dnsProxyJson(
  status: LoadedStatus,
  watch: { running: boolean; admitted: readonly AdmittedNames[]; workerPid?: number; supervisorPid?: number },
) {
  if (status.proxySets === undefined) return null;
  return {
    port: status.proxyRedirect?.port ?? null,
    group: status.proxyRedirect?.group ?? null,
    running: watch.running,
    // The process answering the queries now, and the supervisor holding the sockets (null: no watch, or not supervised).
    workerPid: watch.workerPid ?? null,
    supervisorPid: watch.supervisorPid ?? null,
    sets: status.proxySets.map((set) => ({
      name: set.name,
      family: set.family,
      ports: portsText(set.ports),
      elements: (status.proxy ?? [])
        .filter((e) => e.set === set.name)
        .map((e) => {
          const known = namesFor(watch.admitted, e);
          return {
            address: e.address,
            timeoutSeconds: e.timeoutSeconds,
            expiresInSeconds: e.expiresInSeconds,
            names: known?.names ?? [],
            entries: known?.entries ?? [],
          };
        }),
    })),
  };
}

/** The text lines for the proxy's admissions, by set with its ports, at most `shown` addresses. */
export function proxyLines(status: LoadedStatus, admitted: readonly AdmittedNames[], shown: number): string[] {
  if (status.proxySets === undefined) return [];
  const live = (status.proxy ?? []).filter((e) => e.expiresInSeconds > 0);
  const redirect = status.proxyRedirect === undefined ? "no redirect rule" : `DNS redirected to port ${status.proxyRedirect.port}`;
  const lines = [`admitted by the DNS proxy (${redirect}): ${live.length} ${live.length === 1 ? "address" : "addresses"}`];
  let left = shown;
  for (const set of status.proxySets) {
    const elements = live.filter((e) => e.set === set.name);
    if (elements.length === 0) continue;
    const ports = set.ports === "all" ? "every port" : set.ports.length === 0 ? "no port" : set.ports.map(formatPortRange).join(", ");
    lines.push(`  ${set.name} (${ports}):`);
    for (const e of elements.slice(0, Math.max(0, left))) {
      const names = namesFor(admitted, e)?.names ?? [];
      lines.push(`    ${e.address}${names.length > 0 ? ` (${names.join(", ")})` : ""}: ${e.expiresInSeconds}s left`);
    }
    if (elements.length > left) lines.push(`    and ${elements.length - Math.max(0, left)} more ('status --json' lists them all)`);
    left -= elements.length;
  }
  return lines;
}
