import { describe, expect, test } from "bun:test";
import { encode, type Answer } from "dns-packet";
import { candidates, resolvConfView, wireLookup } from "../../src/dns/wire-lookup.ts";
import { readAnswer, type Query } from "../../src/proxy/message.ts";
import type { Exchange, ExchangeFn, Transport, Upstream } from "../../src/proxy/upstream.ts";

const POD =
  "search ns.svc.cluster.local svc.cluster.local cluster.local\nnameserver 198.51.100.2\nnameserver 2001:db8:1::2\noptions ndots:5\n";

describe("resolvConfView and candidates: the names asked, in the resolver library's order", () => {
  test.each([
    {
      host: "api.example",
      conf: POD,
      names: ["api.example.ns.svc.cluster.local", "api.example.svc.cluster.local", "api.example.cluster.local", "api.example"],
    },
    {
      host: "a.b.c.d.e.example",
      conf: POD,
      names: [
        "a.b.c.d.e.example",
        "a.b.c.d.e.example.ns.svc.cluster.local",
        "a.b.c.d.e.example.svc.cluster.local",
        "a.b.c.d.e.example.cluster.local",
      ],
    },
    { host: "api.example.", conf: POD, names: ["api.example"] },
    { host: "api.example", conf: "nameserver 192.0.2.53\n", names: ["api.example"] },
    { host: "db", conf: "domain corp.example\nnameserver 192.0.2.53\n", names: ["db.corp.example", "db"] },
  ])("$host", ({ host, conf, names }) => {
    expect(candidates(host, resolvConfView(conf))).toEqual([...names]);
  });

  test("servers from the nameserver lines", () => {
    expect(resolvConfView(POD).servers).toEqual([
      { address: "198.51.100.2", port: 53 },
      { address: "2001:db8:1::2", port: 53 },
    ]);
  });
});

/** A fake resolver: answers per (server, name, type), recording each question. */
function fakeExchange(
  answer: (server: string, name: string, type: string) => { rcode: number; answers?: Answer[]; tc?: boolean } | "timeout",
) {
  const asked: string[] = [];
  const exchange: ExchangeFn = async (query: Query, upstream: Upstream, transport: Transport): Promise<Exchange> => {
    const type = query.type === 1 ? "A" : "AAAA";
    asked.push(`${upstream.address} ${transport} ${query.name} ${type}`);
    const reply = answer(upstream.address, query.name, type);
    if (reply === "timeout") return { ok: false, error: "no answer in 1000 ms" };
    const flags = 0x8180 | reply.rcode | (reply.tc && transport === "udp" ? 0x0200 : 0);
    const bytes = new Uint8Array(
      encode({
        type: "response",
        id: 7,
        flags,
        questions: [{ type: type as "A", name: query.name, class: "IN" }],
        answers: reply.answers ?? [],
      }),
    );
    const checked = readAnswer(query, 7, bytes);
    if (!checked.ok) throw new Error(checked.reason);
    return { ok: true, bytes, answer: checked };
  };
  return { exchange, asked };
}

const conf = (text: string) => async () => text;

describe("wireLookup", () => {
  test("only the chain's addresses: a stray record for another name in the same answer is left out", async () => {
    const { exchange } = fakeExchange((_s, name) =>
      name === "stray.example"
        ? {
            rcode: 0,
            answers: [
              { type: "CNAME", name: "stray.example", ttl: 60, data: "target.example" },
              { type: "A", name: "target.example", ttl: 30, data: "203.0.113.1" },
              { type: "A", name: "other.unlisted.example", ttl: 30, data: "203.0.113.250" },
            ],
          }
        : { rcode: 3 },
    );
    const lookup = wireLookup({ exchange, readResolvConf: conf("nameserver 192.0.2.53\n") });
    expect(await lookup("stray.example", 4)).toEqual([{ address: "203.0.113.1", ttl: 30 }]);
  });

  test("NXDOMAIN and NODATA move to the next search name; the first with addresses wins", async () => {
    const { exchange, asked } = fakeExchange((_s, name) =>
      name === "api.example.svc.cluster.local"
        ? { rcode: 0 } // NODATA
        : name === "api.example"
          ? { rcode: 0, answers: [{ type: "A", name: "api.example", ttl: 5, data: "203.0.113.10" }] }
          : { rcode: 3 },
    );
    const lookup = wireLookup({ exchange, readResolvConf: conf(POD) });
    expect(await lookup("api.example", 4)).toEqual([{ address: "203.0.113.10", ttl: 5 }]);
    expect(asked).toEqual([
      "198.51.100.2 udp api.example.ns.svc.cluster.local A",
      "198.51.100.2 udp api.example.svc.cluster.local A",
      "198.51.100.2 udp api.example.cluster.local A",
      "198.51.100.2 udp api.example A",
    ]);
  });

  test("a silent or failing server: the next one is asked; a truncated answer is asked again over TCP", async () => {
    const { exchange, asked } = fakeExchange((server) =>
      server === "192.0.2.53"
        ? "timeout"
        : { rcode: 0, tc: true, answers: [{ type: "AAAA", name: "api.example", ttl: 9, data: "2001:db8::10" }] },
    );
    const lookup = wireLookup({ exchange, readResolvConf: conf("nameserver 192.0.2.53\nnameserver 192.0.2.54\n") });
    expect(await lookup("api.example", 6)).toEqual([{ address: "2001:db8::10", ttl: 9 }]);
    expect(asked).toEqual(["192.0.2.53 udp api.example AAAA", "192.0.2.54 udp api.example AAAA", "192.0.2.54 tcp api.example AAAA"]);
  });

  test.each([
    { name: "NXDOMAIN everywhere", reply: { rcode: 3 } as const, code: "DNS_ENOTFOUND" },
    { name: "SERVFAIL", reply: { rcode: 2 } as const, code: "DNS_ESERVFAIL" },
    { name: "REFUSED", reply: { rcode: 5 } as const, code: "DNS_EREFUSED" },
    { name: "no answer", reply: "timeout" as const, code: "DNS_ETIMEOUT" },
  ])("$name: rejects with $code", async ({ reply, code }) => {
    const { exchange } = fakeExchange(() => reply);
    const lookup = wireLookup({ exchange, readResolvConf: conf("nameserver 192.0.2.53\n") });
    expect(lookup("api.example", 4)).rejects.toMatchObject({ code });
  });
});
