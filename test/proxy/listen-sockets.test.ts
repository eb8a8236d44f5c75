import { afterEach, expect, test } from "bun:test";
import { openLibc } from "../../src/libc.ts";
import { compileMatcher } from "../../src/proxy/match.ts";
import { inheritedLayout, openListenSockets, parseInherited, renderInherited } from "../../src/proxy/listen-sockets.ts";
import { startDnsProxy } from "../../src/proxy/server.ts";
import { tcpAsk, udpAsk } from "../support/dns-client.ts";
import { queryBytes } from "../support/dns.ts";
import { startFakeDns } from "../support/fake-dns.ts";

const running: (() => void)[] = [];
afterEach(() => {
  for (const stop of running.splice(0)) stop();
});

test("sockets made through libc are adopted by the proxy (Bun.udpSocket and Bun.listen with fd) and answer over UDP and TCP on both addresses", async () => {
  const { port, sockets } = openListenSockets(["127.0.0.1", "::1"], 0);
  running.push(() => {
    for (const s of sockets) for (const fd of [s.udp, s.tcp]) openLibc().close(fd);
  });
  expect(port).toBeGreaterThan(0);
  const upstream = await startFakeDns((q) => ({
    answers: [{ type: "A", name: q.questions?.[0]?.name ?? "", ttl: 30, data: "192.0.2.1" }],
  }));
  const compiled = compileMatcher(["api.example.com"]);
  if (!compiled.ok) throw new Error("list");
  const proxy = await startDnsProxy({
    port,
    inherited: sockets,
    upstreams: [{ address: "127.0.0.1", port: upstream.port }],
    match: compiled.match,
    admit: async () => {},
    log: { info() {}, warn() {}, error() {} },
  });
  running.push(
    () => proxy.stop(),
    () => upstream.stop(),
  );
  expect(proxy.port).toBe(port);
  for (const host of ["127.0.0.1", "::1"]) {
    expect((await udpAsk(port, queryBytes(1, "api.example.com", "A"), host)).rcode).toBe("NOERROR");
    expect((await tcpAsk(port, queryBytes(2, "api.example.com", "A"), host)).rcode).toBe("NOERROR");
  }
});

test("a port in use is an error naming it; nothing stays open", () => {
  const first = openListenSockets(["127.0.0.1"], 0);
  running.push(() => {
    for (const s of first.sockets) for (const fd of [s.udp, s.tcp]) openLibc().close(fd);
  });
  expect(() => openListenSockets(["127.0.0.1"], first.port)).toThrow(`cannot bind UDP 127.0.0.1 port ${first.port}`);
});

test.each([
  { name: "two addresses", text: "127.0.0.1=3/4,::1=5/6", ok: true },
  { name: "one", text: "::1=3/4", ok: true },
  { name: "not loopback", text: "192.0.2.1=3/4", ok: false },
  { name: "no descriptors", text: "127.0.0.1=", ok: false },
  { name: "empty", text: "", ok: false },
])("the inherited sockets' environment value: $name", ({ text, ok }) => {
  const parsed = parseInherited(text);
  expect(parsed !== undefined).toBe(ok);
  if (parsed !== undefined) expect(renderInherited(parsed)).toBe(text);
});

test("a worker finds them from descriptor 3 on", () => {
  expect(
    inheritedLayout([
      { hostname: "127.0.0.1", udp: 17, tcp: 18 },
      { hostname: "::1", udp: 21, tcp: 22 },
    ]),
  ).toEqual([
    { hostname: "127.0.0.1", udp: 3, tcp: 4 },
    { hostname: "::1", udp: 5, tcp: 6 },
  ]);
});
