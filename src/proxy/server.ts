/**
 * The DNS proxy's sockets: UDP and TCP on loopback only (127.0.0.1 and ::1, one port), each
 * message handed to the handler, with bounds on everything a hostile client can grow: queries in
 * flight, TCP connections, bytes buffered per connection, idle time.
 *
 * Every app of the pod reaches the proxy from the same address (a redirect keeps the pod's own
 * source address), so TCP connections cannot be shared out per client. Instead no connection may
 * sit on a slot: one with no query being answered must bring a whole message within `tcpIdleMs`
 * (trickling bytes does not count), and when every slot is taken a new connection closes the one
 * that has been idle longest (RFC 7766, section 6.2.3: close idle connections under pressure), or,
 * none being idle, the one with the most queries pending (a client pipelining).
 *
 * Every query waits its turn in a fair queue (fair-queue.ts) per client: a UDP source address and
 * port, a TCP connection. One client flooding cannot take the slots from the others.
 */
import type { Socket, TCPSocketListener, udp } from "bun";
import { createHandler, type Admission, type ProxyLog } from "./handler.ts";
import { MAX_QUERY_BYTES } from "./message.ts";
import type { NameMatcher } from "./match.ts";
import { createStats, rateLimiter, type ProxyStats } from "./stats.ts";
import { exchange as freshExchange, openUdpSocket, type ExchangeFn, type Transport, type Upstream } from "./upstream.ts";
import { createUpstreamPool } from "./upstream-pool.ts";
import { describeError, errorOf, isClientGone } from "./socket-errors.ts";
import { createFairQueue } from "./fair-queue.ts";
import { evictable } from "./eviction.ts";

export type LoopbackAddress = "127.0.0.1" | "::1";

/** One address's UDP and TCP sockets, bound and listening, by descriptor (made and held by a supervisor: supervisor.ts). */
export interface InheritedSockets {
  readonly hostname: LoopbackAddress;
  readonly udp: number;
  readonly tcp: number;
}

export interface ProxyLimits {
  /** Per upstream attempt. */
  readonly upstreamTimeoutMs: number;
  /** Tries per query, through the upstreams in order and round again. */
  readonly attempts: number;
  /** Queries being answered at once (UDP and TCP); more wait their turn (see fair-queue.ts). */
  readonly maxInFlight: number;
  /** Queries of one client (UDP source address and port, TCP connection) being answered at once. */
  readonly maxInFlightPerClient: number;
  /** Queries one client may have waiting; beyond, its oldest is dropped. */
  readonly maxQueuedPerClient: number;
  /** Queries waiting, all clients together; beyond, the oldest of the longest queue is dropped. */
  readonly maxQueued: number;
  /** Messages taken off one TCP connection (pipelining) and not yet answered; further ones wait in its socket. */
  readonly maxPerConnection: number;
  /** TCP connections held at once; a new one beyond closes the longest idle (none idle: the new one is closed). */
  readonly maxTcpConnections: number;
  /** A TCP connection with no query being answered and no whole message received for this long is closed (bytes trickling in do not count). */
  readonly tcpIdleMs: number;
  /** Refused names counted one by one; more are counted together. */
  readonly maxRefusedNames: number;
  /** Log lines about refused names and failures, at most this many per `logIntervalMs`. */
  readonly logsPerInterval: number;
  readonly logIntervalMs: number;
}

export const DEFAULT_LIMITS: ProxyLimits = {
  upstreamTimeoutMs: 1500,
  attempts: 2,
  maxInFlight: 256,
  maxInFlightPerClient: 128,
  maxQueuedPerClient: 256,
  maxQueued: 1024,
  maxPerConnection: 16,
  maxTcpConnections: 64,
  tcpIdleMs: 10_000,
  maxRefusedNames: 1000,
  logsPerInterval: 10,
  logIntervalMs: 10_000,
};

