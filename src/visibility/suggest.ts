import type { DeniedDestination } from "../status.ts";
import { formatEntry } from "../config/port-spec.ts";

/** One allowlist entry suggested from what was recorded, with what it covers. */
export interface Suggestion {
  /** `api.example:443/tcp`, `203.0.113.5:8080/udp`, `[2001:db8::1]:443/tcp`, or a bare address (ICMP: no port). */
  readonly entry: string;
  readonly packets: number;
  readonly named: boolean;
  /** A name the DNS proxy refused (or, with --audit, forwarded anyway): how often it was asked. */
  readonly queries?: number;
}

/** The allowlist entry for a host and what was recorded: `HOST:PORT/PROTO`, a bare host for ICMP and other protocols without ports. */
const entryFor = (host: string, port: number, protocol: string): string =>
  formatEntry(
    port === 0 || (protocol !== "tcp" && protocol !== "udp")
      ? { target: host }
      : { target: host, ports: { protocol, first: port, last: port } },
  );

/**
 * An allowlist from outbound destinations recorded as denied: by the name that held the address
 * where one is known (several destinations of one name and port become one entry), else by the
 * address; names first, each group by packets. Inbound destinations suggest `ports` instead.
 * The names the DNS proxy refused come before all of them, by queries, with every port (the proxy
 * sees names, not ports); a recorded destination of such a name adds nothing more. DNS (port 53)
 * to an address is never an entry: an entry would open DNS to that server, a way to carry data out
 * in queries; it is proposed for --dns-servers instead, with a warning.
 */
export function suggestAllowlist(
  denied: readonly DeniedDestination[],
  namesOf: (address: string) => readonly string[],
  refusedNames: readonly { readonly name: string; readonly count: number }[] = [],
): { hosts: Suggestion[]; ports: { port: number; packets: number }[]; dnsServers: { address: string; packets: number }[] } {
  const entries = new Map<string, Suggestion>();
  const ports = new Map<number, number>();
  const resolvers = new Map<string, number>();
  for (const d of denied) {
    if (d.direction === "in") {
      if (d.protocol === "tcp") ports.set(d.port, (ports.get(d.port) ?? 0) + d.packets);
      continue;
    }
    if (d.port === 53 && (d.protocol === "udp" || d.protocol === "tcp")) {
      resolvers.set(d.address, (resolvers.get(d.address) ?? 0) + d.packets);
      continue;
    }
    const names = namesOf(d.address);
    for (const [host, named] of names.length > 0 ? names.map((n) => [n, true] as const) : [[d.address, false] as const]) {
      const entry = entryFor(host, d.port, d.protocol);
      const seen = entries.get(entry);
      entries.set(entry, { entry, packets: (seen?.packets ?? 0) + d.packets, named });
    }
  }
  const byPackets = (a: Suggestion, b: Suggestion) => b.packets - a.packets || a.entry.localeCompare(b.entry);
  const proxied = [...refusedNames]
    .sort((a, b) => b.count - a.count || a.name.localeCompare(b.name))
    .map((r): Suggestion => ({ entry: r.name, packets: 0, named: true, queries: r.count }));
  const covered = new Set(proxied.map((s) => s.entry));
  const all = [...entries.values()].filter((s) => !(s.named && covered.has(s.entry.replace(/:\d+(\/udp)?$/, ""))));
  return {
    hosts: [...proxied, ...all.filter((s) => s.named).sort(byPackets), ...all.filter((s) => !s.named).sort(byPackets)],
    ports: [...ports].map(([port, packets]) => ({ port, packets })).sort((a, b) => b.packets - a.packets || a.port - b.port),
    dnsServers: [...resolvers]
      .map(([address, packets]) => ({ address, packets }))
      .sort((a, b) => b.packets - a.packets || a.address.localeCompare(b.address)),
  };
}

/** The warning and the --dns-servers line for DNS that was denied to addresses of no resolver of the policy. */
function dnsLines(servers: ReturnType<typeof suggestAllowlist>["dnsServers"]): string[] {
  if (servers.length === 0) return [];
  return [
    `# WARNING: DNS (port 53) to ${servers.map((s) => `${s.address} (${plural(s.packets)})`).join(", ")} was denied. An entry for it would let anything here send data to that server as DNS queries; if this host should use it as its resolver, add it to --dns-servers instead:`,
    `# --dns-servers ${servers.map((s) => s.address).join(",")}`,
  ];
}

const plural = (n: number) => `${n} packet${n === 1 ? "" : "s"}`;

/** The suggestion as a `hosts_csv` line and as a TOML snippet for `--config`, ready to paste. */
export function renderSuggestion(suggestion: ReturnType<typeof suggestAllowlist>, recorded: number): string {
  if (suggestion.hosts.length === 0 && suggestion.ports.length === 0)
    return [
      suggestion.dnsServers.length === 0
        ? "# domainwall suggest: nothing was recorded as denied; nothing to add"
        : "# domainwall suggest: no allowlist entry to add",
      ...dnsLines(suggestion.dnsServers),
      "",
    ].join("\n");
  const width = Math.max(0, ...suggestion.hosts.map((s) => s.entry.length + 3));
  const refused = suggestion.hosts.filter((s) => s.queries !== undefined).length;
  const destinations = `${recorded} destination${recorded === 1 ? "" : "s"} recorded as denied`;
  const lines = [
    refused === 0
      ? `# domainwall suggest: ${destinations}, as allowlist entries to add (names where known, most packets first)`
      : `# domainwall suggest: ${refused} name${refused === 1 ? "" : "s"} the DNS proxy refused and ${destinations}, as allowlist entries to add (names first, most queries and packets first)`,
    ...dnsLines(suggestion.dnsServers),
    ...(suggestion.hosts.length > 0 ? ["# environment:", `hosts_csv=${suggestion.hosts.map((s) => s.entry).join(",")}`] : []),
    ...(suggestion.ports.length > 0 ? [`listening_ports_csv=${suggestion.ports.map((p) => p.port).join(",")}`] : []),
    "# or in a --config file (TOML):",
    ...(suggestion.hosts.length > 0
      ? [
          "hosts = [",
          ...suggestion.hosts.map(
            (s) =>
              `  ${`"${s.entry}",`.padEnd(width)} # ${s.queries === undefined ? plural(s.packets) : `${s.queries} DNS ${s.queries === 1 ? "query" : "queries"}`}`,
          ),
          "]",
        ]
      : []),
    ...(suggestion.ports.length > 0
      ? [
          `ports = [${suggestion.ports.map((p) => p.port).join(", ")}] # inbound TCP: ${suggestion.ports.map((p) => `${p.port}: ${plural(p.packets)}`).join(", ")}`,
        ]
      : []),
  ];
  return `${lines.join("\n")}\n`;
}
