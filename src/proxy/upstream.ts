/**
 * One exchange with an upstream resolver: the query under a fresh random id, from a fresh socket
 * (so a random source port too), the first answer that matches the query, or an error. The proxy
 * sends UDP through a pool of such sockets (upstream-pool.ts); `openUdpSocket` opens them.
 */
import { describeError, errorOf } from "./socket-errors.ts";
import { encodeUpstreamQuery, readAnswer, type AnswerCheck, type Query } from "./message.ts";

export interface Upstream {
  /** An IP address (IPv4 or IPv6), never a name. */
  readonly address: string;
  readonly port: number;
}

export type Transport = "udp" | "tcp";

export type Exchange =
  | { readonly ok: true; readonly bytes: Uint8Array; readonly answer: Extract<AnswerCheck, { ok: true }> }
  | { readonly ok: false; readonly error: string };

/** Sends `query` to `upstream` over `transport` (`exchange` is the seam tests and the benchmark may replace). */
export type ExchangeFn = (query: Query, upstream: Upstream, transport: Transport, timeoutMs: number) => Promise<Exchange>;

/** A UDP socket connected to one upstream (see upstream-pool.ts). */
export interface PooledSocket {
  /** Sends one datagram to the upstream; false or a throw: the kernel did not take it. */
  send(packet: Uint8Array): boolean;
  close(): void;
}

export interface SocketEvents {
  /** A datagram (from the upstream: the socket is connected); `truncated`: cut short by the receive buffer. */
  data(bytes: Uint8Array, truncated: boolean): void;
  /** An error on the socket, one line (an ICMP port unreachable from the upstream shows as ECONNREFUSED). */
  error(message: string): void;
}

/** Opens a UDP socket connected to `upstream`, on a source port the kernel picks at random. */
export type OpenSocket = (upstream: Upstream, events: SocketEvents) => Promise<PooledSocket>;

export const openUdpSocket: OpenSocket = async (upstream, events) => {
  const socket = await Bun.udpSocket({
    hostname: upstream.address.includes(":") ? "::" : "0.0.0.0",
    // A connected socket: the kernel passes only datagrams from the upstream's address and port.
    connect: { hostname: upstream.address, port: upstream.port },
    socket: {
      data(_socket, data, _port, _address, flags) {
        events.data(data, flags.truncated);
      },
      // Bun passes the error alone here (not `(socket, error)`).
      error(...args: unknown[]) {
        events.error(describeError(errorOf(args)));
      },
    },
  });
  return { send: (packet) => socket.send(packet), close: () => socket.close() };
};

const randomId = (): number => crypto.getRandomValues(new Uint16Array(1))[0] ?? 0;

export const exchange: ExchangeFn = (query, upstream, transport, timeoutMs) =>
  transport === "udp" ? exchangeUdp(query, upstream, timeoutMs) : exchangeTcp(query, upstream, timeoutMs);

/**
 * A finisher for one exchange: the first call settles it, closes the socket (now or once it
 * exists) and stops the timer; later calls do nothing.
 */
function settle(resolve: (result: Exchange) => void, timeoutMs: number, lastError: () => string) {
  let done = false;
  let close: (() => void) | undefined;
  const timer = setTimeout(
    () => finish({ ok: false, error: `no answer in ${timeoutMs} ms${lastError() ? ` (${lastError()})` : ""}` }),
    timeoutMs,
  );
  function finish(result: Exchange) {
    if (done) return;
    done = true;
    clearTimeout(timer);
    close?.();
    resolve(result);
  }
  return {
    finish,
    get done() {
      return done;
    },
    closeWith(fn: () => void) {
      if (done) fn();
      else close = fn;
    },
  };
}

function exchangeUdp(query: Query, upstream: Upstream, timeoutMs: number): Promise<Exchange> {
  const id = randomId();
  const packet = encodeUpstreamQuery(query, id);
  let lastError = "";
  return new Promise((resolve) => {
    const s = settle(resolve, timeoutMs, () => lastError);
    Bun.udpSocket({
      hostname: upstream.address.includes(":") ? "::" : "0.0.0.0",
      // A connected socket: the kernel passes only datagrams from the upstream's address and port.
      connect: { hostname: upstream.address, port: upstream.port },
      socket: {
        data(_socket, data, _port, _address, flags) {
          if (flags.truncated) {
            lastError = "an answer larger than the receive buffer";
            return;
          }
          const answer = readAnswer(query, id, data);
          if (answer.ok) s.finish({ ok: true, bytes: new Uint8Array(data), answer });
          else lastError = answer.reason;
        },
        // Bun passes the error alone here (not `(socket, error)`).
        error(...args: unknown[]) {
          lastError = describeError(errorOf(args));
        },
      },
    }).then(
      (socket) => {
        s.closeWith(() => socket.close());
        if (!s.done && !socket.send(packet)) s.finish({ ok: false, error: "the query could not be sent" });
      },
      (error: unknown) => s.finish({ ok: false, error: `socket: ${error instanceof Error ? error.message : String(error)}` }),
    );
  });
}

function exchangeTcp(query: Query, upstream: Upstream, timeoutMs: number): Promise<Exchange> {
  const id = randomId();
  const body = encodeUpstreamQuery(query, id);
  const packet = Uint8Array.from([body.length >> 8, body.length & 255, ...body]);
  let lastError = "";
  let received = new Uint8Array();
  return new Promise((resolve) => {
    const s = settle(resolve, timeoutMs, () => lastError);
    Bun.connect({
      hostname: upstream.address,
      port: upstream.port,
      socket: {
        open(socket) {
          // Closed with a reset, not a FIN: an orderly close would leave the last ACK to a TIME_WAIT
          // socket, which has no group for the ruleset to match, so that packet would miss the
          // proxy's conntrack zone and be redirected to the proxy's own port instead of reaching the
          // resolver (README: DNS-aware mode). A reset comes from this socket, in the zone.
          s.closeWith(() => socket.terminate());
          if (socket.write(packet) !== packet.length) s.finish({ ok: false, error: "the query could not be sent" });
        },
        data(_socket, chunk) {
          const joined = new Uint8Array(received.length + chunk.length);
          joined.set(received);
          joined.set(chunk, received.length);
          received = joined;
          if (received.length < 2) return;
          const length = ((received[0] ?? 0) << 8) | (received[1] ?? 0);
          if (received.length < 2 + length) return;
          const bytes = received.slice(2, 2 + length);
          const answer = readAnswer(query, id, bytes);
          s.finish(answer.ok ? { ok: true, bytes, answer } : { ok: false, error: answer.reason });
        },
        close() {
          s.finish({ ok: false, error: lastError || "connection closed before an answer" });
        },
        error(...args: unknown[]) {
          lastError = describeError(errorOf(args));
        },
        connectError(...args: unknown[]) {
          s.finish({ ok: false, error: `connect: ${describeError(errorOf(args))}` });
        },
      },
    }).catch((error: unknown) => s.finish({ ok: false, error: `connect: ${error instanceof Error ? error.message : String(error)}` }));
  });
}
