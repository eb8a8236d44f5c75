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
  /** Its bucket in `byWeight`: waiting + in flight while something waits, else 0 (in none). */
  weight: number;
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
  /** Exactly the clients with something waiting or in flight: a flood from many source ports leaves none behind. */
  const clients = new Map<string, Client<T>>();
  /** Clients in turn, in order; a client is in it exactly when `ready`. */
  const ring = new Set<Client<T>>();
  /** Clients with something waiting, by weight, each in the order it got that weight: the overflow's victim is found without a scan. */
  const byWeight: Set<Client<T>>[] = [];
  let inFlight = 0;
  let queued = 0;

  /** Puts the client in the ring or takes it out, after a change of its queue or its slots. */
  const turn = (c: Client<T>) => {
    const ready = c.waiting.length > 0 && c.inFlight < limits.maxInFlightPerClient;
    if (ready === c.ready) return;
    c.ready = ready;
    if (ready) ring.add(c);
    else ring.delete(c);
  };
  /** Moves the client to the bucket of its weight now. */
  const reweigh = (c: Client<T>) => {
    const weight = c.waiting.length > 0 ? c.waiting.length + c.inFlight : 0;
    if (weight === c.weight) return;
    if (c.weight > 0) byWeight[c.weight]?.delete(c);
    if (weight > 0) (byWeight[weight] ??= new Set()).add(c);
    c.weight = weight;
  };
  /** After any change of a client: its turn, its weight, and whether it is remembered at all. */
  const changed = (c: Client<T>) => {
    turn(c);
    reweigh(c);
    if (c.waiting.length === 0 && c.inFlight === 0) clients.delete(c.key);
  };
  const dropOldest = (c: Client<T>) => {
    const item = c.waiting.shift();
    if (item === undefined) return;
    queued--;
    changed(c);
    dropped(item);
  };

  /**
   * Whose oldest goes when the shared queue overflows: the client with the most queued and in flight
   * (a flood holding slots counts), another than `newcomer` on a tie, so one query from each of
   * thousands of source ports cannot push out a newcomer's only one.
   */
  const heaviest = (newcomer: Client<T>): Client<T> => {
    for (let weight = byWeight.length - 1; weight > 0; weight--) {
      const bucket = byWeight[weight];
      if (bucket === undefined || bucket.size === 0) continue;
      for (const c of bucket) if (c !== newcomer) return c;
      return newcomer;
    }
    return newcomer;
  };

  return {
    push(key, item) {
      let c = clients.get(key);
      if (c === undefined) {
        c = { key, waiting: [], inFlight: 0, ready: false, weight: 0 };
        clients.set(key, c);
      }
      c.waiting.push(item);
      queued++;
      changed(c);
      if (c.waiting.length > limits.maxQueuedPerClient) dropOldest(c);
      if (queued > limits.maxQueued) dropOldest(heaviest(c));
    },
    full(key) {
      const c = clients.get(key);
      return c !== undefined && c.inFlight >= limits.maxInFlightPerClient && c.waiting.length >= limits.maxQueuedPerClient;
    },
    take() {
      if (inFlight >= limits.maxInFlight) return undefined;
      for (const c of ring) {
        const item = c.waiting.shift() as T; // in the ring: something waits
        queued--;
        c.inFlight++;
        inFlight++;
        // To the ring's end: the others' next queries come first.
        ring.delete(c);
        c.ready = false;
        changed(c);
        return { client: c.key, item };
      }
      return undefined;
    },
    done(key) {
      const c = clients.get(key);
      if (c === undefined || c.inFlight === 0) return;
      c.inFlight--;
      inFlight--;
      changed(c);
    },
    forget(key) {
      const c = clients.get(key);
      if (c === undefined) return;
      while (c.waiting.length > 0) dropOldest(c);
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
