import { describe, expect, test } from "bun:test";
import { decode, encode } from "dns-packet";
import { readQuery, type Query } from "../../src/proxy/message.ts";
import type { Exchange, ExchangeFn, OpenSocket, SocketEvents, Upstream } from "../../src/proxy/upstream.ts";
import { createUpstreamPool, type PoolLimits } from "../../src/proxy/upstream-pool.ts";
import { queryBytes } from "../support/dns.ts";

const UPSTREAM: Upstream = { address: "192.0.2.53", port: 53 };
const OTHER: Upstream = { address: "198.51.100.53", port: 53 };

function queryOf(name: string, type = "A"): Query {
  const check = readQuery(queryBytes(0x4242, name, type));
  if (check.kind !== "query") throw new Error(check.reason);
  return check.query;
}

/** An answer to a query the pool sent, with `edit` applied (another id, another name...). */
function answerTo(sent: Uint8Array, edit: { id?: number; name?: string; address?: string } = {}): Uint8Array {
  const query = decode(Buffer.from(sent));
  const question = query.questions?.[0];
  const name = edit.name ?? question?.name ?? "";
  return new Uint8Array(
    encode({
      type: "response",
      id: edit.id ?? query.id ?? 0,
      flags: 0x8180,
      questions: [{ name, type: "A", class: "IN" }],
      answers: [{ type: "A", name, ttl: 30, data: edit.address ?? "203.0.113.7" }],
    }),
  );
}

interface FakeSocket {
  readonly upstream: Upstream;
  readonly events: SocketEvents;
  readonly sent: Uint8Array[];
  closed: boolean;
}

/** A pool over fake sockets, a fake clock and scripted random numbers (default: counting up). */
function fakePool(limits: Partial<PoolLimits> = {}, options: { random?: () => number; failOpen?: boolean } = {}) {
  const sockets: FakeSocket[] = [];
  const freshCalls: Query[] = [];
  let clock = 0;
  let counter = 0;
  const open: OpenSocket = (upstream, events) => {
    if (options.failOpen) return Promise.reject(new Error("EMFILE"));
    const socket: FakeSocket = { upstream, events, sent: [], closed: false };
    sockets.push(socket);
    return Promise.resolve({
      send: (packet) => {
        if (socket.closed) throw new Error("send on a closed socket");
        socket.sent.push(packet);
        return true;
      },
      close: () => {
        socket.closed = true;
      },
    });
  };
  const fresh: ExchangeFn = async (query) => {
    freshCalls.push(query);
    return { ok: false, error: "fresh socket (fake)" };
  };
  const pool = createUpstreamPool({
    open,
    fresh,
    limits: { sockets: 2, usesPerSocket: 100, lifetimeMs: 10_000, inFlightPerSocket: 64, ...limits },
    now: () => clock,
    random: options.random ?? (() => counter++ * 7919),
  });
  return {
    pool,
    sockets,
    freshCalls,
    advance: (ms: number) => {
      clock += ms;
    },
  };
}

/** Lets the pool's promises and deferred work (a socket opened or closed after the query's turn) run. */
const settle = () => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));

/** The one socket that sent something, and its last packet. */
function lastSent(sockets: readonly FakeSocket[]): { socket: FakeSocket; packet: Uint8Array } {
  const [socket, ...others] = sockets.filter((s) => s.sent.length > 0);
  if (socket === undefined || others.length > 0) throw new Error("expected one socket to have sent");
  return { socket, packet: socket.sent.at(-1) as Uint8Array };
}

/** The addresses of an exchange's answer (or its error). */
const addresses = (got: Exchange) => (got.ok ? got.answer.records.map((r) => ("data" in r ? r.data : undefined)) : got.error);

const idOf = (packet: Uint8Array) => ((packet[0] ?? 0) << 8) | (packet[1] ?? 0);

