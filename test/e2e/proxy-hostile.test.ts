// The proxy faces the app, which may be hostile: malformed and random packets, a TCP client that
// stalls, too many connections, a flood; and an upstream that may send anything back.
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { encode, type Answer } from "dns-packet";
import { compileMatcher } from "../../src/proxy/match.ts";
import { answerAddresses, readAnswer, readQuery } from "../../src/proxy/message.ts";
import { startDnsProxy, type DnsProxy, type ProxyLimits } from "../../src/proxy/server.ts";
import { tcpAsk, udpAsk, withTimeout } from "../support/dns-client.ts";
import { queryBytes, svcbRdata, svcbRecord } from "../support/dns.ts";
import { startFakeDns, type FakeDns, type Responder } from "../support/fake-dns.ts";

/** A seeded generator (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SAMPLES = [
  queryBytes(1, "api.example.com", "A"),
  queryBytes(2, "a.b.any.example", "AAAA", { edns: true }),
  queryBytes(3, "c2VjcmV0.exfil.example", "HTTPS", { edns: true }),
  // a pointer loop in the OPT record's owner
  Uint8Array.from([0, 4, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 3, 97, 112, 105, 0, 0, 1, 0, 1, 0xc0, 21, 0, 41, 16, 0, 0, 0, 0, 0, 0, 0]),
];

/** Random bytes, or a sample with bytes flipped, cut short, extended or with its counts changed. */
function fuzzPacket(next: () => number): Uint8Array {
  const pick = (n: number) => Math.floor(next() * n);
  if (next() < 0.2) return Uint8Array.from({ length: pick(600) }, () => pick(256));
  const packet = new Uint8Array(SAMPLES[pick(SAMPLES.length)] as Uint8Array);
  switch (pick(4)) {
    case 0:
      for (let i = 0, n = 1 + pick(4); i < n; i++) packet[pick(packet.length)] = pick(256);
      return packet;
    case 1:
      return packet.slice(0, pick(packet.length));
    case 2:
      return Uint8Array.from([...packet, ...Array.from({ length: pick(64) }, () => pick(256))]);
    default:
      packet[4 + pick(8)] = pick(4);
      return packet;
  }
}

const running: (() => void)[] = [];
afterEach(() => {
  for (const stop of running.splice(0)) stop();
});

const quiet = { info() {}, warn() {}, error() {} };

async function start(answer: Responder, limits: Partial<ProxyLimits> = {}): Promise<{ proxy: DnsProxy; upstream: FakeDns }> {
  const upstream = await startFakeDns(answer);
  const compiled = compileMatcher(["api.example.com", "**.any.example"]);
  if (!compiled.ok) throw new Error("bad list");
  const proxy = await startDnsProxy({
    port: 0,
    upstreams: [{ address: "127.0.0.1", port: upstream.port }],
    match: compiled.match,
    admit: async () => {},
    log: quiet,
    limits,
  });
  running.push(
    () => proxy.stop(),
    () => upstream.stop(),
  );
  return { proxy, upstream };
}

const answerA: Responder = (query) => ({ answers: [{ type: "A", name: query.questions?.[0]?.name ?? "", ttl: 30, data: "192.0.2.1" }] });

