import { ptr } from "bun:ffi";
import { closeSync, read as readFd } from "node:fs";
import { lastError, openLibc, SOCK_CLOEXEC, SOCK_RAW } from "../../libc.ts";
import { NFT_TABLE } from "./render.ts";

/**
 * The kernel's nftables change notifications (what `nft monitor` reads): a netlink socket of
 * NETLINK_NETFILTER bound to the multicast group NFNLGRP_NFTABLES. Every committed change to any
 * table arrives as one message per object; we keep those about our table that could weaken it.
 */
const AF_NETLINK = 16;
const NETLINK_NETFILTER = 12;
/** linux/netfilter/nfnetlink.h: NFNLGRP_NONE, five conntrack groups, then NFNLGRP_NFTABLES = 7. */
const NFNLGRP_NFTABLES = 7;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_RCVTIMEO = 20;
/** A blocked read returns after this long with nothing, so `close` takes effect within it. */
const READ_TIMEOUT_S = 10;
const NFNL_SUBSYS_NFTABLES = 10;
const NFPROTO_INET = 1;
/** recv(2) without blocking. */
const MSG_DONTWAIT = 0x40;
const NLMSG_HDRLEN = 16;
const NFGENMSG_LEN = 4;

/** linux/netfilter/nf_tables.h message types, and the attribute naming the object after the table (attribute 1). */
const MESSAGES: Readonly<Record<number, { readonly what: string; readonly nameAttr?: number }>> = {
  2: { what: "delete table" },
  3: { what: "new chain", nameAttr: 3 },
  5: { what: "delete chain", nameAttr: 3 },
  6: { what: "new rule in chain", nameAttr: 2 },
  8: { what: "delete rule in chain", nameAttr: 2 },
  11: { what: "delete set", nameAttr: 2 },
  14: { what: "delete elements of set", nameAttr: 2 },
  20: { what: "delete object", nameAttr: 2 },
};

/** One change to our table, as the kernel announced it: `delete chain dns_redirect`. */
export type TableEvent = string;

const attrString = (view: DataView, start: number, length: number): string => {
  const bytes = new Uint8Array(view.buffer, view.byteOffset + start, length);
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end === -1 ? bytes : bytes.subarray(0, end));
};

/**
 * The changes to `inet domainwall` in one datagram of the group (several netlink messages, each
 * aligned to 4 bytes). Additions of set elements (the DNS proxy's admissions), new tables and sets
 * and the generation messages are left out: they take nothing away.
 */
export function parseTableEvents(data: Uint8Array, table = NFT_TABLE): TableEvent[] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const events: TableEvent[] = [];
  for (let at = 0; at + NLMSG_HDRLEN <= data.byteLength; ) {
    const length = view.getUint32(at, true);
    if (length < NLMSG_HDRLEN || at + length > data.byteLength) break;
    const type = view.getUint16(at + 4, true);
    const message = type >> 8 === NFNL_SUBSYS_NFTABLES ? MESSAGES[type & 0xff] : undefined;
    if (message !== undefined && length >= NLMSG_HDRLEN + NFGENMSG_LEN && view.getUint8(at + NLMSG_HDRLEN) === NFPROTO_INET) {
      const attrs = new Map<number, string>();
      for (let a = at + NLMSG_HDRLEN + NFGENMSG_LEN; a + 4 <= at + length; ) {
        const attrLength = view.getUint16(a, true);
        if (attrLength < 4 || a + attrLength > at + length) break;
        attrs.set(view.getUint16(a + 2, true) & 0x3fff, attrString(view, a + 4, attrLength - 4));
        a += (attrLength + 3) & ~3;
      }
      if (attrs.get(1) === table) {
        const name = message.nameAttr === undefined ? undefined : attrs.get(message.nameAttr);
        events.push(name === undefined ? message.what : `${message.what} ${name}`);
      }
    }
    at += (length + 3) & ~3;
  }
  return events;
}

