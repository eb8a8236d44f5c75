import { afterEach, describe, expect, test } from "bun:test";
import type { Answer, OptAnswer } from "dns-packet";
import { AUDIT_ENTRY, type Admission, type LogEntry, type ProxyLog } from "../../src/proxy/handler.ts";
import { compileMatcher } from "../../src/proxy/match.ts";
import { startDnsProxy, type DnsProxy, type ProxyOptions } from "../../src/proxy/server.ts";
import { tcpAsk, udpAsk, withTimeout } from "../support/dns-client.ts";
import { queryBytes, svcbRdata, svcbRecord } from "../support/dns.ts";
import { startFakeDns, type FakeDns, type Responder } from "../support/fake-dns.ts";

const LIST = ["api.example.com", "*.one.example", "**.any.example", "cdn.example.com"];

/** The lab's answers: each listed name has a fixed address; cdn.example.com is a CNAME to an unlisted name. */
const records: Responder = (query) => {
  const q = query.questions?.[0];
  const name = q?.name.toLowerCase() ?? "";
  if (name === "cdn.example.com" && q?.type === "A") {
    return {
      answers: [
        { type: "CNAME", name: q.name, ttl: 300, data: "edge.cdn.example.net" },
        { type: "A", name: "edge.cdn.example.net", ttl: 20, data: "203.0.113.20" },
      ],
    };
  }
  if (q?.type === "A")
    return {
      answers: [
        { type: "A", name: q.name, ttl: 30, data: "192.0.2.1" },
        { type: "A", name: "unrelated.example", ttl: 30, data: "198.51.100.66" },
      ],
    };
  if (q?.type === "AAAA") return { answers: [{ type: "AAAA", name: q.name, ttl: 60, data: "2001:db8::1" }] };
  if (q !== undefined && (q.type as string) === "UNKNOWN_65")
    return { answers: [svcbRecord("HTTPS", q.name, 40, svcbRdata(1, ".", { v4: ["192.0.2.40"], v6: ["2001:db8::40"] }))] };
  if (q?.type === "TXT") return { answers: [{ type: "TXT", name: q.name, ttl: 30, data: "hello" }] };
  return {};
};

interface Harness {
  proxy: DnsProxy;
  upstream: FakeDns;
  admitted: Admission[];
  logs: { level: string; entry: LogEntry }[];
}

const running: (() => void)[] = [];
afterEach(() => {
  for (const stop of running.splice(0)) stop();
});

function recordingLog(logs: Harness["logs"]): ProxyLog {
  return {
    info: (entry) => logs.push({ level: "info", entry }),
    warn: (entry) => logs.push({ level: "warn", entry }),
    error: (entry) => logs.push({ level: "error", entry }),
  };
}

async function harness(
  options: { answer?: Responder; admit?: (a: Admission) => Promise<void>; extra?: Partial<ProxyOptions>; upstreams?: FakeDns[] } = {},
): Promise<Harness> {
  const upstream = await startFakeDns(options.answer ?? records);
  running.push(() => upstream.stop());
  const admitted: Admission[] = [];
  const logs: Harness["logs"] = [];
  const compiled = compileMatcher(LIST);
  if (!compiled.ok) throw new Error(compiled.problems.join());
  const proxy = await startDnsProxy({
    port: 0,
    upstreams: (options.upstreams ?? [upstream]).map((u) => ({ address: u.hostname, port: u.port })),
    match: compiled.match,
    admit: options.admit ?? (async (a) => void admitted.push(a)),
    log: recordingLog(logs),
    ...options.extra,
  });
  running.push(() => proxy.stop());
  return { proxy, upstream, admitted, logs };
}

const addressesOf = (admission: Admission | undefined) => admission?.addresses.map((a) => `${a.address} ${a.ttl}`);