describe("pure functions never throw", () => {
  test("readQuery on 100,000 random and mutated packets", () => {
    const next = random(1);
    const kinds = { query: 0, reply: 0, drop: 0 };
    for (let i = 0; i < 100_000; i++) kinds[readQuery(fuzzPacket(next)).kind]++;
    expect(kinds.query).toBeGreaterThan(0);
    expect(kinds.reply).toBeGreaterThan(0);
    expect(kinds.drop).toBeGreaterThan(0);
  });

  test("readAnswer and answerAddresses on 50,000 mutated answers (a hostile upstream)", () => {
    const check = readQuery(queryBytes(1, "api.example.com", "A"));
    if (check.kind !== "query") throw new Error("sample");
    const answer = new Uint8Array(
      encode({
        type: "response",
        id: 7,
        flags: 0x8180,
        questions: [{ name: "api.example.com", type: "A", class: "IN" }],
        answers: [
          { type: "CNAME", name: "api.example.com", ttl: 30, data: "b.example" },
          { type: "A", name: "b.example", ttl: 30, data: "192.0.2.1" },
          svcbRecord("HTTPS", "b.example", 30, svcbRdata(1, ".", { v4: ["192.0.2.2"], v6: ["2001:db8::2"] })),
        ] as Answer[],
      }),
    );
    const next = random(2);
    let read = 0;
    for (let i = 0; i < 50_000; i++) {
      const bytes = new Uint8Array(answer);
      for (let j = 0, n = 1 + Math.floor(next() * 3); j < n; j++)
        bytes[12 + Math.floor(next() * (bytes.length - 12))] = Math.floor(next() * 256);
      const result = readAnswer(check.query, 7, next() < 0.3 ? bytes.slice(0, Math.floor(next() * bytes.length)) : bytes);
      if (!result.ok) continue;
      read++;
      for (const a of answerAddresses("api.example.com", result.records).addresses) expect(a.address).toMatch(/^[0-9a-f.:]+$/);
    }
    expect(read).toBeGreaterThan(0);
  });
});