/** Told when the socket's buffer overran: what was lost is unknown. */
const LOST = "events lost (buffer overrun)";
/** Datagrams read without waiting after each wait (a set update of N elements announces each one). */
const DRAIN_MAX = 4096;

/**
 * The changes to our table in `first` and in the datagrams already queued behind it (`more` reads
 * one without waiting: undefined when none is, "lost" when the buffer overran), each named once: a
 * burst is one report, not one wait in the thread pool and one report per datagram.
 */
export function drainTableEvents(first: Uint8Array, more: () => Uint8Array | "lost" | undefined, limit = DRAIN_MAX): TableEvent[] {
  const events = new Set(parseTableEvents(first));
  for (let i = 0; i < limit; i++) {
    const next = more();
    if (next === undefined) break;
    if (next === "lost") events.add(LOST);
    else for (const event of parseTableEvents(next)) events.add(event);
  }
  return [...events];
}

export interface TableEventSource {
  close(): void;
}

/** What a reader reports: changes to our table, or that some were lost (the socket's buffer overran). */
export type TableEventListener = (events: readonly TableEvent[]) => void;

/**
 * Subscribe to the changes of our table in this network namespace; throws (naming errno) when the
 * socket cannot be opened or bound (no CAP_NET_ADMIN, a seccomp filter). Reads block in the
 * runtime's thread pool, so an idle watch spends nothing here but one wake-up per READ_TIMEOUT_S.
 * An overrun buffer (ENOBUFS) is reported as a change: what was lost is unknown.
 */
export function openTableEvents(listener: TableEventListener): TableEventSource {
  const libc = openLibc();
  const failure = (what: string): Error => new Error(`${what} failed: ${lastError(libc)}`);
  const fd = libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) throw failure("socket(AF_NETLINK, NETLINK_NETFILTER)");
  const address = new Uint8Array(12); // sockaddr_nl: family, pad, pid 0 (the kernel picks), groups
  const view = new DataView(address.buffer);
  view.setUint16(0, AF_NETLINK, true);
  view.setUint32(8, 1 << (NFNLGRP_NFTABLES - 1), true);
  const timeout = new BigInt64Array([BigInt(READ_TIMEOUT_S), 0n]); // struct timeval
  const rcvbuf = new Int32Array([1 << 20]);
  if (libc.bind(fd, ptr(address), address.byteLength) !== 0) {
    const error = failure("bind to NFNLGRP_NFTABLES");
    libc.close(fd);
    throw error;
  }
  // Best effort: a bigger buffer overruns less often during our own large reloads.
  libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, ptr(rcvbuf), 4);
  libc.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, ptr(timeout), 16);
  const buffer = Buffer.alloc(1 << 16);
  /** One datagram already queued, read at once; the buffer is the blocking read's (parsed before the next). */
  const more = (): Uint8Array | "lost" | undefined => {
    const bytes = libc.recv(fd, ptr(buffer), buffer.length, MSG_DONTWAIT);
    if (bytes > 0) return buffer.subarray(0, bytes);
    // Nothing queued (EAGAIN), or another error, which the next blocking read reports.
    return bytes < 0 && lastError(libc) === "ENOBUFS" ? "lost" : undefined;
  };
  let closed = false;
  const next = (): void => {
    if (closed) return void closeSync(fd);
    readFd(fd, buffer, 0, buffer.length, null, (error, bytes) => {
      if (closed) return void closeSync(fd);
      if (error?.code === "ENOBUFS") listener([LOST]);
      else if (error === null && bytes > 0) {
        const events = drainTableEvents(buffer.subarray(0, bytes), more);
        if (events.length > 0) listener(events);
      }
      // EAGAIN is the read timeout; anything else unexpected waits a second rather than spin.
      if (error === null || error.code === "EAGAIN" || error.code === "ENOBUFS" || error.code === "EINTR") next();
      else setTimeout(next, READ_TIMEOUT_S * 1000);
    });
  };
  next();
  return {
    close() {
      closed = true;
    },
  };
}
