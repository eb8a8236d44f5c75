/**
 * Who gets the proxy's next free slot: queries wait in one bounded queue per client (a UDP source
 * address and port, a TCP connection) and are taken round-robin across clients, so a client that
 * floods waits behind every other client's next query instead of taking the slots from them. When
 * a queue is full its own oldest query is dropped; when all of them together are, the oldest of the
 * client with the most queued and in flight is (another than the newcomer on a tie): a flood drops
 * its own queries first.
 */

export interface FairQueueLimits {
  /** Queries being answered at once, all clients together. */
  readonly maxInFlight: number;
  /** Queries being answered at once for one client; its others wait. */
  readonly maxInFlightPerClient: number;
  /** Queries one client may have waiting. */
  readonly maxQueuedPerClient: number;
  /** Queries waiting, all clients together. */
  readonly maxQueued: number;
}

interface Client<T> {
  readonly key: string;
  readonly waiting: T[];
  inFlight: number;
  /** In the round-robin ring: something waiting and a slot of its own free. */
  ready: boolean;
}

export interface FairQueue<T> {
  /** Queues `item` for `client`; `dropped` is told of each item pushed out (this one or an older one). */
  push(client: string, item: T): void;
  /** Whether a push for `client` now would only push out its own oldest (its slots and its queue are full): a flood's cheap drop. */
  full(client: string): boolean;
  /** The next item to answer, round-robin, if a slot is free (the slot is taken until `done`). */
  take(): { readonly client: string; readonly item: T } | undefined;
  /** The client's query taken earlier is answered: its slot is free. */
  done(client: string): void;
  /** Drops everything the client has waiting (a closed connection), through `dropped`. */
  forget(client: string): void;
  readonly inFlight: number;
  readonly queued: number;
  /** Clients with something waiting or in flight. */
  readonly clients: number;
}

export function createFairQueue<T>(limits: FairQueueLimits, dropped: (item: T) => void): FairQueue<T> {
  const clients = new Map<string, Client<T>>();
  /** Clients in turn; a client is in it exactly when `ready`. */
  let ring: Client<T>[] = [];
  let ringHead = 0;
  let inFlight = 0;
  let queued = 0;

  const makeReady = (c: Client<T>) => {
    if (!c.ready && c.waiting.length > 0 && c.inFlight < limits.maxInFlightPerClient) {
      c.ready = true;
      ring.push(c);
    }
  };
  const release = (c: Client<T>) => {
    if (c.waiting.length === 0 && c.inFlight === 0 && !c.ready) clients.delete(c.key);
  };
  const dropOldest = (c: Client<T>) => {
    const item = c.waiting.shift();
    if (item === undefined) return;
    queued--;
    dropped(item);
  };

  /**
   * Whose oldest goes when the shared queue overflows: the client with the most queued and in flight
   * (a flood holding slots counts), another than `newcomer` on a tie, so one query from each of
   * thousands of source ports cannot push out a newcomer's only one.
   */
  const heaviest = (newcomer: Client<T>): Client<T> => {
    let chosen = newcomer;
    let weight = newcomer.waiting.length + newcomer.inFlight;
    for (const other of clients.values()) {
      const w = other.waiting.length + other.inFlight;
      if (other.waiting.length > 0 && (w > weight || (w === weight && chosen === newcomer))) [chosen, weight] = [other, w];
    }
    return chosen;
  };

  return {
    push(key, item) {
      let c = clients.get(key);
      if (c === undefined) {
        c = { key, waiting: [], inFlight: 0, ready: false };
        clients.set(key, c);
      }
      c.waiting.push(item);
      queued++;
      if (c.waiting.length > limits.maxQueuedPerClient) dropOldest(c);
      if (queued > limits.maxQueued) dropOldest(heaviest(c));
      makeReady(c);
    },
    full(key) {
      const c = clients.get(key);
      return c !== undefined && c.inFlight >= limits.maxInFlightPerClient && c.waiting.length >= limits.maxQueuedPerClient;
    },
    take() {
      while (inFlight < limits.maxInFlight && ringHead < ring.length) {
        const c = ring[ringHead++] as Client<T>;
        c.ready = false;
        if (ringHead > 1024 && ringHead * 2 > ring.length) [ring, ringHead] = [ring.slice(ringHead), 0];
        const item = c.waiting.shift();
        if (item === undefined) {
          release(c);
          continue;
        }
        queued--;
        c.inFlight++;
        inFlight++;
        makeReady(c);
        return { client: c.key, item };
      }
      return undefined;
    },
    done(key) {
      const c = clients.get(key);
      if (c === undefined || c.inFlight === 0) return;
      c.inFlight--;
      inFlight--;
      makeReady(c);
      release(c);
    },
    forget(key) {
      const c = clients.get(key);
      if (c === undefined) return;
      while (c.waiting.length > 0) dropOldest(c);
      release(c);
    },
    get inFlight() {
      return inFlight;
    },
    get queued() {
      return queued;
    },
    get clients() {
      return clients.size;
    },
  };
}