describe("DNS proxy under attack", () => {
  test("20,000 random and mutated datagrams: the proxy keeps answering, memory stays bounded", async () => {
    const { proxy } = await start(answerA);
    const socket = await Bun.udpSocket({ hostname: "0.0.0.0", connect: { hostname: "127.0.0.1", port: proxy.port } });
    running.push(() => socket.close());
    const next = random(3);
    const blast = async (n: number) => {
      for (let i = 0; i < n; i++) {
        socket.send(fuzzPacket(next));
        if (i % 200 === 199) await Bun.sleep(1); // let the proxy read: a full socket buffer would only drop datagrams
      }
    };
    await blast(2000);
    Bun.gc(true);
    const before = process.memoryUsage().rss;
    await blast(20_000);
    Bun.gc(true);
    const growth = process.memoryUsage().rss - before;
    expect((await udpAsk(proxy.port, queryBytes(0x77, "api.example.com", "A"))).rcode).toBe("NOERROR");
    expect((await tcpAsk(proxy.port, queryBytes(0x78, "x.any.example", "A"))).rcode).toBe("NOERROR");
    const { queries } = proxy.stats();
    expect(queries.invalid + queries.dropped).toBeGreaterThan(1000);
    expect(growth).toBeLessThan(64 * 1024 * 1024);
  }, 60_000);

  test("random byte streams over TCP: connections are closed or answered, the proxy keeps answering", async () => {
    const { proxy } = await start(answerA);
    const next = random(4);
    for (let i = 0; i < 50; i++) {
      const closed = Promise.withResolvers<void>();
      const socket = await Bun.connect({
        hostname: "127.0.0.1",
        port: proxy.port,
        socket: { data() {}, close: () => closed.resolve(), error() {} },
      });
      const bytes =
        next() < 0.5
          ? Uint8Array.from({ length: 1 + Math.floor(next() * 3000) }, () => Math.floor(next() * 256))
          : (() => {
              const p = fuzzPacket(next);
              return Uint8Array.from([p.length >> 8, p.length & 255, ...p]);
            })();
      socket.write(bytes);
      socket.end();
      await withTimeout(closed.promise, 5000, "connection not closed");
    }
    expect((await tcpAsk(proxy.port, queryBytes(9, "api.example.com", "A"))).rcode).toBe("NOERROR");
  });

  test("a hostile upstream sending mutated answers: SERVFAIL or its answer, never a crash", async () => {
    const next = random(5);
    const hostile: Responder = (query) => {
      const good = new Uint8Array(
        encode({
          type: "response",
          id: query.id,
          flags: 0x8180,
          questions: query.questions,
          answers: [{ type: "A", name: query.questions?.[0]?.name ?? "", ttl: 30, data: "192.0.2.1" }],
        }),
      );
      for (let j = 0; j < 2; j++) good[2 + Math.floor(next() * (good.length - 2))] = Math.floor(next() * 256);
      return good;
    };
    const { proxy } = await start(hostile, { upstreamTimeoutMs: 50, attempts: 1 });
    const rcodes = new Set<string>();
    for (let i = 0; i < 60; i++) rcodes.add((await udpAsk(proxy.port, queryBytes(i, "api.example.com", "A"))).rcode);
    expect(rcodes.has("SERVFAIL")).toBe(true);
    expect((await udpAsk(proxy.port, queryBytes(1, "c.unlisted.example", "A"))).rcode).toBe("NXDOMAIN");
  }, 20_000);

  test("a TCP client that sends a length and stalls is closed after the idle time", async () => {
    const { proxy } = await start(answerA, { tcpIdleMs: 1000 });
    const closed = Promise.withResolvers<void>();
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port: proxy.port,
      socket: { data() {}, close: () => closed.resolve(), error() {} },
    });
    socket.write(Uint8Array.from([0, 40, 0, 1]));
    await withTimeout(closed.promise, 10_000, "the stalled connection was not closed");
  }, 20_000);

  test("a greedy client holding every TCP connection, and opening a new one whenever one closes, cannot stop another client from getting answers over TCP", async () => {
    // A long idle time, so the deadline is not what frees a slot: only closing the longest idle connection can.
    const { proxy } = await start(answerA, { maxTcpConnections: 4, tcpIdleMs: 60_000 });
    let greedy = true;
    let opened = 0;
    const held = new Set<Socket>();
    const hold = async (): Promise<void> => {
      const socket = await Bun.connect({
        hostname: "127.0.0.1",
        port: proxy.port,
        socket: {
          data() {},
          close(s) {
            held.delete(s);
            if (greedy) setTimeout(() => void hold().catch(() => {}), 5);
          },
          error() {},
        },
      });
      held.add(socket);
      opened++;
    };
    for (let i = 0; i < 4; i++) await hold();
    running.push(() => {
      greedy = false;
      for (const socket of held) socket.end();
    });
    for (let i = 0; i < 5; i++) {
      // Each query comes while the greedy client holds every slot again.
      const retaken = async () => {
        while (held.size < 4) await Bun.sleep(5);
      };
      await withTimeout(retaken(), 5000, "the greedy client did not take its slots back");
      expect((await tcpAsk(proxy.port, queryBytes(10 + i, "api.example.com", "A"))).rcode).toBe("NOERROR");
    }
    // Its connections were closed to make room and it opened new ones.
    expect(opened).toBeGreaterThan(4);
  }, 30_000);

  test("a slow sender trickling a message a byte at a time is closed after the idle time all the same", async () => {
    const { proxy } = await start(answerA, { tcpIdleMs: 1000 });
    const closed = Promise.withResolvers<void>();
    let open = true;
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port: proxy.port,
      socket: {
        data() {},
        close: () => {
          open = false;
          closed.resolve();
        },
        error() {},
      },
    });
    socket.write(Uint8Array.from([0, 200]));
    const trickle = setInterval(() => open && socket.write(Uint8Array.from([0])), 200); // 200 bytes would take 40 s
    running.push(() => clearInterval(trickle));
    await withTimeout(closed.promise, 10_000, "the trickling connection was not closed");
  }, 20_000);

  test("when every connection has a query being answered, a new connection closes the one with the most pending (a pipelining client), and is served", async () => {
    const slow = Promise.withResolvers<void>();
    const { proxy } = await start(
      async (query) =>
        query.questions?.[0]?.name.endsWith("slow.any.example") ? (await slow.promise, answerA(query, "tcp")) : answerA(query, "tcp"),
      {
        maxTcpConnections: 3,
        upstreamTimeoutMs: 20_000,
        attempts: 1,
      },
    );
    // A pipelining client: three slow queries in one write on one connection.
    const pipelined = Promise.withResolvers<void>();
    const frames = [1, 2, 3]
      .map((i) => queryBytes(30 + i, `${i}.slow.any.example`, "A"))
      .flatMap((q) => [q.length >> 8, q.length & 255, ...q]);
    const pipelining = await Bun.connect({
      hostname: "127.0.0.1",
      port: proxy.port,
      socket: { data() {}, close: () => pipelined.resolve(), error() {} },
    });
    pipelining.write(Uint8Array.from(frames));
    const busy = [0, 1].map((i) => tcpAsk(proxy.port, queryBytes(20 + i, "slow.any.example", "A"), "127.0.0.1", 20_000));
    await Bun.sleep(200); // let the queries reach the upstream (not a timing assertion: a head start)
    expect((await tcpAsk(proxy.port, queryBytes(3, "api.example.com", "A"))).rcode).toBe("NOERROR");
    await withTimeout(pipelined.promise, 5000, "the pipelining connection was not closed");
    slow.resolve();
    for (const reply of await Promise.all(busy)) expect(reply.rcode).toBe("NOERROR");
  }, 30_000);

  test("EDNS options a client sends (a tunnel through a listed name) never reach the upstream, over UDP or TCP", async () => {
    const { proxy, upstream } = await start(answerA);
    const secret = Buffer.from("exfiltrated-bytes-0123456789");
    const query = (id: number) =>
      queryBytes(id, "api.example.com", "A", {
        extra: {
          additionals: [
            {
              type: "OPT",
              name: ".",
              udpPayloadSize: 4096,
              flags: 0x8000,
              options: [
                { code: 65001, data: secret },
                { code: 12, data: secret },
              ],
            } as unknown as Answer,
          ],
        },
      });
    expect((await udpAsk(proxy.port, query(1))).rcode).toBe("NOERROR");
    expect((await tcpAsk(proxy.port, query(2))).rcode).toBe("NOERROR");
    expect(upstream.received.map((r) => r.transport)).toEqual(["udp", "tcp"]);
    for (const { packet } of upstream.received) {
      expect(packet.additionals).toMatchObject([{ type: "OPT", udpPayloadSize: 1232, flag_do: true, options: [] }]);
    }
  });

  test("several queries in one TCP write (pipelining) are all answered", async () => {
    const { proxy } = await start(answerA);
    const frames = [1, 2, 3].map((id) => queryBytes(id, "api.example.com", "A")).flatMap((q) => [q.length >> 8, q.length & 255, ...q]);
    let received = Buffer.alloc(0);
    const ids = new Set<number>();
    const done = Promise.withResolvers<void>();
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port: proxy.port,
      socket: {
        data(_s, chunk) {
          received = Buffer.concat([received, chunk]);
          while (received.length >= 2 && received.length >= 2 + received.readUInt16BE(0)) {
            ids.add(received.readUInt16BE(2));
            received = received.subarray(2 + received.readUInt16BE(0));
          }
          if (ids.size === 3) done.resolve();
        },
        error() {},
      },
    });
    running.push(() => socket.end());
    socket.write(Uint8Array.from(frames));
    await withTimeout(done.promise, 5000, "not all answered");
    expect([...ids].sort()).toEqual([1, 2, 3]);
  });

  test("a flood beyond maxInFlight waits in a bounded queue: the flooding socket's oldest queries are dropped, another socket is served next", async () => {
    const held = Promise.withResolvers<void>();
    const { proxy, upstream } = await start(
      async (query) => {
        if (query.questions?.[0]?.name !== "other.any.example") await held.promise;
        return answerA(query, "udp");
      },
      { maxInFlight: 4, maxQueuedPerClient: 8, upstreamTimeoutMs: 10_000 },
    );
    running.unshift(() => held.resolve());
    const socket = await Bun.udpSocket({ hostname: "0.0.0.0", connect: { hostname: "127.0.0.1", port: proxy.port } });
    running.push(() => socket.close());
    for (let i = 0; i < 50; i++) socket.send(queryBytes(i, "api.example.com", "A"));
    // 4 taken reach the upstream, 8 wait, the other 38 are dropped
    await withTimeout(
      (async () => {
        while (proxy.stats().queries.dropped < 38 || upstream.received.length < 4) await Bun.sleep(1);
      })(),
      5000,
      "not dropped",
    );
    expect(upstream.received).toHaveLength(4);
    const other = udpAsk(proxy.port, queryBytes(99, "other.any.example", "A"));
    held.resolve();
    expect((await other).rcode).toBe("NOERROR");
    await withTimeout(
      (async () => {
        while (proxy.stats().queries.forwarded < 13) await Bun.sleep(1);
      })(),
      5000,
      "not forwarded",
    );
    expect(proxy.stats().queries).toMatchObject({ forwarded: 13, dropped: 38 });
  });
});
