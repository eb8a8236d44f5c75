/**
 * The DNS proxy's listening sockets made through libc, for a process that holds them while
 * another answers on them (supervisor.ts): Bun's own sockets expose no descriptor to hand on,
 * while Bun.udpSocket({ fd }) and Bun.listen({ fd }) adopt one they are given.
 */
import { ptr } from "bun:ffi";
import { openLibc, SOCK_CLOEXEC, type Libc } from "../libc.ts";
import type { InheritedSockets, LoopbackAddress } from "./server.ts";

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;
const IPPROTO_IP = 0;
const IP_RECVERR = 11;
const IPV6_RECVERR = 25;
const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;
const BACKLOG = 1024;

type ListenSockets = InheritedSockets;

/** sockaddr_in / sockaddr_in6 for a loopback address and port. */
function sockaddr(hostname: LoopbackAddress, port: number): Uint8Array {
  const v6 = hostname === "::1";
  const bytes = new Uint8Array(v6 ? 28 : 16);
  bytes[0] = v6 ? AF_INET6 : AF_INET;
  bytes[2] = port >> 8;
  bytes[3] = port & 255;
  if (v6) bytes[23] = 1;
  else bytes.set([127, 0, 0, 1], 4);
  return bytes;
}

function setInt(libc: Libc, fd: number, level: number, name: number, value: number): boolean {
  return libc.setsockopt(fd, level, name, ptr(new Int32Array([value])), 4) === 0;
}

/** The port a bound socket got. */
function boundPort(libc: Libc, fd: number): number {
  const address = new Uint8Array(28);
  const length = new Uint32Array([28]);
  if (libc.getsockname(fd, ptr(address), ptr(length)) !== 0) throw new Error("getsockname failed");
  return ((address[2] ?? 0) << 8) | (address[3] ?? 0);
}

/**
 * UDP and TCP sockets on `port` of each address (0: a free port, the same on all), bound and
 * listening, UDP with a 4 MiB receive buffer. Throws naming the address when one cannot be bound
 * (the others are closed then).
 */
