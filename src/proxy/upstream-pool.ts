/**
 * UDP exchanges with the upstreams over a pool of connected sockets, as dnsmasq's random sockets:
 * a socket opened and closed per query was most of the proxy's work. What the fresh socket gave is
 * kept: each socket's source port is the kernel's random pick, the socket a query goes out on is
 * drawn at random, each query's id is random and unique among its socket's queries in flight, and
 * an answer counts only from the upstream's address and port (a connected socket) with the query's
 * id and question. A socket serves at most `usesPerSocket` queries and `lifetimeMs`, then takes no
 * more and is closed once its last query settles. Sockets are opened off the query's path.
 */
import { encodeUpstreamQuery, readAnswer, type Query } from "./message.ts";
import type { Exchange, ExchangeFn, OpenSocket, PooledSocket, SocketEvents, Upstream } from "./upstream.ts";

export interface PoolLimits {
  /** Sockets taking queries, per upstream. */
  readonly sockets: number;
  /** Queries one socket sends before it is retired. */
  readonly usesPerSocket: number;
  /** A socket older than this takes no more queries. */
  readonly lifetimeMs: number;
  /** Queries in flight on one socket (ids taken); beyond, a query waits for no socket: it gets a fresh one of its own. */
  readonly inFlightPerSocket: number;
  /**
   * Datagrams matching no query in flight (a wrong id, or the id with another question) one socket
   * takes; one more and it is abandoned: its queries fail at once (to be asked again on another
   * socket) and it closes. Whoever learnt its port (any process in the pod can read /proc/net/udp)
   * gets this many tries, not ten seconds of them.
   */
  readonly unwantedPerSocket: number;
}

export const DEFAULT_POOL_LIMITS: PoolLimits = {
  sockets: 16,
  usesPerSocket: 100,
  lifetimeMs: 10_000,
  inFlightPerSocket: 8,
  unwantedPerSocket: 8,
};

export interface PoolStats {
  /** Sockets taking queries or being opened, all upstreams. */
  readonly open: number;
  /** Retired sockets still waiting for answers. */
  readonly draining: number;
  /** Sockets opened since the start. */
  readonly opened: number;
  /** Queries sent on a fresh socket of their own because every pooled socket was full. */
  readonly fresh: number;
  /** Datagrams that matched no query in flight (late, or forged with a wrong id). */
  readonly unmatched: number;
  /** Sockets abandoned after more than unwantedPerSocket such datagrams. */
  readonly abandoned: number;
}

export interface UpstreamPool {
  /** UDP through the pool; TCP (and a query no pooled socket can take) through `fresh`. */
  readonly exchange: ExchangeFn;
  stats(): PoolStats;
  /** Closes every socket; queries in flight settle with an error. */
  close(): void;
}

export interface PoolOptions {
  readonly open: OpenSocket;
  /** A socket of its own per exchange (upstream.ts): TCP, and UDP when the pool is full. */
  readonly fresh: ExchangeFn;
  readonly limits?: Partial<PoolLimits>;
  /** Milliseconds. */
  readonly now?: () => number;
  /** A uniform random integer in [0, 2^32): unpredictable (crypto) outside tests. */
  readonly random?: () => number;
}

interface Pending {
  readonly query: Query;
  lastError: string;
  readonly finish: (result: Exchange) => void;
}

interface Slot {
  readonly group: Group;
  socket: PooledSocket | undefined;
  readonly ready: Promise<Slot | undefined>;
  readonly pending: Map<number, Pending>;
  readonly openedAt: number;
  uses: number;
  retired: boolean;
  closed: boolean;
  /** Datagrams on it that matched no query in flight. */
  unwanted: number;
  timer: Timer | undefined;
}

interface Group {
  /** Not retired: taking queries, or being opened. */
  readonly live: Slot[];
}

