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
});
