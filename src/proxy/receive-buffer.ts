/**
 * A larger kernel receive buffer for the proxy's UDP sockets: while the process is busy (a
 * collection, a burst of TCP work), datagrams wait there instead of being dropped, every client's
 * alike. Bun does not expose a UDP socket's descriptor, so it is found by the socket's inode.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { ptr } from "bun:ffi";
import { openLibc } from "../libc.ts";

const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
/** Beyond net.core.rmem_max; needs CAP_NET_ADMIN, which the proxy has. */
const SO_RCVBUFFORCE = 33;

/** The inodes of UDP sockets bound to local `port`, from /proc/net/udp and udp6. Pure over the files' text. */
export function udpInodes(tables: readonly string[], port: number): Set<string> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const inodes = new Set<string>();
  for (const table of tables)
    for (const line of table.split("\n").slice(1)) {
      const columns = line.trim().split(/\s+/);
      if (columns[1]?.endsWith(`:${hexPort}`) && columns[9] !== undefined && columns[9] !== "0") inodes.add(columns[9]);
    }
  return inodes;
}

/** Sets the receive buffer of this process's UDP sockets on `port`; resolves to how many were set (0: none found or not allowed). */
export function enlargeReceiveBuffers(port: number, bytes: number): number {
  const read = (path: string) => {
    try {
      return readFileSync(path, "utf8");
    } catch {
      return "";
    }
  };
  const inodes = udpInodes([read("/proc/net/udp"), read("/proc/net/udp6")], port);
  const libc = openLibc();
  const value = new Int32Array([bytes]);
  let set = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode === undefined || !inodes.has(inode)) continue;
    if (
      libc.setsockopt(Number(fd), SOL_SOCKET, SO_RCVBUFFORCE, ptr(value), 4) === 0 ||
      libc.setsockopt(Number(fd), SOL_SOCKET, SO_RCVBUF, ptr(value), 4) === 0
    )
      set++;
  }
  return set;
}
