import { describe, expect, test } from "bun:test";
import { decode, encode, type OptAnswer } from "dns-packet";
import { createHandler, type LogEntry } from "../../src/proxy/handler.ts";
import { createStats, rateLimiter } from "../../src/proxy/stats.ts";
import { keyedLimiter } from "../../src/proxy/name-limiter.ts";
import { queryBytes } from "../support/dns.ts";

/** A handler with api.example listed, an upstream that answers 203.0.113.10, and `admit` as given. */
function harness(admit: () => Promise<void> = async () => {}) {
  let clock = 0;
  const logs: LogEntry[] = [];
  const log = {
    info: (e: LogEntry) => void logs.push(e),
    warn: (e: LogEntry) => void logs.push(e),
    error: (e: LogEntry) => void logs.push(e),
  };
  const handle = createHandler({
    match: (name) => (name.toLowerCase() === "api.example" ? "api.example" : undefined),
    admit,
    exchange: async (query) => ({
      ok: true,
      bytes: new Uint8Array(
        encode({
          type: "response",
          id: 1,
          flags: 0x8180,
          questions: [{ type: "A", name: query.name }],
          answers: [{ type: "A", name: query.name, ttl: 30, data: "203.0.113.10" }],
        }),
      ),
      answer: { ok: true, rcode: 0, truncated: false, records: [{ type: "A", name: query.name, ttl: 30, data: "203.0.113.10" }] },
    }),
    upstreams: [{ address: "198.51.100.2", port: 53 }],
    timeoutMs: 100,
    attempts: 1,
    log,
    now: () => clock,
    stats: createStats(100),
    mayLog: rateLimiter(10, 10_000, () => clock),
  });
  const ask = async (name: string, edns = true) =>
    decode(Buffer.from((await handle(queryBytes(1, name, "A", { edns }), "udp")) ?? new Uint8Array())) as ReturnType<typeof decode> & {
      rcode?: string;
    };
  return { ask, logs, tick: (ms: number) => void (clock += ms) };
}

const edeOf = (reply: ReturnType<typeof decode>) =>
  ((reply.additionals?.[0] as OptAnswer | undefined)?.options ?? []).map((o) => {
    const data = (o as unknown as { data: Buffer }).data;
    return { code: o.code as number, info: data.readUInt16BE(0), text: data.subarray(2).toString("utf8") };
  });

describe("the proxy's refused names", () => {
  test("an unlisted name's NXDOMAIN carries EDE 15 (Blocked) with domainwall's text when the client sent EDNS, and none without", async () => {
    const { ask } = harness();
    const reply = await ask("unlisted.example");
    expect(reply.rcode).toBe("NXDOMAIN");
    expect(edeOf(reply)).toEqual([{ code: 15, info: 15, text: "not in the domainwall allowlist" }]);
    expect((await ask("unlisted.example", false)).additionals).toEqual([]);
    expect(edeOf(await ask("api.example"))).toEqual([]);
  });

  test("a failed admission's SERVFAIL carries EDE 0 (Other) with its text", async () => {
    const { ask } = harness(async () => {
      throw new Error("nft: Operation not permitted");
    });
    const reply = await ask("api.example");
    expect(reply.rcode).toBe("SERVFAIL");
    expect(edeOf(reply)).toEqual([{ code: 15, info: 0, text: "domainwall could not admit the answer's addresses into the firewall" }]);
  });

  test("a refused name is logged once per minute, then says how often it was asked meanwhile; each name has its own line", async () => {
    const { ask, logs, tick } = harness();
    for (let i = 0; i < 5; i++) await ask("unlisted.example");
    await ask("other.example");
    expect(logs.map((l) => [l.name, l.qtype])).toEqual([
      ["unlisted.example", "A"],
      ["other.example", "A"],
    ]);
    expect(logs[0]?.message).toBe("refused unlisted.example A: not in the allowlist, NXDOMAIN");
    tick(60_000);
    await ask("Unlisted.example");
    expect(logs).toHaveLength(3);
    expect(logs[2]?.message).toBe("refused Unlisted.example A: not in the allowlist, NXDOMAIN (asked 4 more times since its last line)");
  });
});

describe("keyedLimiter", () => {
  test("past maxKeys, a new key is not limited by name (the caller's overall limit bounds it); expired keys make room", () => {
    let clock = 0;
    const limit = keyedLimiter(1000, 2, () => clock);
    expect([limit("a"), limit("b"), limit("a"), limit("c"), limit("c")]).toEqual([0, 0, undefined, 0, 0]);
    clock = 1000;
    expect([limit("d"), limit("d"), limit("a"), limit("a")]).toEqual([0, undefined, 0, undefined]);
  });
});