describe("createUpstreamPool", () => {
  test("an answer counts only with the query's id and question: a forged id or another question leaves the query waiting", async () => {
    const { pool, sockets } = fakePool({ sockets: 1 });
    const pending = pool.exchange(queryOf("api.example.com"), UPSTREAM, "udp", 1000);
    await settle();
    const { socket, packet } = lastSent(sockets);
    const id = idOf(packet);
    let result: Exchange | undefined;
    void pending.then((r) => (result = r));
    socket.events.data(answerTo(packet, { id: (id + 1) & 0xffff, address: "198.51.100.66" }), false);
    socket.events.data(answerTo(packet, { name: "evil.example", address: "198.51.100.67" }), false);
    await settle();
    expect(result).toBeUndefined();
    expect(pool.stats().unmatched).toBe(1);
    socket.events.data(answerTo(packet), false);
    const got = await pending;
    expect(addresses(got)).toEqual(["203.0.113.7"]);
    pool.close();
  });

  test("an answer for one query never settles another on the same socket; a replay after the answer is dropped", async () => {
    const { pool, sockets } = fakePool({ sockets: 1 });
    const a = pool.exchange(queryOf("a.example.com"), UPSTREAM, "udp", 1000);
    const b = pool.exchange(queryOf("b.example.com"), UPSTREAM, "udp", 1000);
    await settle();
    const socket = sockets[0] as FakeSocket;
    const [sentA, sentB] = socket.sent as [Uint8Array, Uint8Array];
    expect(idOf(sentA)).not.toBe(idOf(sentB));
    // B's answer under A's id: the question is B's, so A keeps waiting.
    socket.events.data(answerTo(sentB, { id: idOf(sentA), address: "198.51.100.1" }), false);
    socket.events.data(answerTo(sentB, { address: "203.0.113.2" }), false);
    socket.events.data(answerTo(sentA, { address: "203.0.113.1" }), false);
    socket.events.data(answerTo(sentA, { address: "198.51.100.9" }), false);
    const [gotA, gotB] = await Promise.all([a, b]);
    expect(addresses(gotA)).toEqual(["203.0.113.1"]);
    expect(addresses(gotB)).toEqual(["203.0.113.2"]);
    expect(pool.stats().unmatched).toBe(1);
    pool.close();
  });

  test("ids are drawn at random and are unique among a socket's queries in flight", async () => {
    // The random source repeats itself: the pool draws again rather than reuse an id in flight.
    const draws = [5, 5, 5, 9, 5, 9, 12];
    const { pool, sockets } = fakePool({ sockets: 1 }, { random: () => draws.shift() ?? 77 });
    const queries = ["a", "b", "c"].map((n) => pool.exchange(queryOf(`${n}.example.com`), UPSTREAM, "udp", 1000));
    await settle();
    const ids = (sockets[0] as FakeSocket).sent.map(idOf);
    expect(new Set(ids).size).toBe(3);
    pool.close();
    await Promise.all(queries);
  });

  test("the socket a query goes out on is drawn at random among those ready", async () => {
    let next = 0;
    let draws = 0;
    // The low bits pick the socket (4 of them), the high bits make distinct ids.
    const { pool, sockets } = fakePool({ sockets: 4 }, { random: () => next + (draws++ << 8) });
    // Fill the pool: four sockets open.
    for (let i = 0; i < 4; i++) void pool.exchange(queryOf(`w${i}.example.com`), UPSTREAM, "udp", 1000);
    await settle();
    expect(sockets.length).toBe(4);
    const before = sockets.map((s) => s.sent.length);
    const picks: number[] = [];
    for (const r of [0, 1, 2, 3, 2]) {
      next = r;
      void pool.exchange(queryOf(`p${r}.example.com`), UPSTREAM, "udp", 1000);
      await settle();
      picks.push(sockets.findIndex((s, i) => s.sent.length > (before[i] ?? 0)));
      sockets.forEach((s, i) => (before[i] = s.sent.length));
    }
    expect(new Set(picks).size).toBe(4);
    pool.close();
  });

  test("a socket serves at most usesPerSocket queries, is closed once its last answer came, and another takes over", async () => {
    const { pool, sockets } = fakePool({ sockets: 1, usesPerSocket: 2 });
    const first = pool.exchange(queryOf("a.example.com"), UPSTREAM, "udp", 1000);
    const second = pool.exchange(queryOf("b.example.com"), UPSTREAM, "udp", 1000);
    await settle();
    expect(sockets.length).toBe(1);
    const third = pool.exchange(queryOf("c.example.com"), UPSTREAM, "udp", 1000);
    await settle();
    expect(sockets.length).toBe(2);
    const [old, young] = sockets as [FakeSocket, FakeSocket];
    expect(old.sent.length).toBe(2);
    expect(young.sent.length).toBe(1);
    expect(old.closed).toBe(false);
    expect(pool.stats()).toMatchObject({ open: 1, draining: 1 });
    old.events.data(answerTo(old.sent[0] as Uint8Array), false);
    await first;
    expect(old.closed).toBe(false);
    old.events.data(answerTo(old.sent[1] as Uint8Array), false);
    await second;
    await settle();
    expect(old.closed).toBe(true);
    expect(pool.stats()).toMatchObject({ open: 1, draining: 0 });
    young.events.data(answerTo(young.sent[0] as Uint8Array), false);
    expect((await third).ok).toBe(true);
    pool.close();
  });

  test("the query that uses a socket up is answered on it: the socket closes after that answer, not before", async () => {
    const { pool, sockets } = fakePool({ sockets: 1, usesPerSocket: 2 });
    for (const name of ["a", "b", "c", "d"]) {
      const pending = pool.exchange(queryOf(`${name}.example.com`), UPSTREAM, "udp", 1000);
      await settle();
      const { socket, packet } = lastSent(sockets.filter((s) => !s.closed));
      socket.sent.length = 0;
      expect(socket.closed).toBe(false);
      socket.events.data(answerTo(packet), false);
      expect(addresses(await pending)).toEqual(["203.0.113.7"]);
    }
    await settle();
    expect(sockets.map((s) => s.closed)).toEqual([true, true]);
    pool.close();
  });

  test("a socket older than lifetimeMs takes no more queries", async () => {
    const { pool, sockets, advance } = fakePool({ sockets: 1, lifetimeMs: 5000 });
    const first = pool.exchange(queryOf("a.example.com"), UPSTREAM, "udp", 1000);
    await settle();
    (sockets[0] as FakeSocket).events.data(answerTo((sockets[0] as FakeSocket).sent[0] as Uint8Array), false);
    await first;
    advance(5000);
    void pool.exchange(queryOf("b.example.com"), UPSTREAM, "udp", 1000);
    await settle();
    expect(sockets.length).toBe(2);
    expect((sockets[0] as FakeSocket).closed).toBe(true);
    expect((sockets[1] as FakeSocket).sent.length).toBe(1);
    pool.close();
  });

  test("once the pool is open, queries open no socket until one is retired", async () => {
    const { pool, sockets } = fakePool({ sockets: 3, usesPerSocket: 1000 });
    for (let i = 0; i < 50; i++) {
      const pending = pool.exchange(queryOf(`n${i}.example.com`), UPSTREAM, "udp", 1000);
      await settle();
      const { socket, packet } = lastSent(sockets);
      socket.sent.length = 0;
      socket.events.data(answerTo(packet), false);
      expect((await pending).ok).toBe(true);
    }
    expect(pool.stats()).toMatchObject({ open: 3, opened: 3, fresh: 0 });
    pool.close();
  });

  test("a socket is opened off the query's path: a query with a socket ready goes out first, the new socket opens after", async () => {
    const { pool, sockets } = fakePool({ sockets: 2 });
    void pool.exchange(queryOf("a.example.com"), UPSTREAM, "udp", 1000);
    await settle();
    expect(sockets.length).toBe(1);
    void pool.exchange(queryOf("b.example.com"), UPSTREAM, "udp", 1000);
    // Sent at once on the socket there is; the second socket is not opened yet.
    expect((sockets[0] as FakeSocket).sent.length).toBe(2);
    expect(sockets.length).toBe(1);
    await settle();
    expect(sockets.length).toBe(2);
    pool.close();
  });

  test("each upstream has sockets of its own, connected to it", async () => {
    const { pool, sockets } = fakePool({ sockets: 1 });
    void pool.exchange(queryOf("a.example.com"), UPSTREAM, "udp", 1000);
    void pool.exchange(queryOf("b.example.com"), OTHER, "udp", 1000);
    await settle();
    expect(sockets.map((s) => s.upstream)).toEqual([UPSTREAM, OTHER]);
    pool.close();
  });

  test("every socket full (inFlightPerSocket): the query gets a fresh socket of its own, none waits", async () => {
    const { pool, sockets, freshCalls } = fakePool({ sockets: 1, inFlightPerSocket: 2 });
    for (const n of ["a", "b", "c"]) void pool.exchange(queryOf(`${n}.example.com`), UPSTREAM, "udp", 1000);
    await settle();
    expect((sockets[0] as FakeSocket).sent.length).toBe(2);
    expect(freshCalls.map((q) => q.name)).toEqual(["c.example.com"]);
    expect(pool.stats().fresh).toBe(1);
    pool.close();
  });

  test("TCP goes through a fresh connection; a socket that cannot be opened sends the query through a fresh one", async () => {
    const tcp = fakePool();
    await tcp.pool.exchange(queryOf("a.example.com"), UPSTREAM, "tcp", 1000);
    expect(tcp.freshCalls.length).toBe(1);
    expect(tcp.sockets.length).toBe(0);
    const failing = fakePool({}, { failOpen: true });
    const got = await failing.pool.exchange(queryOf("a.example.com"), UPSTREAM, "udp", 1000);
    expect(got).toEqual({ ok: false, error: "fresh socket (fake)" });
    expect(failing.pool.stats().open).toBe(0);
  });

  test("no answer in time: the query fails with the socket's last error, and a late answer is dropped", async () => {
    const { pool, sockets } = fakePool({ sockets: 1 });
    const pending = pool.exchange(queryOf("a.example.com"), UPSTREAM, "udp", 20);
    await settle();
    const socket = sockets[0] as FakeSocket;
    socket.events.error("ECONNREFUSED: connection refused");
    expect(await pending).toEqual({ ok: false, error: "no answer in 20 ms (ECONNREFUSED: connection refused)" });
    socket.events.data(answerTo(socket.sent[0] as Uint8Array), false);
    expect(pool.stats().unmatched).toBe(1);
    pool.close();
  });

  test("close: queries in flight fail, every socket is closed, later queries open none", async () => {
    const { pool, sockets } = fakePool({ sockets: 2 });
    const pending = pool.exchange(queryOf("a.example.com"), UPSTREAM, "udp", 1000);
    await settle();
    pool.close();
    expect(await pending).toEqual({ ok: false, error: "the DNS proxy stopped" });
    expect(sockets.every((s) => s.closed)).toBe(true);
    const count = sockets.length;
    await pool.exchange(queryOf("b.example.com"), UPSTREAM, "udp", 1000);
    expect(sockets.length).toBe(count);
  });

  test("a socket that gets more than unwantedPerSocket datagrams matching no query (a forger who knows its port) is abandoned: its queries fail at once, to be asked again on another, and it closes", async () => {
    const { pool, sockets } = fakePool({ sockets: 1, unwantedPerSocket: 3 });
    const pending = pool.exchange(queryOf("api.example.com"), UPSTREAM, "udp", 1000);
    await settle();
    const { socket, packet } = lastSent(sockets);
    const id = idOf(packet);
    let result: Exchange | undefined;
    void pending.then((r) => (result = r));
    // Wrong ids, and the right id with another question: each is unwanted.
    for (const edit of [{ id: (id + 1) & 0xffff }, { id: (id + 2) & 0xffff }, { name: "evil.example" }])
      socket.events.data(answerTo(packet, edit), false);
    await settle();
    expect(result).toBeUndefined();
    expect(socket.closed).toBe(false);
    socket.events.data(answerTo(packet, { id: (id + 3) & 0xffff }), false);
    await settle();
    expect(result).toEqual({ ok: false, error: "its socket got 4 answers that matched no query: abandoned (forged answers?)" });
    expect(socket.closed).toBe(true);
    // The right answer, too late: the port is closed to it.
    const next = pool.exchange(queryOf("api.example.com"), UPSTREAM, "udp", 1000);
    await settle();
    expect(sockets.length).toBe(2);
    expect((sockets[1] as FakeSocket).sent.length).toBe(1);
    pool.close();
    await next;
  });

  test("close while a socket is being opened: the socket closes once it opens", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const opened: { closed: boolean }[] = [];
    const pool = createUpstreamPool({
      open: async () => {
        await gate;
        const socket = { closed: false };
        opened.push(socket);
        return { send: () => true, close: () => void (socket.closed = true) };
      },
      fresh: async () => ({ ok: false, error: "fresh" }),
      limits: { sockets: 1 },
    });
    const pending = pool.exchange(queryOf("a.example.com"), UPSTREAM, "udp", 1000);
    pool.close();
    release();
    await pending;
    await settle();
    expect(opened).toEqual([{ closed: true }]);
  });
});