export interface ProxyOptions {
  /** 0: any free port (the same one on every address and both transports). */
  readonly port: number;
  readonly listen?: readonly LoopbackAddress[];
  readonly upstreams: readonly Upstream[];
  readonly match: NameMatcher;
  readonly admit: (admission: Admission) => Promise<void>;
  readonly log: ProxyLog;
  /** Milliseconds; defaults to `performance.now`. */
  readonly now?: () => number;
  readonly exchange?: ExchangeFn;
  readonly limits?: Partial<ProxyLimits>;
  /** `--audit`: see HandlerDeps.audit. */
  readonly audit?: () => boolean;
  /** See HandlerDeps.maxAnswerTtlSeconds. */
  readonly maxAnswerTtlSeconds?: number;
  /** Answer on these sockets (bound to `port`) instead of opening new ones; `listen` is then ignored. */
  readonly inherited?: readonly InheritedSockets[];
}

export interface DnsProxy {
  readonly port: number;
  stats(): ProxyStats;
  /** Closes every socket; queries in flight get no answer. */
  stop(): void;
}

interface Connection {
  /** The connection's queue in the fair queue. */
  key: string;
  buffer: Uint8Array;
  pending: number;
  /** When a whole message last came in, or its last answer went out (or it opened): the longest idle is closed first. */
  lastActive: number;
  /** Closes the connection once it has been idle for `tcpIdleMs`; set only while no query is pending. */
  deadline: Timer | undefined;
  /** Bytes not yet taken by the kernel; more than `MAX_UNSENT` and the client is not reading: closed. */
  unsent: Uint8Array[];
}

const MAX_UNSENT = 256 * 1024;
/** A connection idle this long is closed first for a new one; one idle less long (just opened) is not singled out. */
const IDLE_FIRST_MS = 1000;

/** A query waiting its turn: `deliver` takes its reply (undefined: none, the query was dropped). */
interface Job {
  readonly bytes: Uint8Array;
  readonly transport: Transport;
  readonly deliver: (reply: Uint8Array | undefined) => void;
}

const framed = (bytes: Uint8Array) => {
  const out = new Uint8Array(bytes.length + 2);
  out[0] = bytes.length >> 8;
  out[1] = bytes.length & 255;
  out.set(bytes, 2);
  return out;
};

