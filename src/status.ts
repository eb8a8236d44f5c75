// What is loaded, as status, explain, suggest and /healthz read it back from the kernel: the backends
// produce it, visibility and metrics consume it.
import type { PortRange } from "./net/port-range.ts";
import type { Direction } from "./policy/rules.ts";
import type { DeniedSetFill } from "./policy/denied-full.ts";

/**
 * A destination the loaded rules refused (or, in audit mode, would have refused), as the kernel
 * recorded it. Out: the address and port a packet went to; in: the address it came from and our
 * port. `port` is 0 for protocols without ports (ICMP).
 */
export interface DeniedDestination {
  readonly address: string;
  /** `tcp`, `udp`, `icmp`, `ipv6-icmp`, or the protocol number when nft has no name for it. */
  readonly protocol: string;
  readonly port: number;
  readonly direction: Direction;
  readonly packets: number;
  readonly bytes: number;
  /** Seconds since its last packet, where the kernel tells it (nft: the timeout minus what is left of it). */
  readonly lastSeenSecondsAgo?: number;
}

/**
 * A loaded allow entry: an address, network or range (`203.0.113.10`, `192.0.2.0/24`,
 * `192.0.2.1-192.0.2.9`: nft merges adjacent entries) and the ports it is open on: every port and
 * protocol, or the port ranges of the entries listed with ports (`api.example:443`).
 */
export interface AllowedEntry {
  readonly network: string;
  readonly ports: "all" | readonly PortRange[];
}

/**
 * One of the DNS proxy's timeout sets, with the ports the output chain's rules open to its
 * addresses: every port (`proxy_v4`, `proxy_v6`), the port ranges its rules name
 * (`ip daddr @proxy_v4_tcp443 tcp dport 443 accept`), or none when no rule accepts it.
 */
export interface ProxySet {
  readonly name: string;
  readonly family: 4 | 6;
  readonly ports: "all" | readonly PortRange[];
}

/** An address in one of the DNS proxy's timeout sets (proxy_v4, proxy_v4_tcp443...), as the kernel holds it. */
export interface ProxyElement {
  readonly address: string;
  /** The set that holds it, and the ports that set opens (see ProxySet). */
  readonly set: string;
  readonly ports: ProxySet["ports"];
  /** Its timeout, whole seconds. */
  readonly timeoutSeconds: number;
  /** What is left of it, whole seconds (rounded down by nft). */
  readonly expiresInSeconds: number;
}

/** What is loaded, read back from the kernel: for `status`, `explain` and `suggest`. */
export interface LoadedStatus {
  readonly loaded: true;
  /** False in audit mode: the rules count and record what they would refuse, and accept it. */
  readonly enforcing: boolean;
  readonly sets: readonly { readonly name: string; readonly elements: number }[];
  readonly counters: readonly { readonly name: string; readonly packets: number; readonly bytes: number }[];
  /** The allowed outbound addresses and networks as loaded, each with its ports. */
  readonly allowed: readonly AllowedEntry[];
  /** Where DNS (port 53) may go: anywhere, or these addresses and networks. */
  readonly dns: "any" | readonly string[];
  /**
   * `--dns-proxy`: the addresses its answers admitted, by address, with the time they have left;
   * undefined when the rules have no DNS proxy.
   */
  readonly proxy?: readonly ProxyElement[];
  /** `--dns-proxy`: the port the pod's DNS is redirected to and the group whose queries are not (the proxy's). */
  readonly proxyRedirect?: { readonly port: number; readonly group?: number };
  /** `--dns-proxy`: its sets, empty ones too, with the ports each opens; undefined without the proxy. */
  readonly proxySets?: readonly ProxySet[];
  /**
   * Whether the output chain accepts whatever leaves through `lo` (a connect to this namespace's own
   * addresses or loopback); undefined where the backend does not say.
   */
  readonly acceptsLoopback?: boolean;
  /** Destinations refused, most packets first; undefined when the backend does not record them (iptables-legacy). */
  readonly denied?: readonly DeniedDestination[];
  /**
   * Why the loaded rules are not enforced (a hook or jump missing, or a rule decided before ours);
   * absent when they are. `status` exits 3 then.
   */
  readonly problems?: readonly string[];
  /** The denied sets that are full (new destinations go unrecorded); undefined where the backend records none. */
  readonly deniedFull?: readonly DeniedSetFill[];
}

/** What is loaded now, as `status` shows it. */
export type Status = { readonly loaded: false } | LoadedStatus;

/**
 * Allow entries from (network, ports) pairs: every-port networks as they come, then each network
 * listed with ports once, with its ranges in the order given.
 */
export function allowedEntriesOf(
  everyPort: readonly string[],
  withPorts: readonly { network: string; ports: PortRange }[],
): AllowedEntry[] {
  const ported = new Map<string, PortRange[]>();
  for (const { network, ports } of withPorts) ported.set(network, [...(ported.get(network) ?? []), ports]);
  return [
    ...everyPort.map((network): AllowedEntry => ({ network, ports: "all" })),
    ...[...ported].map(([network, ports]) => ({ network, ports })),
  ];
}

export const notEnforcing = (problems: readonly string[]): { problems?: readonly string[] } => (problems.length > 0 ? { problems } : {});