describe("DNS proxy", () => {
  test("a listed name is forwarded under another id; its own addresses are admitted; the client gets the answer under its id", async () => {
    const { proxy, upstream, admitted } = await harness();
    const reply = await udpAsk(proxy.port, queryBytes(0x1111, "api.example.com", "A"));
    expect(reply).toMatchObject({ id: 0x1111, rcode: "NOERROR", flag_rd: true });
    expect(reply.answers?.map((a) => (a as { data: string }).data)).toEqual(["192.0.2.1", "198.51.100.66"]);
    expect(upstream.received).toHaveLength(1);
    expect(upstream.received[0]?.packet.questions).toEqual([{ name: "api.example.com", type: "A", class: "IN" }]);
    expect(admitted).toHaveLength(1);
    expect(admitted[0]).toMatchObject({ name: "api.example.com", qtype: "A", entry: "api.example.com", chain: ["api.example.com"] });
    expect(addressesOf(admitted[0])).toEqual(["192.0.2.1 30"]);
    expect(proxy.stats().queries.forwarded).toBe(1);
    expect(proxy.stats().admission.count).toBe(1);
  });

  test("the upstream sees a fresh id, not the client's", async () => {
    const { proxy, upstream } = await harness();
    const ids = new Set<number>();
    for (let i = 0; i < 8; i++) {
      await udpAsk(proxy.port, queryBytes(0x2222, "api.example.com", "A"));
      ids.add(upstream.received.at(-1)?.packet.id ?? -1);
    }
    expect(ids.has(0x2222) && ids.size === 1).toBe(false);
    expect(ids.size).toBeGreaterThan(1);
  });

  test("an unlisted name gets NXDOMAIN, never reaches the upstream, is logged with name and qtype and counted", async () => {
    const { proxy, upstream, admitted, logs } = await harness();
    const reply = await udpAsk(proxy.port, queryBytes(0x3333, "c2VjcmV0.exfil.example", "A"));
    expect(reply).toMatchObject({ id: 0x3333, rcode: "NXDOMAIN", answers: [] });
    expect(reply.questions).toEqual([{ name: "c2VjcmV0.exfil.example", type: "A", class: "IN" }]);
    await udpAsk(proxy.port, queryBytes(1, "C2VJCMV0.exfil.example", "AAAA"));
    expect(upstream.received).toEqual([]);
    expect(admitted).toEqual([]);
    expect(logs[0]).toMatchObject({ level: "info", entry: { name: "c2vjcmv0.exfil.example", qtype: "A" } });
    expect(proxy.stats().queries.refused).toBe(2);
    expect([...proxy.stats().refusedNames]).toEqual([["c2vjcmv0.exfil.example", { count: 2, qtype: "AAAA" }]]);
  });

  test("audit mode: an unlisted name is forwarded and its addresses admitted (so the app connects), and recorded as would-be-refused", async () => {
    let audit = true;
    const { proxy, upstream, admitted, logs } = await harness({ extra: { audit: () => audit } });
    const reply = await udpAsk(proxy.port, queryBytes(0x4444, "unlisted.example", "A"));
    expect(reply).toMatchObject({ id: 0x4444, rcode: "NOERROR" });
    expect(upstream.received).toHaveLength(1);
    expect(admitted[0]).toMatchObject({ name: "unlisted.example", qtype: "A", entry: AUDIT_ENTRY });
    expect(addressesOf(admitted[0])).toEqual(["192.0.2.1 30"]);
    expect(proxy.stats().queries).toMatchObject({ audited: 1, refused: 0, forwarded: 0 });
    expect([...proxy.stats().refusedNames]).toEqual([["unlisted.example", { count: 1, qtype: "A" }]]);
    expect(logs[0]).toMatchObject({
      level: "info",
      entry: {
        message: "would refuse unlisted.example A (audit mode): forwarded, its addresses admitted",
        name: "unlisted.example",
        qtype: "A",
      },
    });
    audit = false;
    expect(await udpAsk(proxy.port, queryBytes(0x4445, "unlisted.example", "A"))).toMatchObject({ rcode: "NXDOMAIN" });
    expect(upstream.received).toHaveLength(1);
  });

  test("a name under .invalid (the self-check's) gets NXDOMAIN, even in audit mode, and is not listed among the refused names", async () => {
    const { proxy, upstream } = await harness({ extra: { audit: () => true } });
    expect(await udpAsk(proxy.port, queryBytes(0x4446, "domainwall-self-check.invalid", "A"))).toMatchObject({ rcode: "NXDOMAIN" });
    expect(upstream.received).toEqual([]);
    expect(proxy.stats().queries.refused).toBe(1);
    expect([...proxy.stats().refusedNames]).toEqual([]);
  });

  test.each([
    { query: "a.one.example", listed: true },
    { query: "a.b.one.example", listed: false },
    { query: "one.example", listed: false },
    { query: "a.any.example", listed: true },
    { query: "a.b.any.example", listed: true },
    { query: "any.example", listed: false },
  ])("wildcards: $query listed $listed", async ({ query, listed }) => {
    const { proxy, upstream } = await harness();
    const reply = await udpAsk(proxy.port, queryBytes(5, query, "A"));
    expect(reply.rcode).toBe(listed ? "NOERROR" : "NXDOMAIN");
    expect(upstream.received.length).toBe(listed ? 1 : 0);
  });

  test("a name with a dot inside a label is not listed, whatever it reads like", async () => {
    const { proxy, upstream } = await harness();
    // one label "a.b" under any.example: dns-packet would read it as a.b.any.example
    const bytes = Uint8Array.from([
      0,
      9,
      1,
      0,
      0,
      1,
      0,
      0,
      0,
      0,
      0,
      0,
      3,
      97,
      46,
      98,
      3,
      ...Buffer.from("one"),
      7,
      ...Buffer.from("example"),
      0,
      0,
      1,
      0,
      1,
    ]);
    expect((await udpAsk(proxy.port, bytes)).rcode).toBe("NXDOMAIN");
    expect(upstream.received).toEqual([]);
  });

  test("a CNAME to an unlisted name is admitted through the chain", async () => {
    const { proxy, admitted } = await harness();
    await udpAsk(proxy.port, queryBytes(6, "cdn.example.com", "A"));
    expect(admitted[0]?.chain).toEqual(["cdn.example.com", "edge.cdn.example.net"]);
    expect(addressesOf(admitted[0])).toEqual(["203.0.113.20 20"]);
  });

  test("AAAA over ::1 and HTTPS hints are admitted", async () => {
    const { proxy, admitted } = await harness();
    expect((await udpAsk(proxy.port, queryBytes(7, "api.example.com", "AAAA"), "::1")).rcode).toBe("NOERROR");
    expect((await udpAsk(proxy.port, queryBytes(8, "api.example.com", "HTTPS"))).rcode).toBe("NOERROR");
    expect(admitted.map((a) => [a.qtype, addressesOf(a)])).toEqual([
      ["AAAA", ["2001:db8::1 60"]],
      ["HTTPS", ["192.0.2.40 40", "2001:db8::40 40"]],
    ]);
  });

  test("other query types of listed names pass through without admission", async () => {
    const { proxy, admitted, upstream } = await harness();
    const reply = await udpAsk(proxy.port, queryBytes(9, "api.example.com", "TXT"));
    expect(reply.rcode).toBe("NOERROR");
    expect(reply.answers).toHaveLength(1);
    expect(upstream.received).toHaveLength(1);
    expect(admitted).toEqual([]);
  });

  test.each([
    { hostname: "127.0.0.1", name: "api.example.com" },
    { hostname: "::1", name: "a.b.any.example" },
  ])("TCP on $hostname: forwarded over TCP, admitted", async ({ hostname, name }) => {
    const { proxy, upstream, admitted } = await harness();
    const reply = await tcpAsk(proxy.port, queryBytes(10, name, "A"), hostname);
    expect(reply).toMatchObject({ id: 10, rcode: "NOERROR" });
    expect(upstream.received.map((r) => r.transport)).toEqual(["tcp"]);
    expect(addressesOf(admitted[0])).toEqual(["192.0.2.1 30"]);
  });

  test("a truncated UDP answer passes with TC set and admits nothing; the TCP retry is admitted", async () => {
    const answer: Responder = (query, transport) => {
      const q = query.questions?.[0];
      return transport === "udp" ? { flags: 0x8380 } : { answers: [{ type: "A", name: q?.name ?? "", ttl: 30, data: "192.0.2.7" }] };
    };
    const { proxy, admitted } = await harness({ answer });
    const udp = await udpAsk(proxy.port, queryBytes(11, "api.example.com", "A"));
    expect(udp).toMatchObject({ id: 11, flag_tc: true, answers: [] });
    expect(admitted).toEqual([]);
    const tcp = await tcpAsk(proxy.port, queryBytes(11, "api.example.com", "A"));
    expect(tcp.flag_tc).toBe(false);
    expect(addressesOf(admitted[0])).toEqual(["192.0.2.7 30"]);
  });

  test("EDNS0 passes both ways: the upstream gets the client's OPT, the client gets the upstream's", async () => {
    const answer: Responder = (query) => ({
      answers: [{ type: "A", name: query.questions?.[0]?.name ?? "", ttl: 30, data: "192.0.2.1" }],
      additionals: [
        {
          type: "OPT",
          name: ".",
          udpPayloadSize: 1400,
          flags: 0x8000,
          options: [{ code: 10, data: Buffer.from("0011223344556677", "hex") }],
        } as unknown as Answer,
      ],
    });
    const { proxy, upstream } = await harness({ answer });
    const reply = await udpAsk(proxy.port, queryBytes(0xfeed, "api.example.com", "A", { edns: true }));
    const sent = upstream.received[0]?.packet.additionals?.[0] as OptAnswer | undefined;
    expect(sent).toMatchObject({ type: "OPT", udpPayloadSize: 1232, flag_do: true });
    expect(reply.id).toBe(0xfeed);
    expect(reply.additionals?.[0]).toMatchObject({ type: "OPT", udpPayloadSize: 1400, options: [{ code: 10 }] });
  });

  test("when admit rejects, the client gets SERVFAIL and the failure is logged", async () => {
    const { proxy, logs } = await harness({ admit: () => Promise.reject(new Error("nft: set is full")) });
    const reply = await udpAsk(proxy.port, queryBytes(12, "api.example.com", "A", { edns: true }));
    expect(reply).toMatchObject({ id: 12, rcode: "SERVFAIL", answers: [] });
    expect(reply.questions?.[0]?.name).toBe("api.example.com");
    expect(logs.find((l) => l.level === "error")?.entry).toMatchObject({ name: "api.example.com", qtype: "A" });
    expect(logs.find((l) => l.level === "error")?.entry.message).toContain("nft: set is full");
    expect(proxy.stats().queries).toMatchObject({ failed: 1, forwarded: 0 });
  });

  test("the answer is sent only after admit has finished", async () => {
    const events: string[] = [];
    let release: () => void = () => {};
    let called: () => void = () => {};
    const admitCalled = new Promise<void>((resolve) => (called = resolve));
    const admit = async () => {
      events.push("admit called");
      called();
      await new Promise<void>((resolve) => (release = resolve));
      events.push("admit done");
    };
    const { proxy } = await harness({ admit });
    const socket = await Bun.udpSocket({
      connect: { hostname: "127.0.0.1", port: proxy.port },
      hostname: "0.0.0.0",
      socket: { data: (_s, data) => void events.push(`reply ${data.readUInt16BE(0)}`) },
    });
    running.push(() => socket.close());
    const replies = (n: number) =>
      withTimeout(
        until(() => events.filter((e) => e.startsWith("reply")).length >= n),
        5000,
        "replies",
      );
    socket.send(queryBytes(1, "api.example.com", "A"));
    await withTimeout(admitCalled, 5000, "admit");
    // The proxy answers a later query (unlisted: at once) while admit holds the first one's answer.
    // Both replies leave one socket for one client over loopback, in the order the proxy sends them.
    socket.send(queryBytes(2, "not.listed.example", "A"));
    await replies(1);
    release();
    await replies(2);
    expect(events).toEqual(["admit called", "reply 2", "admit done", "reply 1"]);
  });

  test("a silent upstream: the next one is tried; when none answers, SERVFAIL", async () => {
    const silent = await startFakeDns(() => "silent");
    running.push(() => silent.stop());
    const good = await startFakeDns(records);
    running.push(() => good.stop());
    const { proxy } = await harness({ upstreams: [silent, good], extra: { limits: { upstreamTimeoutMs: 100 } } });
    expect((await udpAsk(proxy.port, queryBytes(13, "api.example.com", "A"))).rcode).toBe("NOERROR");
    expect(silent.received).toHaveLength(1);
    expect(proxy.stats().upstreamErrors).toBe(1);

    // Nothing answers here: a short wait per attempt is enough.
    const { proxy: alone, logs } = await harness({ upstreams: [silent], extra: { limits: { upstreamTimeoutMs: 25, attempts: 3 } } });
    expect((await udpAsk(alone.port, queryBytes(14, "api.example.com", "A"))).rcode).toBe("SERVFAIL");
    expect(silent.received).toHaveLength(4);
    expect(logs.find((l) => l.level === "warn")?.entry.message).toContain("no upstream answered");
  });

  test("an IPv6 upstream, over UDP and TCP", async () => {
    const v6 = await startFakeDns(records, "::1");
    running.push(() => v6.stop());
    const { proxy, admitted } = await harness({ upstreams: [v6] });
    expect((await udpAsk(proxy.port, queryBytes(16, "api.example.com", "A"))).rcode).toBe("NOERROR");
    expect((await tcpAsk(proxy.port, queryBytes(17, "api.example.com", "AAAA"))).rcode).toBe("NOERROR");
    expect(v6.received.map((r) => r.transport)).toEqual(["udp", "tcp"]);
    expect(admitted).toHaveLength(2);
  });

  test("an answer that does not match the query is not taken", async () => {
    const answer: Responder = (query) => ({
      id: ((query.id ?? 0) + 1) & 0xffff,
      answers: [{ type: "A", name: "api.example.com", ttl: 30, data: "198.51.100.66" }],
    });
    const { proxy, admitted } = await harness({ answer, extra: { limits: { upstreamTimeoutMs: 100, attempts: 1 } } });
    expect((await udpAsk(proxy.port, queryBytes(15, "api.example.com", "A"))).rcode).toBe("SERVFAIL");
    expect(admitted).toEqual([]);
  });

  test("refused names are logged at most logsPerInterval times per interval, then say how many were held back", async () => {
    let clock = 0;
    const { proxy, logs } = await harness({ extra: { now: () => clock, limits: { logsPerInterval: 2, logIntervalMs: 1000 } } });
    for (let i = 0; i < 5; i++) await udpAsk(proxy.port, queryBytes(i, `n${i}.unlisted.example`, "A"));
    clock = 1000;
    await udpAsk(proxy.port, queryBytes(9, "last.unlisted.example", "A"));
    expect(logs.map((l) => l.entry.name)).toEqual(["n0.unlisted.example", "n1.unlisted.example", "last.unlisted.example"]);
    expect(logs[2]?.entry.message).toContain("3 similar lines held back");
    expect(proxy.stats().queries.refused).toBe(6);
  });

  test("refused names are counted one by one up to maxRefusedNames", async () => {
    const { proxy } = await harness({ extra: { limits: { maxRefusedNames: 2 } } });
    for (const name of ["a.x.example", "b.x.example", "c.x.example", "a.x.example"]) await udpAsk(proxy.port, queryBytes(1, name, "A"));
    expect([...proxy.stats().refusedNames.keys()]).toEqual(["a.x.example", "b.x.example"]);
    expect(proxy.stats().refusedOther).toBe(1);
  });
});

/** Resolves once `condition` holds, checking after each turn of the event loop. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await Bun.sleep(1);
}
