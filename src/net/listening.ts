import { formatAddress, type Family } from "./ip.ts";

/**
 * The namespace's own TCP sockets, from /proc/net/tcp and /proc/net/tcp6: the ground truth for
 * "what would --ports close", which `SSH_CONNECTION` is not (`sudo` removes it).
 */
export interface TcpSocket {
  readonly state: "listen" | "established";
  readonly local: string;
  readonly localPort: number;
  readonly remote: string;
  readonly remotePort: number;
}

/** `st` in /proc/net/tcp: TCP_ESTABLISHED and TCP_LISTEN (include/net/tcp_states.h). */
const STATES: Readonly<Record<string, TcpSocket["state"]>> = { "01": "established", "0A": "listen" };

/**
 * One `ADDR:PORT` of /proc/net/tcp{,6}: the address is 32-bit words in host byte order (little
 * endian on x86-64 and arm64, the only targets), each printed as 8 hex digits; the port is hex.
 */
function endpoint(text: string, family: Family): { address: string; port: number } | undefined {
  const match = (family === 4 ? /^([0-9A-F]{8}):([0-9A-F]{4})$/ : /^([0-9A-F]{32}):([0-9A-F]{4})$/).exec(text);
  if (!match?.[1] || !match[2]) return undefined;
  const hex = match[1];
  const words: number[] = [];
  for (let i = 0; i < hex.length; i += 8) {
    const word = Number.parseInt(hex.slice(i, i + 8), 16);
    words.push(((word & 0xff) << 24) | ((word & 0xff00) << 8) | ((word >>> 8) & 0xff00) | (word >>> 24));
  }
  const [a = 0, b = 0, c = 0, d = 0] = words.map((w) => w >>> 0);
  // An IPv4 peer of an IPv6 socket is shown as the kernel's users know it: ::ffff:192.0.2.1.
  const mapped = family === 6 && a === 0 && b === 0 && c === 0xffff;
  const address = mapped ? `::ffff:${formatAddress(4, [d])}` : formatAddress(family, family === 4 ? [a] : [a, b, c, d]);
  return { address, port: Number.parseInt(match[2], 16) };
}

/** Listening and established sockets of one file; other states and lines that do not parse are left out. Pure. */
export function parseProcNetTcp(text: string, family: Family): TcpSocket[] {
  const sockets: TcpSocket[] = [];
  for (const line of text.split("\n")) {
    const [, local, remote, st] = line.trim().split(/\s+/);
    const state = st === undefined ? undefined : STATES[st];
    const l = local === undefined ? undefined : endpoint(local, family);
    const r = remote === undefined ? undefined : endpoint(remote, family);
    if (state === undefined || l === undefined || r === undefined) continue;
    sockets.push({ state, local: l.address, localPort: l.port, remote: r.address, remotePort: r.port });
  }
  return sockets;
}

const isLoopback = (address: string): boolean => address === "::1" || /^(::ffff:)?127\./.test(address);

export interface PortWarning {
  /** An established inbound connection uses the port: likely the operator's own SSH session. */
  readonly loud: boolean;
  readonly port: number;
  readonly text: string;
}

/**
 * What `--ports` (non-empty: inbound is filtered) would close: each TCP port listening on a
 * non-loopback address that it does not list, loudly when an established inbound connection (its
 * local port is a listening one, its peer not loopback) uses it. Established connections survive
 * the apply (conntrack), but a new one — the next SSH login — is refused. Sorted by port. Pure.
 */
export function portWarnings(sockets: readonly TcpSocket[], inboundPorts: readonly number[]): PortWarning[] {
  if (inboundPorts.length === 0) return [];
  const closed = new Set(
    sockets.filter((s) => s.state === "listen" && !isLoopback(s.local) && !inboundPorts.includes(s.localPort)).map((s) => s.localPort),
  );
  const listed = `--ports ${inboundPorts.join(",")}`;
  return [...closed]
    .sort((a, b) => a - b)
    .map((port): PortWarning => {
      const peers = sockets.filter((s) => s.state === "established" && s.localPort === port && !isLoopback(s.remote)).map((s) => s.remote);
      if (peers.length === 0) {
        return {
          loud: false,
          port,
          text: `TCP port ${port} is listening, but ${listed} does not list it: inbound connections to it will be refused`,
        };
      }
      const count = peers.length === 1 ? "an established inbound connection" : `${peers.length} established inbound connections`;
      return {
        loud: true,
        port,
        text: `port ${port} has ${count} (from ${[...new Set(peers)].join(", ")}), likely the session you are using: it stays up, but ${listed} refuses new connections to port ${port}; add it to --ports, or apply with --confirm-within so the rules roll back unless confirmed`,
      };
    });
}
