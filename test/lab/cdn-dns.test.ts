import { afterEach, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import type { Answer } from "dns-packet";
import { svcbHints } from "../../src/proxy/svcb.ts";
import { tcpAsk, udpAsk } from "../support/dns-client.ts";
import { queryBytes } from "../support/dns.ts";
import type { FakeDns } from "../support/fake-dns.ts";
import { tempDirs } from "../support/temp-dirs.ts";
import { POOL_V4, POOL_V6, startCdnDns, type CdnConfig } from "./cdn-dns.ts";

const tempDir = tempDirs();
const config: CdnConfig = {
  names: ["cdn.example.com", "edge.cdn.example.net"],
  cnames: { "alias.example.com": "edge.cdn.example.net" },
  https: { "svc.example.com": { v4: ["192.0.2.80"], v6: ["2001:db8::80"] } },
};
let server: FakeDns | undefined;
afterEach(() => server?.stop());

async function start() {
  const log = `${tempDir("cdn-dns-")}/queries.log`;
  writeFileSync(log, "");
  server = await startCdnDns({ hostname: "127.0.0.1", port: 0, config, log });
  return { port: server.port, log };
}
const data = (answers: Answer[] | undefined) =>
  (answers ?? []).map((a) =>
    `${a.type} ${a.name} ${(a as { ttl?: number }).ttl} ${typeof (a as { data: unknown }).data === "string" ? (a as { data: string }).data : ""}`.trim(),
  );

test("A: 2 different addresses out of the 100, TTL 30, changing between queries", async () => {
  const { port } = await start();
  const seen = new Set<string>();
  for (let i = 0; i < 30; i++) {
    const reply = await udpAsk(port, queryBytes(i, "cdn.example.com", "A"));
    const addresses = (reply.answers ?? []).map((a) => (a as { data: string }).data);
    expect(addresses).toHaveLength(2);
    expect(new Set(addresses).size).toBe(2);
    for (const a of addresses) expect(POOL_V4).toContain(a);
    expect(reply.answers?.every((a) => (a as { ttl: number }).ttl === 30)).toBe(true);
    addresses.forEach((a) => seen.add(a));
  }
  expect(seen.size).toBeGreaterThan(2);
});

test("AAAA out of 2001:db8:ff::/64, also over TCP", async () => {
  const { port } = await start();
  const reply = await tcpAsk(port, queryBytes(1, "cdn.example.com", "AAAA"));
  for (const a of reply.answers ?? []) expect(POOL_V6).toContain((a as { data: string }).data);
  expect(reply.answers).toHaveLength(2);
});

test("other types: NODATA with an SOA; unknown names: NXDOMAIN with an SOA", async () => {
  const { port } = await start();
  const nodata = await udpAsk(port, queryBytes(1, "cdn.example.com", "TXT"));
  expect(nodata).toMatchObject({ rcode: "NOERROR", answers: [] });
  expect(nodata.authorities?.map((a) => a.type)).toEqual(["SOA"]);
  const nx = await udpAsk(port, queryBytes(2, "nope.example.com", "A"));
  expect(nx).toMatchObject({ rcode: "NXDOMAIN", answers: [] });
  expect(nx.authorities?.map((a) => a.type)).toEqual(["SOA"]);
});

test("a CNAME to a CDN name: the chain, then the target's addresses", async () => {
  const { port } = await start();
  const reply = await udpAsk(port, queryBytes(1, "alias.example.com", "A"));
  expect(data(reply.answers).slice(0, 1)).toEqual(["CNAME alias.example.com 30 edge.cdn.example.net"]);
  expect(reply.answers?.slice(1).map((a) => a.name)).toEqual(["edge.cdn.example.net", "edge.cdn.example.net"]);
});

test("an HTTPS record with the configured hints", async () => {
  const { port } = await start();
  const reply = await udpAsk(port, queryBytes(1, "svc.example.com", "HTTPS"));
  const record = reply.answers?.[0] as { type: string; data: Buffer } | undefined;
  expect(record?.type).toBe("UNKNOWN_65");
  expect(svcbHints(record?.data ?? new Uint8Array())).toEqual({ v4: ["192.0.2.80"], v6: ["2001:db8:0:0:0:0:0:80"] });
});

test("every query name is logged", async () => {
  const { port, log } = await start();
  await udpAsk(port, queryBytes(1, "cdn.example.com", "A"));
  await udpAsk(port, queryBytes(2, "nope.example.com", "AAAA"));
  await udpAsk(port, queryBytes(3, "svc.example.com", "HTTPS"));
  expect(readFileSync(log, "utf8")).toBe("cdn.example.com A\nnope.example.com AAAA\nsvc.example.com HTTPS\n");
});