/** 256 random words at a time: one `getRandomValues` call per 256 draws. */
function cryptoRandom(): () => number {
  const words = new Uint32Array(256);
  let next = words.length;
  return () => {
    if (next >= words.length) {
      crypto.getRandomValues(words);
      next = 0;
    }
    return words[next++] as number;
  };
}

export function createUpstreamPool(options: PoolOptions): UpstreamPool {
  const limits = { ...DEFAULT_POOL_LIMITS, ...options.limits };
  const now = options.now ?? (() => performance.now());
  const random = options.random ?? cryptoRandom();
  const groups = new Map<string, Group>();
  const draining = new Set<Slot>();
  let opened = 0;
  let fresh = 0;
  let unmatched = 0;
  let abandoned = 0;
  let closed = false;

  /** `at once`: now, else after the reply this turn is sending (closing costs syscalls). */
  const closeSlot = (slot: Slot, atOnce = false) => {
    if (slot.closed) return;
    slot.closed = true;
    clearTimeout(slot.timer);
    draining.delete(slot);
    const socket = slot.socket;
    if (socket === undefined) return;
    if (atOnce) socket.close();
    else setImmediate(() => socket.close());
  };

  const retire = (slot: Slot) => {
    if (slot.retired) return;
    slot.retired = true;
    const live = slot.group.live;
    const at = live.indexOf(slot);
    if (at >= 0) live.splice(at, 1);
    if (slot.pending.size === 0) closeSlot(slot);
    else draining.add(slot);
  };

  /** Too many unwanted datagrams: its queries fail now, to be asked again elsewhere, and the port closes. */
  const abandon = (slot: Slot) => {
    if (slot.closed) return;
    abandoned++;
    retire(slot);
    const error = `its socket got ${slot.unwanted} answers that matched no query: abandoned (forged answers?)`;
    for (const waiting of [...slot.pending.values()]) waiting.finish({ ok: false, error });
    closeSlot(slot, true);
  };
  const unwanted = (slot: Slot) => {
    if (++slot.unwanted > limits.unwantedPerSocket) abandon(slot);
  };

  /** `later`: the socket is opened on the next turn, after the query that asked for it went out on another. */
  const open = (upstream: Upstream, group: Group, later: boolean): Slot => {
    const pending = new Map<number, Pending>();
    let resolveReady!: (slot: Slot | undefined) => void;
    const slot: Slot = {
      group,
      socket: undefined,
      ready: new Promise((resolve) => (resolveReady = resolve)),
      pending,
      openedAt: now(),
      uses: 0,
      retired: false,
      closed: false,
      unwanted: 0,
      timer: undefined,
    };
    group.live.push(slot);
    opened++;
    const events: SocketEvents = {
      data(bytes, truncated) {
        const id = bytes.length >= 2 ? ((bytes[0] as number) << 8) | (bytes[1] as number) : -1;
        const waiting = pending.get(id);
        if (waiting === undefined) {
          unmatched++;
          return unwanted(slot);
        }
        if (truncated) {
          waiting.lastError = "an answer larger than the receive buffer";
          return;
        }
        const answer = readAnswer(waiting.query, id, bytes);
        // An answer with the id but another question (forged, or stray) does not settle the query: the real one may follow.
        if (!answer.ok) {
          waiting.lastError = answer.reason;
          unwanted(slot);
        } else waiting.finish({ ok: true, bytes: new Uint8Array(bytes), answer });
      },
      error(message) {
        for (const waiting of pending.values()) waiting.lastError = message;
      },
    };
    const failed = () => {
      slot.closed = true;
      retire(slot);
      resolveReady(undefined);
    };
    const start = () => {
      if (closed) return failed();
      options.open(upstream, events).then((socket) => {
        slot.socket = socket;
        // Closed meanwhile (the pool stopped, or abandoned): closeSlot has run without a socket to close.
        if (slot.closed) socket.close();
        else if (closed || slot.retired) {
          if (slot.pending.size === 0) closeSlot(slot, true);
        } else slot.timer = setTimeout(() => retire(slot), limits.lifetimeMs);
        resolveReady(slot.closed ? undefined : slot);
      }, failed);
    };
    if (later) setImmediate(start);
    else start();
    return slot;
  };

  /** A pooled socket with room for one more query, drawn at random among those ready; opens more as needed. */
  const acquire = (upstream: Upstream): Slot | Promise<Slot | undefined> | undefined => {
    const key = `${upstream.address} ${upstream.port}`;
    let group = groups.get(key);
    if (group === undefined) {
      group = { live: [] };
      groups.set(key, group);
    }
    const at = now();
    const ready: Slot[] = [];
    let opening: Slot | undefined;
    for (const slot of [...group.live]) {
      if (slot.socket === undefined) opening ??= slot;
      else if (at - slot.openedAt >= limits.lifetimeMs) retire(slot);
      else if (slot.pending.size < limits.inFlightPerSocket) ready.push(slot);
    }
    // One more socket per query at most, so a burst does not open the whole pool at once on its path.
    if (group.live.length < limits.sockets) {
      const added = open(upstream, group, ready.length > 0);
      opening ??= added;
    }
    if (ready.length > 0) return ready[random() % ready.length];
    return opening?.ready;
  };

  const exchangeOn = (slot: Slot, query: Query, timeoutMs: number): Promise<Exchange> => {
    let id = random() & 0xffff;
    // Another draw for an id in flight; after a few, the next free one (the socket has fewer than 65,536 in flight).
    for (let draws = 1; slot.pending.has(id); draws++) id = draws < 8 ? random() & 0xffff : (id + 1) & 0xffff;
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => finish({ ok: false, error: `no answer in ${timeoutMs} ms${waiting.lastError ? ` (${waiting.lastError})` : ""}` }),
        timeoutMs,
      );
      const finish = (result: Exchange) => {
        if (slot.pending.get(id) !== waiting) return;
        slot.pending.delete(id);
        clearTimeout(timer);
        if (slot.retired && slot.pending.size === 0) closeSlot(slot);
        resolve(result);
      };
      const waiting: Pending = { query, lastError: "", finish };
      slot.pending.set(id, waiting);
      // Retired only now that this query is in flight on it: closed after its answer, not before.
      if (++slot.uses >= limits.usesPerSocket) retire(slot);
      const packet = encodeUpstreamQuery(query, id);
      // A send may fail once with an error left on the socket by an earlier datagram's ICMP reply: try again.
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          if (slot.socket?.send(packet)) return;
          break;
        } catch (error) {
          waiting.lastError = error instanceof Error ? error.message : String(error);
        }
      }
      finish({ ok: false, error: `the query could not be sent${waiting.lastError ? ` (${waiting.lastError})` : ""}` });
    });
  };

  const exchange: ExchangeFn = async (query, upstream, transport, timeoutMs) => {
    if (transport === "tcp" || closed) return options.fresh(query, upstream, transport, timeoutMs);
    const got = acquire(upstream);
    const slot = got instanceof Promise ? await got : got;
    if (slot === undefined || slot.closed || slot.retired || slot.pending.size >= limits.inFlightPerSocket) {
      fresh++;
      return options.fresh(query, upstream, transport, timeoutMs);
    }
    return exchangeOn(slot, query, timeoutMs);
  };

  return {
    exchange,
    stats: () => ({
      open: [...groups.values()].reduce((n, g) => n + g.live.length, 0),
      draining: draining.size,
      opened,
      fresh,
      unmatched,
      abandoned,
    }),
    close() {
      closed = true;
      const slots = [...[...groups.values()].flatMap((g) => g.live), ...draining];
      groups.clear();
      for (const slot of slots) {
        slot.retired = true;
        closeSlot(slot, true);
        for (const waiting of [...slot.pending.values()]) waiting.finish({ ok: false, error: "the DNS proxy stopped" });
      }
    },
  };
}