export async function startDnsProxy(options: ProxyOptions): Promise<DnsProxy> {
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const now = options.now ?? (() => performance.now());
  const stats = createStats(limits.maxRefusedNames);
  const pool = createUpstreamPool({ open: openUdpSocket, fresh: freshExchange }); // no socket before its first query
  const handle = createHandler({
    match: options.match,
    admit: options.admit,
    exchange: options.exchange ?? pool.exchange,
    upstreams: options.upstreams,
    timeoutMs: limits.upstreamTimeoutMs,
    attempts: limits.attempts,
    log: options.log,
    now,
    stats,
    mayLog: rateLimiter(limits.logsPerInterval, limits.logIntervalMs, now),
    ...(options.audit && { audit: options.audit }),
    ...(options.maxAnswerTtlSeconds !== undefined && { maxAnswerTtlSeconds: options.maxAnswerTtlSeconds }),
  });
  const queue = createFairQueue<Job>(limits, (job) => {
    stats.count("dropped");
    // Later: a TCP connection's delivery reads its next message, which must not re-enter the queue's push.
    queueMicrotask(() => job.deliver(undefined));
  });
  let connectionIds = 0;
  const connections = new Set<Socket<Connection>>();
  const log = options.log;
  const mayLog = rateLimiter(limits.logsPerInterval, limits.logIntervalMs, now);
  /** A warning, at most `logsPerInterval` of them per interval: nothing a client does can flood the log. */
  const warn = (message: string) => {
    const held = mayLog();
    if (held !== undefined) log.warn({ message: `${message}${held ? ` (${held} similar lines held back)` : ""}` });
  };
  /** A socket error: a client that has gone is counted; anything else is logged (bounded, one line). Never throws. */
  const socketError = (what: string, error: unknown) => {
    try {
      if (isClientGone(error)) stats.undelivered();
      else warn(`DNS proxy ${what}: ${describeError(error)}`);
    } catch {
      // a handler must not throw: the error is already counted or dropped
    }
  };

  /** The reply to one message, or undefined (dropped); never rejects. */
  async function reply(bytes: Uint8Array, transport: Transport): Promise<Uint8Array | undefined> {
    try {
      return await handle(bytes, transport);
    } catch (error) {
      stats.count("failed");
      warn(`unexpected failure answering a query: ${describeError(error)}`);
      return undefined;
    }
  }

  /** Answers waiting queries while slots are free. */
  function pump() {
    for (let next = queue.take(); next !== undefined; next = queue.take()) {
      const { client, item } = next;
      void reply(item.bytes, item.transport).then((bytes) => {
        queue.done(client);
        try {
          item.deliver(bytes);
        } catch (error) {
          warn(`DNS proxy reply: ${describeError(error)}`);
        }
        pump();
      });
    }
  }

  function submit(client: string, job: Job) {
    queue.push(client, job);
    pump();
  }

  function send(socket: Socket<Connection>, bytes: Uint8Array) {
    const state = socket.data;
    if (state.unsent.length > 0) state.unsent.push(bytes);
    else {
      const written = socket.write(bytes);
      if (written < 0) {
        stats.undelivered();
        return;
      }
      if (written < bytes.length) state.unsent.push(bytes.subarray(written));
    }
    if (state.unsent.reduce((n, b) => n + b.length, 0) > MAX_UNSENT) socket.terminate();
  }

  /**
   * One UDP reply. A send fails with the error pending on the socket: the ICMP port unreachable of
   * an earlier reply to a client that has gone. That error is this call's, not this reply's (it is
   * cleared by the failed call), so the reply is sent again.
   */
  function sendUdp(socket: udp.Socket<"buffer">, bytes: Uint8Array, port: number, address: string) {
    for (let attempt = 0; attempt < 8; attempt++) {
      try {
        if (!socket.send(bytes, port, address)) stats.undelivered();
        return;
      } catch (error) {
        socketError("UDP reply", error);
        if (!isClientGone(error)) return;
      }
    }
  }

  /** (Re)starts the idle deadline of a connection with nothing pending. */
  function idle(socket: Socket<Connection>) {
    const state = socket.data;
    clearTimeout(state.deadline);
    state.lastActive = now();
    state.deadline = setTimeout(() => socket.terminate(), limits.tcpIdleMs);
  }

  /** Takes whole messages off the connection's buffer while it may have more in flight. */
  function serve(socket: Socket<Connection>) {
    const state = socket.data;
    while (state.buffer.length >= 2 && state.pending < limits.maxPerConnection) {
      const length = ((state.buffer[0] ?? 0) << 8) | (state.buffer[1] ?? 0);
      if (length < 12 || length > MAX_QUERY_BYTES) {
        stats.count("dropped");
        socket.terminate();
        return;
      }
      if (state.buffer.length < 2 + length) return;
      const message = state.buffer.slice(2, 2 + length);
      state.buffer = state.buffer.slice(2 + length);
      state.pending++;
      clearTimeout(state.deadline);
      state.deadline = undefined;
      state.lastActive = now();
      submit(state.key, {
        bytes: message,
        transport: "tcp",
        deliver(bytes) {
          state.pending--;
          if (socket.readyState !== 1) {
            if (bytes !== undefined) stats.undelivered();
            return;
          }
          if (bytes !== undefined) send(socket, framed(bytes));
          if (state.pending === 0) idle(socket);
          serve(socket);
        },
      });
    }
  }

  const bind = async (port: number) => {
    const hosts = options.listen ?? ["127.0.0.1", "::1"];
    const datagrams: udp.Socket<"buffer">[] = [];
    const tcp: TCPSocketListener<Connection>[] = [];
    const close = () => {
      for (const socket of datagrams) socket.close();
      for (const listener of tcp) listener.stop(true);
      for (const socket of connections) clearTimeout(socket.data.deadline);
    };
    try {
      const targets = options.inherited ?? hosts.map((hostname) => ({ hostname, udp: undefined, tcp: undefined }));
      for (const { hostname, udp, tcp: tcpFd } of targets) {
        // Bun adopts a descriptor given as `fd` (not in its types): the supervisor's sockets.
        const socket = await Bun.udpSocket({
          ...(udp === undefined ? { hostname, port } : ({ fd: udp } as unknown as { hostname: string })),
          socket: {
            data(socket, data, clientPort, address, flags) {
              if (flags.truncated) {
                stats.count("dropped");
                return;
              }
              const client = `${address} ${clientPort}`;
              // A flooding socket's query is dropped before anything is copied or allocated for it.
              if (queue.full(client)) {
                stats.count("dropped");
                return;
              }
              submit(client, {
                bytes: new Uint8Array(data),
                transport: "udp",
                deliver(bytes) {
                  if (bytes !== undefined && !socket.closed) sendUdp(socket, bytes, clientPort, address);
                },
              });
            },
            // Bun passes the error alone here; a reply's ICMP port unreachable surfaces as ECONNREFUSED on a later read.
            error(...args: unknown[]) {
              socketError("UDP socket", errorOf(args));
            },
          },
        });
        datagrams.push(socket);
        if (udp === undefined) port = socket.port;
        tcp.push(
          Bun.listen<Connection>({
            ...(tcpFd === undefined ? { hostname, port } : ({ fd: tcpFd } as unknown as { hostname: string; port: number })),
            data: { key: "", buffer: new Uint8Array(), pending: 0, unsent: [], lastActive: 0, deadline: undefined },
            socket: {
              open(socket) {
                const key = `tcp ${connectionIds++}`;
                socket.data = { key, buffer: new Uint8Array(), pending: 0, unsent: [], lastActive: now(), deadline: undefined };
                if (connections.size >= limits.maxTcpConnections) {
                  const evicted = evictable(connections, (c) => c.data, now(), IDLE_FIRST_MS);
                  if (evicted !== undefined) {
                    connections.delete(evicted);
                    evicted.terminate();
                  }
                }
                connections.add(socket);
                idle(socket);
              },
              data(socket, chunk) {
                const state = socket.data;
                const joined = new Uint8Array(state.buffer.length + chunk.length);
                joined.set(state.buffer);
                joined.set(chunk, state.buffer.length);
                state.buffer = joined;
                if (state.buffer.length > 2 * (MAX_QUERY_BYTES + 2) * limits.maxPerConnection) socket.terminate();
                else serve(socket);
              },
              drain(socket) {
                const state = socket.data;
                while (state.unsent.length > 0) {
                  const next = state.unsent[0] as Uint8Array;
                  const written = socket.write(next);
                  if (written < next.length) {
                    state.unsent[0] = next.subarray(Math.max(0, written));
                    return;
                  }
                  state.unsent.shift();
                }
              },
              close(socket) {
                clearTimeout(socket.data.deadline);
                connections.delete(socket);
                queue.forget(socket.data.key);
              },
              error(...args: unknown[]) {
                socketError("TCP connection", errorOf(args));
              },
            },
          }),
        );
      }
    } catch (error) {
      close();
      throw error;
    }
    return { port, close };
  };

  // With port 0 the first socket picks the port; another process may hold it on another address.
  let bound: Awaited<ReturnType<typeof bind>> | undefined;
  for (let attempt = 0; bound === undefined; attempt++) {
    try {
      bound = await bind(options.port);
    } catch (error) {
      if (options.port !== 0 || attempt >= 9) throw error;
    }
  }
  const { port, close } = bound;
  const stop = () => {
    close();
    pool.close();
  };
  return { port, stats: () => stats.snapshot(), stop };
}
