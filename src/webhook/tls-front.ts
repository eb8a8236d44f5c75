import type { Socket, TCPSocketListener } from "bun";
import type { ListenAddress } from "../config/values.ts";

/** A certificate and its key, as PEM text. */
export interface Certificate {
  readonly cert: string;
  readonly key: string;
}

/** One HTTPS server on loopback with one certificate; retired ones live until their connections close. */
interface Backend {
  readonly server: ReturnType<typeof Bun.serve>;
  open: number;
  retired: boolean;
}

interface Pipe {
  peer?: Socket<Pipe>;
  /** The client's address, counted against the per-source cap (the client side only). */
  source?: string;
  /** Until the first request's headers arrive: closes the connection at the deadline. */
  deadline?: ReturnType<typeof setTimeout>;
  closed?: boolean;
  /** Bytes waiting for the peer (or for the backend connection to open); capped at MAX_PENDING_BYTES. */
  pending: Uint8Array[];
  pendingBytes: number;
  readonly backend: Backend;
}

/** Per direction of a connection: past this many queued bytes the sending side is paused until the queue drains. */
const HIGH_WATER_BYTES = 1024 * 1024;
/** And a side that keeps sending while paused is cut off here: every queue is capped. */
const MAX_PENDING_BYTES = 16 * 1024 * 1024;
/**
 * What one client may hold. Every connection must finish its TLS handshake and send a request's
 * headers within `firstRequestMs` (the API server does at once), or it is closed: idle sockets that
 * never send a ClientHello cannot fill the connection cap. One address may hold `maxPerSource`.
 */
export interface FrontLimits {
  readonly maxConnections: number;
  readonly maxPerSource: number;
  readonly firstRequestMs: number;
}
export const FRONT_LIMITS: FrontLimits = { maxConnections: 1024, maxPerSource: 256, firstRequestMs: 10_000 };
/** A retired certificate's connections (keep-alive from the API server) are closed after this. */
const RETIRED_MAX_MS = 10 * 60_000;

/** Write what is queued for `socket`; once all of it went, let its peer send again. */
function flush(socket: Socket<Pipe>, queue: Pipe): void {
  while (queue.pending.length > 0) {
    const chunk = queue.pending[0]!;
    const written = Math.max(socket.write(chunk), 0);
    queue.pendingBytes -= written;
    if (written < chunk.byteLength) {
      queue.pending[0] = chunk.subarray(written);
      return;
    }
    queue.pending.shift();
  }
  socket.data.peer?.resume();
}

/** Send `chunk` from `from` to `to`, queueing what it does not take; a long queue pauses `from`. */
function relay(from: Socket<Pipe>, to: Socket<Pipe> | undefined, queue: Pipe, chunk: Uint8Array): void {
  if (to !== undefined && queue.pending.length === 0) {
    const written = Math.max(to.write(chunk), 0);
    if (written >= chunk.byteLength) return;
    chunk = chunk.subarray(written);
  }
  queue.pending.push(new Uint8Array(chunk));
  queue.pendingBytes += chunk.byteLength;
  if (queue.pendingBytes > MAX_PENDING_BYTES) {
    from.end();
    to?.end();
  } else if (queue.pendingBytes > HIGH_WATER_BYTES) from.pause();
}

/**
 * HTTPS on `address` whose certificate can be replaced without dropping a request. Bun's server
 * cannot change its certificate, and a second listener on the same port (SO_REUSEPORT) resets the
 * connections queued on the first when it closes: so one plain TCP listener never closes, and
 * relays each connection to the HTTPS server of the certificate current when it arrived, on
 * loopback. A replaced server takes no new connection and stops once its last one closes.
 */
export function serveTls(
  address: ListenAddress,
  first: Certificate,
  fetch: (request: Request) => Promise<Response>,
  limits: FrontLimits = FRONT_LIMITS,
) {
  /** Connections still waiting for their first request's headers, by the local port of their relay to the backend. */
  const waiting = new Map<number, Socket<Pipe>>();
  const arrived = (upstreamPort: number) => {
    const client = waiting.get(upstreamPort);
    if (client === undefined) return;
    waiting.delete(upstreamPort);
    clearTimeout(client.data.deadline);
  };
  const bySource = new Map<string, number>();
  const backendFor = (certificate: Certificate): Backend => ({
    // No body limit here: `fetch` reads a body only up to its own cap and answers 400 past it (Bun's limit would answer 413).
    server: Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      tls: certificate,
      fetch(request, server) {
        // Headers are in: the relay connection this came over (its port on loopback) has met its deadline.
        const peer = server.requestIP(request);
        if (peer !== null) arrived(peer.port);
        return fetch(request);
      },
      maxRequestBodySize: Number.MAX_SAFE_INTEGER,
      idleTimeout: 120,
    }),
    open: 0,
    retired: false,
  });
  let current = backendFor(first);
  let open = 0;
  const stopIfDone = (backend: Backend) => {
    if (backend.retired && backend.open === 0) void backend.server.stop(true);
  };
  const front: TCPSocketListener<Pipe> = Bun.listen<Pipe>({
    hostname: address.hostname,
    port: address.port,
    socket: {
      open(client) {
        const source = client.remoteAddress;
        const fromSource = bySource.get(source) ?? 0;
        if (open >= limits.maxConnections || fromSource >= limits.maxPerSource) return void client.terminate();
        open++;
        bySource.set(source, fromSource + 1);
        const backend = current;
        backend.open++;
        const deadline = setTimeout(() => client.terminate(), limits.firstRequestMs);
        client.data = { pending: [], pendingBytes: 0, backend, source, deadline };
        Bun.connect<Pipe>({
          hostname: "127.0.0.1",
          port: backend.server.port!,
          socket: {
            open(upstream) {
              if (client.data.closed === true) return void upstream.end(); // the client left (or met its deadline) first
              waiting.set(upstream.localPort, client);
              upstream.data = { peer: client, pending: client.data.pending, pendingBytes: client.data.pendingBytes, backend };
              client.data.peer = upstream;
              client.data.pending = [];
              client.data.pendingBytes = 0;
              flush(upstream, upstream.data);
            },
            data: (upstream, chunk) => relay(upstream, client, client.data, chunk),
            drain: (upstream) => flush(upstream, upstream.data),
            close(upstream) {
              waiting.delete(upstream.localPort);
              client.end();
            },
            error: () => void client.end(),
          },
        }).catch(() => void client.end());
      },
      data: (client, chunk) => relay(client, client.data.peer, client.data.peer?.data ?? client.data, chunk),
      drain: (client) => flush(client, client.data),
      close(client) {
        if (client.data === undefined) return; // closed at the cap, before it was counted
        open--;
        client.data.closed = true;
        clearTimeout(client.data.deadline);
        const source = client.data.source!;
        const left = (bySource.get(source) ?? 1) - 1;
        if (left === 0) bySource.delete(source);
        else bySource.set(source, left);
        client.data.peer?.end();
        client.data.backend.open--;
        stopIfDone(client.data.backend);
      },
      error: (client) => void client.end(),
    },
  });
  return {
    port: front.port,
    /** New connections get `certificate`; those open now finish on the old one. */
    replace(certificate: Certificate): void {
      const next = backendFor(certificate);
      const old = current;
      current = next;
      old.retired = true;
      stopIfDone(old);
      setTimeout(() => void old.server.stop(true), RETIRED_MAX_MS).unref();
    },
    stop(): void {
      front.stop(true);
      void current.server.stop(true);
    },
  };
}
