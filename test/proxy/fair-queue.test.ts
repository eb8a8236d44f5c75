import { describe, expect, test } from "bun:test";
import { createFairQueue, type FairQueueLimits } from "../../src/proxy/fair-queue.ts";

const LIMITS: FairQueueLimits = { maxInFlight: 100, maxInFlightPerClient: 100, maxQueuedPerClient: 100, maxQueued: 1000 };

function queue(limits: Partial<FairQueueLimits> = {}) {
  const dropped: string[] = [];
  const q = createFairQueue<string>({ ...LIMITS, ...limits }, (item) => dropped.push(item));
  const takeAll = () => {
    const out: string[] = [];
    for (let next = q.take(); next !== undefined; next = q.take()) out.push(next.item);
    return out;
  };
  return { q, dropped, takeAll };
}

describe("fair queue", () => {
  test("round-robin across clients: a client with 5 waiting and two with 1 each", () => {
    const { q, takeAll } = queue();
    for (let i = 1; i <= 5; i++) q.push("a", `a${i}`);
    q.push("b", "b1");
    q.push("c", "c1");
    expect(takeAll()).toEqual(["a1", "b1", "c1", "a2", "a3", "a4", "a5"]);
    expect(q.inFlight).toBe(7);
  });

  test("a flood of 10,000 from one client: another client's query is the next but one taken, and the flood drops its own oldest", () => {
    const { q, dropped } = queue({ maxInFlight: 1, maxQueuedPerClient: 64 });
    for (let i = 0; i < 10_000; i++) q.push("flood", `f${i}`);
    q.push("other", "o1");
    expect(dropped).toHaveLength(10_000 - 64);
    expect(dropped[0]).toBe("f0");
    const first = q.take();
    expect(q.take()).toBeUndefined(); // every slot taken
    q.done(first?.client ?? "");
    expect(q.take()?.item).toBe("o1");
  });

  test("the shared queue overflowing on a tie: a newcomer's only query is not the one dropped (one query from each of 4,096 source ports)", () => {
    const { q, dropped } = queue({ maxInFlight: 4, maxInFlightPerClient: 4, maxQueuedPerClient: 64, maxQueued: 4096 });
    for (let i = 0; i < 4; i++) q.push("flood:1", `busy${i}`);
    for (let i = 0; i < 4; i++) q.take();
    for (let port = 1024; port < 1024 + 4096; port++) q.push(`flood:${port}`, `f${port}`);
    expect(dropped).toEqual([]);
    q.push("victim:53000", "victim");
    expect(dropped).toHaveLength(1);
    expect(dropped).not.toContain("victim");
    expect(q.queued).toBe(4096);
  });

  test("the shared queue overflowing: the client with the most queued and in flight loses its oldest", () => {
    const { q, dropped } = queue({ maxInFlight: 2, maxInFlightPerClient: 2, maxQueuedPerClient: 64, maxQueued: 4 });
    q.push("busy", "b0");
    q.push("busy", "b1");
    q.take();
    q.take();
    q.push("busy", "b2");
    q.push("a", "a1");
    q.push("a", "a2");
    q.push("c", "c1");
    q.push("d", "d1");
    // busy: 1 queued + 2 in flight outweighs a's 2 queued.
    expect(dropped).toEqual(["b2"]);
  });

  test("at most maxInFlightPerClient of one client at once; done frees its slot", () => {
    const { q, takeAll } = queue({ maxInFlightPerClient: 2 });
    for (let i = 1; i <= 4; i++) q.push("a", `a${i}`);
    q.push("b", "b1");
    expect(takeAll()).toEqual(["a1", "b1", "a2"]);
    q.done("a");
    expect(takeAll()).toEqual(["a3"]);
    q.done("b");
    expect(takeAll()).toEqual([]);
    expect(q.queued).toBe(1);
  });

  test("all queues together full: the longest queue's oldest is dropped, not the newcomer's", () => {
    const { q, dropped } = queue({ maxQueued: 5 });
    for (let i = 1; i <= 4; i++) q.push("a", `a${i}`);
    q.push("b", "b1");
    q.push("c", "c1");
    expect(dropped).toEqual(["a1"]);
    expect(q.queued).toBe(5);
  });

  test("forget drops what a client has waiting; a client with nothing left is forgotten", () => {
    const { q, dropped, takeAll } = queue({ maxInFlightPerClient: 1 });
    for (let i = 1; i <= 3; i++) q.push("a", `a${i}`);
    expect(takeAll()).toEqual(["a1"]);
    q.forget("a");
    expect(dropped).toEqual(["a2", "a3"]);
    q.done("a");
    expect(q.clients).toBe(0);
    q.push("a", "a4");
    expect(takeAll()).toEqual(["a4"]);
  });

  test("the ring stays bounded over a long run", () => {
    const { q } = queue({ maxInFlight: 1 });
    for (let i = 0; i < 100_000; i++) {
      q.push(`c${i % 7}`, `x${i}`);
      const next = q.take();
      if (next !== undefined) q.done(next.client);
    }
    expect(q.inFlight).toBe(0);
    expect(q.queued).toBe(0);
    expect(q.clients).toBe(0);
  });

  test("a flood from 10,000 source ports while every slot is taken: only the clients with something queued or in flight are remembered", () => {
    const { q, dropped } = queue({ maxInFlight: 4, maxInFlightPerClient: 4, maxQueuedPerClient: 64, maxQueued: 64 });
    for (let i = 0; i < 4; i++) q.push("busy", `b${i}`);
    for (let i = 0; i < 4; i++) q.take();
    for (let port = 0; port < 10_000; port++) q.push(`flood:${port}`, `f${port}`);
    expect(dropped).toHaveLength(10_000 - 64);
    expect(dropped.slice(0, 2)).toEqual(["f0", "f1"]);
    expect(q.queued).toBe(64);
    expect(q.clients).toBe(64 + 1);
    q.done("busy");
    // The next taken is the oldest query still waiting: the ring kept no dropped client.
    expect(q.take()?.item).toBe(`f${10_000 - 64}`);
  });
});
