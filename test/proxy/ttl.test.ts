import { afterEach, describe, expect, test } from "bun:test";
import { decode, encode, type Answer } from "dns-packet";
import { compileMatcher } from "../../src/proxy/match.ts";
import { startDnsProxy } from "../../src/proxy/server.ts";
import { clampTtls } from "../../src/proxy/ttl.ts";
import { udpAsk } from "../support/dns-client.ts";
import { queryBytes } from "../support/dns.ts";
import { startFakeDns } from "../support/fake-dns.ts";

const ttlsOf = (bytes: Uint8Array | undefined) => {
  if (bytes === undefined) return undefined;
  const packet = decode(Buffer.from(bytes));
  const of = (records: readonly Answer[] | undefined) => (records ?? []).map((r) => `${r.type} ${"ttl" in r ? r.ttl : "-"}`);
  return { answers: of(packet.answers), authorities: of(packet.authorities), additionals: of(packet.additionals) };
};

const response = new Uint8Array(
  encode({
    type: "response",
    id: 1,
    flags: 0x8180,
    questions: [{ name: "api.example.com", type: "A", class: "IN" }],
    answers: [
      { type: "CNAME", name: "api.example.com", ttl: 300, data: "edge.example.net" },
      { type: "A", name: "edge.example.net", ttl: 86_400, data: "192.0.2.1" },
      { type: "A", name: "edge.example.net", ttl: 2 ** 31, data: "192.0.2.2" },
      { type: "A", name: "edge.example.net", ttl: 0, data: "192.0.2.3" },
      { type: "A", name: "edge.example.net", ttl: 20, data: "192.0.2.4" },
    ],
    authorities: [{ type: "NS", name: "example.net", ttl: 172_800, data: "ns.example.net" }],
    additionals: [
      { type: "A", name: "ns.example.net", ttl: 7200, data: "192.0.2.53" },
      // EDNS: the OPT record's TTL field carries the extended rcode, version and the DO bit.
      { type: "OPT", name: ".", udpPayloadSize: 1232, flags: 0x8000, options: [] } as unknown as Answer,
    ],
  }),
);

interface Row {
  readonly name: string;
  readonly max: number;
  readonly expected: { answers: string[]; authorities: string[]; additionals: string[] };
}

describe("clampTtls", () => {
  test.each<Row>([
    {
      name: "every record at most the max; shorter ones, 0 included, unchanged; OPT untouched",
      max: 60,
      expected: {
        answers: ["CNAME 60", "A 60", "A 60", "A 0", "A 20"],
        authorities: ["NS 60"],
        additionals: ["A 60", "OPT -"],
      },
    },
    {
      name: "a max longer than every TTL changes nothing",
      max: 2 ** 32 - 1,
      expected: {
        answers: ["CNAME 300", "A 86400", `A ${2 ** 31}`, "A 0", "A 20"],
        authorities: ["NS 172800"],
        additionals: ["A 7200", "OPT -"],
      },
    },
    {
      name: "max 0",
      max: 0,
      expected: { answers: ["CNAME 0", "A 0", "A 0", "A 0", "A 0"], authorities: ["NS 0"], additionals: ["A 0", "OPT -"] },
    },
  ])("$name", ({ max, expected }) => {
    expect(ttlsOf(clampTtls(response, max))).toEqual(expected);
  });

  test("the OPT record's flags (DO) are kept; the input is not changed", () => {
    const before = new Uint8Array(response);
    const out = decode(Buffer.from(clampTtls(response, 1) as Uint8Array));
    expect(out.additionals?.find((r) => r.type === "OPT")).toMatchObject({ flag_do: true, udpPayloadSize: 1232 });
    expect(response).toEqual(before);
  });

  test("names compressed with pointers are walked", () => {
    // api.example.com A, answer owner a pointer to the question's name (offset 12), TTL 86400.
    const bytes = Uint8Array.from([
      0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 3, 97, 112, 105, 7, 101, 120, 97, 109, 112, 108, 101, 3, 99, 111, 109, 0, 0, 1, 0, 1, 0xc0,
      12, 0, 1, 0, 1, 0, 1, 0x51, 0x80, 0, 4, 192, 0, 2, 1,
    ]);
    expect(ttlsOf(clampTtls(bytes, 30))).toEqual({ answers: ["A 30"], authorities: [], additionals: [] });
  });

  test("a truncated (TC) answer cut mid-record: the header and question pass on with TC and no records, so the client retries over TCP", () => {
    const truncated = Uint8Array.from(response);
    truncated[2] = (truncated[2] as number) | 0x02; // TC
    for (const cut of [response.length - 3, 40, 34]) {
      const out = clampTtls(truncated.slice(0, cut), 60);
      expect(out).toBeDefined();
      const packet = decode(Buffer.from(out as Uint8Array));
      expect(packet.flag_tc).toBe(true);
      expect(packet.id).toBe(1);
      expect(packet.questions).toEqual([{ name: "api.example.com", type: "A", class: "IN" }]);
      expect([packet.answers?.length, packet.authorities?.length, packet.additionals?.length]).toEqual([0, 0, 0]);
    }
    // Cut inside the question: nothing to pass on.
    expect(clampTtls(truncated.slice(0, 20), 60)).toBeUndefined();
  });

  test.each([
    { name: "shorter than a header", bytes: new Uint8Array(11) },
    { name: "a record cut short", bytes: response.slice(0, response.length - 3) },
    { name: "a label with the reserved bits", bytes: Uint8Array.from([0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 1, 0, 1]) },
    { name: "more records counted than present", bytes: Uint8Array.from([...response.slice(0, 6), 0, 99, ...response.slice(8)]) },
  ])("unwalkable: $name → undefined", ({ bytes }) => {
    expect(clampTtls(bytes, 60)).toBeUndefined();
  });
});