export function openListenSockets(
  hostnames: readonly LoopbackAddress[],
  port: number,
  libc: Libc = openLibc(),
): { port: number; sockets: ListenSockets[] } {
  const opened: number[] = [];
  const sockets: ListenSockets[] = [];
  try {
    for (const hostname of hostnames) {
      const family = hostname === "::1" ? AF_INET6 : AF_INET;
      const make = (type: number) => {
        const fd = libc.socket(family, type | SOCK_CLOEXEC, 0);
        if (fd < 0) throw new Error(`cannot open a socket for ${hostname}`);
        opened.push(fd);
        if (family === AF_INET6) setInt(libc, fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
        return fd;
      };
      const udp = make(SOCK_DGRAM);
      const address = sockaddr(hostname, port);
      if (libc.bind(udp, ptr(address), address.length) !== 0) throw new Error(`cannot bind UDP ${hostname} port ${port} (in use?)`);
      if (port === 0) port = boundPort(libc, udp);
      if (!setInt(libc, udp, SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER_BYTES))
        setInt(libc, udp, SOL_SOCKET, SO_RCVBUF, RECEIVE_BUFFER_BYTES);
      // As on Bun's own UDP sockets: a reply's ICMP port unreachable is reported, so a client that has gone is counted.
      if (family === AF_INET6) setInt(libc, udp, IPPROTO_IPV6, IPV6_RECVERR, 1);
      else setInt(libc, udp, IPPROTO_IP, IP_RECVERR, 1);
      const tcp = make(SOCK_STREAM);
      setInt(libc, tcp, SOL_SOCKET, SO_REUSEADDR, 1);
      const tcpAddress = sockaddr(hostname, port);
      if (libc.bind(tcp, ptr(tcpAddress), tcpAddress.length) !== 0 || libc.listen(tcp, BACKLOG) !== 0)
        throw new Error(`cannot listen on TCP ${hostname} port ${port} (in use?)`);
      sockets.push({ hostname, udp, tcp });
    }
  } catch (error) {
    for (const fd of opened) libc.close(fd);
    throw error;
  }
  return { port, sockets };
}

const F_SETFD = 2;

const SO_TYPE = 3;
const SO_ACCEPTCONN = 30;

function getInt(libc: Libc, fd: number, level: number, name: number): number | undefined {
  const value = new Int32Array(1);
  const length = new Uint32Array([4]);
  return libc.getsockopt(fd, level, name, ptr(value), ptr(length)) === 0 ? value[0] : undefined;
}

/** Whether `fd` is a socket of `type` bound to `hostname` and `port` (and listening, for TCP). */
function isListenSocket(libc: Libc, fd: number, hostname: LoopbackAddress, type: number, port: number): boolean {
  const address = new Uint8Array(28);
  const length = new Uint32Array([28]);
  if (libc.getsockname(fd, ptr(address), ptr(length)) !== 0) return false;
  if (getInt(libc, fd, SOL_SOCKET, SO_TYPE) !== type) return false;
  if (type === SOCK_STREAM && getInt(libc, fd, SOL_SOCKET, SO_ACCEPTCONN) !== 1) return false;
  const expected = sockaddr(hostname, port);
  // Family and port, then the address: 127.0.0.1 at bytes 4-7, ::1 at bytes 8-23.
  const [from, to] = hostname === "::1" ? [8, 24] : [4, 8];
  return [0, 1, 2, 3].every((i) => address[i] === expected[i]) && address.subarray(from, to).every((b, i) => b === expected[from + i]);
}

/**
 * Sockets this process was started with, held across an execve (supervisor.ts): each must be the
 * UDP or listening TCP socket bound to its loopback address and `port`, each descriptor once, else
 * an error naming the descriptor. They are marked close-on-exec again.
 */
export function adoptListenSockets(sockets: readonly ListenSockets[], port: number, libc: Libc = openLibc()): ListenSockets[] {
  const seen = new Set<number>();
  for (const { hostname, udp, tcp } of sockets)
    for (const [fd, type, name] of [
      [udp, SOCK_DGRAM, "UDP"],
      [tcp, SOCK_STREAM, "listening TCP"],
    ] as const) {
      if (seen.has(fd) || !isListenSocket(libc, fd, hostname, type, port))
        throw new Error(`descriptor ${fd} is not the ${name} socket on ${hostname} port ${port}`);
      seen.add(fd);
      libc.fcntl(fd, F_SETFD, 1);
    }
  return [...sockets];
}

/** Before an execve that keeps them: clear close-on-exec on these descriptors; false when one cannot be. */
export function keepAcrossExec(fds: readonly number[], libc: Libc = openLibc()): boolean {
  return fds.every((fd) => libc.fcntl(fd, F_SETFD, 0) === 0);
}

/** The descriptors a worker finds its sockets at: 3, 4, ... in the order given (UDP then TCP per address). */
export function inheritedLayout(sockets: readonly ListenSockets[]): ListenSockets[] {
  return sockets.map((s, i) => ({ hostname: s.hostname, udp: 3 + 2 * i, tcp: 4 + 2 * i }));
}

/** The environment value naming them (`127.0.0.1=3/4,::1=5/6`), and back; undefined when malformed. */
export const renderInherited = (sockets: readonly ListenSockets[]): string =>
  sockets.map((s) => `${s.hostname}=${s.udp}/${s.tcp}`).join(",");

export function parseInherited(text: string): ListenSockets[] | undefined {
  const sockets: ListenSockets[] = [];
  for (const part of text.split(",")) {
    const match = /^(127\.0\.0\.1|::1)=(\d{1,4})\/(\d{1,4})$/.exec(part);
    if (match === null) return undefined;
    sockets.push({ hostname: match[1] as LoopbackAddress, udp: Number(match[2]), tcp: Number(match[3]) });
  }
  return sockets.length > 0 ? sockets : undefined;
}
