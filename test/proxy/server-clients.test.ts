// Clients that leave before their answer: a normal event for a DNS server, counted, never thrown or logged.
import { afterEach, describe, expect, test } from "bun:test";
import type { LogEntry, ProxyLog } from "../../src/proxy/handler.ts";
import { compileMatcher } from "../../src/proxy/match.ts";
import { startDnsProxy, type DnsProxy } from "../../src/proxy/server.ts";
import { describeError, errorOf, isClientGone } from "../../src/proxy/socket-errors.ts";
import { tcpAsk, udpAsk } from "../support/dns-client.ts";
import { queryBytes } from "../support/dns.ts";
import { startFakeDns, type Responder } from "../support/fake-dns.ts";

const running: (() => void)[] = [];
afterEach(() => {
  for (const stop of running.splice(0)) stop();
});

/** Answers after `delayMs`, long enough for the asking socket to be gone. */
const slowA =
  (delayMs: number): Responder =>
  async (query) => {
    await Bun.sleep(delayMs);
    return { answers: [{ type: "A", name: query.questions?.[0]?.name ?? "", ttl: 30, data: "192.0.2.1" }] };
  };

async function start(answer: Responder): Promise<{ proxy: DnsProxy; logs: LogEntry[] }> {
  const upstream = await startFakeDns(answer);
  const compiled = compileMatcher(["api.example.com", "**.any.example"]);
  if (!compiled.ok) throw new Error("bad list");
  const logs: LogEntry[] = [];
  const log: ProxyLog = { info: (e) => logs.push(e), warn: (e) => logs.push(e), error: (e) => logs.push(e) };
  const proxy = await startDnsProxy({
    port: 0,
    upstreams: [{ address: "127.0.0.1", port: upstream.port }],
    match: compiled.match,
    admit: async () => {},
    log,
  });
  running.push(
    () => proxy.stop(),
    () => upstream.stop(),
  );
  return { proxy, logs };
}

const until = async (what: string, condition: () => boolean) => {
  for (let i = 0; i < 500 && !condition(); i++) await Bun.sleep(10);
  if (!condition()) throw new Error(`never: ${what}`);
};

describe("clients that leave", () => {
  test("UDP: replies to 200 sockets closed at once are counted as undelivered, nothing logged, the proxy keeps answering", async () => {
    const { proxy, logs } = await start(slowA(30));
    for (let i = 0; i < 200; i++) {
      const socket = await Bun.udpSocket({ hostname: "127.0.0.1", connect: { hostname: "127.0.0.1", port: proxy.port } });
      socket.send(queryBytes(i, `n${i}.any.example`, "A"));
      socket.close();
    }
    await until("the replies were found undelivered", () => proxy.stats().undelivered > 0);
    expect((await udpAsk(proxy.port, queryBytes(7, "api.example.com", "A"))).rcode).toBe("NOERROR");
    expect((await tcpAsk(proxy.port, queryBytes(8, "api.example.com", "A"))).rcode).toBe("NOERROR");
    expect(logs).toEqual([]);
  }, 30_000);

  test("TCP: connections closed before their answer are counted, nothing logged", async () => {
    const { proxy, logs } = await start(slowA(30));
    for (let i = 0; i < 50; i++) {
      const socket = await Bun.connect({ hostname: "127.0.0.1", port: proxy.port, socket: { data() {}, error() {} } });
      const q = queryBytes(i, `t${i}.any.example`, "A");
      socket.write(Uint8Array.from([q.length >> 8, q.length & 255, ...q]));
      socket.terminate();
    }
    await until("the replies were found undelivered", () => proxy.stats().undelivered >= 50);
    expect((await tcpAsk(proxy.port, queryBytes(8, "api.example.com", "A"))).rcode).toBe("NOERROR");
    expect(logs).toEqual([]);
  }, 30_000);
});

describe("socket errors", () => {
  const refused = Object.assign(new Error("ECONNREFUSED: connection refused, recv"), { code: "ECONNREFUSED" });
  test.each([
    { name: "Bun's UDP handler: the error alone", args: [refused], gone: true },
    { name: "the typed signature: (socket, error)", args: [{}, refused], gone: true },
    { name: "a code only in the message", args: [new Error("EPIPE: broken pipe, write")], gone: true },
    { name: "a reset", args: [Object.assign(new Error("reset"), { code: "ECONNRESET" })], gone: true },
    { name: "another error", args: [new Error("EMFILE: too many open files")], gone: false },
    { name: "nothing at all", args: [], gone: false },
  ])("$name", ({ args, gone }) => {
    expect(isClientGone(errorOf(args))).toBe(gone);
  });

  test("a description is one bounded line, never a stack", () => {
    const error = new Error(`first line\n${"x".repeat(1000)}`);
    const text = describeError(error);
    expect(text).not.toContain("\n");
    expect(text.length).toBeLessThanOrEqual(200);
    expect(describeError(undefined)).toBe("undefined");
    expect(describeError({ toString: () => ({}) as string })).toBe("unknown error");
  });
});