describe("the proxy's answers", () => {
  const running: (() => void)[] = [];
  afterEach(() => {
    for (const stop of running.splice(0)) stop();
  });

  test("an answer with TTL 86,400 reaches the client with the max; the admission gets the TTL the upstream gave", async () => {
    const upstream = await startFakeDns((query) => ({
      answers: [
        { type: "CNAME", name: query.questions?.[0]?.name ?? "", ttl: 86_400, data: "edge.example.net" },
        { type: "A", name: "edge.example.net", ttl: 86_400, data: "192.0.2.1" },
      ],
    }));
    const compiled = compileMatcher(["api.example.com"]);
    if (!compiled.ok) throw new Error("list");
    const admitted: number[] = [];
    const proxy = await startDnsProxy({
      port: 0,
      upstreams: [{ address: "127.0.0.1", port: upstream.port }],
      match: compiled.match,
      admit: async (a) => void admitted.push(...a.addresses.map((x) => x.ttl)),
      log: { info() {}, warn() {}, error() {} },
      maxAnswerTtlSeconds: 3600,
    });
    running.push(
      () => proxy.stop(),
      () => upstream.stop(),
    );
    const reply = await udpAsk(proxy.port, queryBytes(5, "api.example.com", "A"));
    expect(reply.answers?.map((a) => `${a.type} ${"ttl" in a ? a.ttl : "-"}`)).toEqual(["CNAME 3600", "A 3600"]);
    expect(admitted).toEqual([86_400]);
  });

  test("a truncated upstream answer cut mid-record reaches the client as TC with no records (not SERVFAIL), admitting nothing", async () => {
    const upstream = await startFakeDns((query) => {
      const full = new Uint8Array(
        encode({
          type: "response",
          id: query.id,
          flags: 0x8380,
          questions: query.questions,
          answers: [{ type: "A", name: query.questions?.[0]?.name ?? "", ttl: 60, data: "192.0.2.1" }],
        }),
      );
      return full.slice(0, full.length - 2);
    });
    const compiled = compileMatcher(["api.example.com"]);
    if (!compiled.ok) throw new Error("list");
    const admitted: string[] = [];
    const proxy = await startDnsProxy({
      port: 0,
      upstreams: [{ address: "127.0.0.1", port: upstream.port }],
      match: compiled.match,
      admit: async (a) => void admitted.push(...a.addresses.map((x) => x.address)),
      log: { info() {}, warn() {}, error() {} },
      maxAnswerTtlSeconds: 3600,
    });
    running.push(
      () => proxy.stop(),
      () => upstream.stop(),
    );
    const reply = await udpAsk(proxy.port, queryBytes(6, "api.example.com", "A"));
    expect(reply.rcode).toBe("NOERROR");
    expect(reply.flag_tc).toBe(true);
    expect(reply.answers ?? []).toEqual([]);
    expect(admitted).toEqual([]);
  });
});
