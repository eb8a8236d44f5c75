import { describe, expect, test } from "bun:test";
import { decode, encode, type Answer, type DecodedPacket, type OptAnswer } from "dns-packet";
import {
  answerAddresses,
  encodeReply,
  encodeUpstreamQuery,
  RCODE,
  readAnswer,
  readQuery,
  typeName,
  withId,
  type Query,
} from "../../src/proxy/message.ts";
import { svcbHints } from "../../src/proxy/svcb.ts";
import { queryBytes, RECURSION_DESIRED, svcbRdata, svcbRecord } from "../support/dns.ts";

const decoded = (bytes: Uint8Array): DecodedPacket & { rcode?: string } => decode(Buffer.from(bytes));

function queryOf(bytes: Uint8Array): Query {
  const check = readQuery(bytes);
  if (check.kind !== "query") throw new Error(`not a query: ${check.reason}`);
  return check.query;
}

/** A query's bytes with `edit` applied to a copy. */
const edited = (bytes: Uint8Array, edit: (b: Uint8Array) => void) => {
  const copy = bytes.slice();
  edit(copy);
  return copy;
};

describe("readQuery", () => {
  test("an A query: id, name as sent, type, no OPT", () => {
    const query = queryOf(queryBytes(0x1234, "Api.Example.com", "A"));
    expect(query).toMatchObject({ id: 0x1234, name: "Api.Example.com", plain: true, type: 1, class: 1, opt: undefined });
    expect(query.flags & RECURSION_DESIRED).toBe(RECURSION_DESIRED);
  });

  test("an EDNS0 query keeps its OPT record", () => {
    const query = queryOf(queryBytes(7, "api.example.com", "AAAA", { edns: true }));
    expect(query.opt).toMatchObject({ type: "OPT", udpPayloadSize: 1232, flag_do: true });
  });

  test("a label holding a dot or other bytes is not plain, and is shown escaped", () => {
    const bytes = Uint8Array.from([
      0,
      1,
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
      1,
      0xff,
      7,
      ...Buffer.from("example"),
      0,
      0,
      1,
      0,
      1,
    ]);
    expect(queryOf(bytes)).toMatchObject({ name: "a\\.b.\\255.example", plain: false });
  });

  const base = queryBytes(0xbeef, "api.example.com", "A");
  const nameEnd = 12 + "api.example.com".length + 2;
  const pointerLoop = Uint8Array.from([...base.slice(0, 11), 1, ...base.slice(12), 0xc0, nameEnd + 4, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
  test.each([
    { name: "shorter than a header", bytes: base.slice(0, 11), reason: "shorter than a DNS header" },
    { name: "empty", bytes: new Uint8Array(), reason: "shorter than a DNS header" },
    { name: "oversized", bytes: new Uint8Array(5000), reason: "longer than a query" },
    { name: "a response", bytes: edited(base, (b) => (b[2] = (b[2] ?? 0) | 0x80)), reason: "a response" },
  ])("drops $name", ({ bytes, reason }) => {
    const check = readQuery(bytes);
    expect(check.kind).toBe("drop");
    if (check.kind === "drop") expect(check.reason).toContain(reason);
  });

  test.each([
    { name: "opcode STATUS", bytes: edited(base, (b) => (b[2] = (b[2] ?? 0) | (2 << 3))), rcode: "NOTIMP", reason: "opcode 2" },
    { name: "two questions", bytes: edited(base, (b) => (b[5] = 2)), rcode: "FORMERR", reason: "2 questions" },
    { name: "no question", bytes: base.slice(0, 12).map((v, i) => (i === 5 ? 0 : v)), rcode: "FORMERR", reason: "0 questions" },
    { name: "an answer record", bytes: edited(base, (b) => (b[7] = 1)), rcode: "FORMERR", reason: "answer or authority" },
    { name: "a question cut short", bytes: base.slice(0, nameEnd + 2), rcode: "FORMERR", reason: "unreadable question" },
    {
      name: "a compressed question",
      bytes: Uint8Array.from([...base.slice(0, 12), 0xc0, 12, 0, 1, 0, 1]),
      rcode: "FORMERR",
      reason: "unreadable question",
    },
    { name: "a compression-pointer loop", bytes: pointerLoop, rcode: "FORMERR", reason: "malformed" },
    {
      name: "an additional record cut short",
      bytes: Uint8Array.from([...base.slice(0, 11), 1, ...base.slice(12), 0, 0]),
      rcode: "FORMERR",
      reason: "malformed",
    },
    {
      name: "a non-OPT additional record",
      bytes: queryBytes(1, "a.example", "A", {
        extra: { additionals: [{ type: "A", name: "a.example", ttl: 1, data: "192.0.2.1" } as Answer] },
      }),
      rcode: "FORMERR",
      reason: "other than one OPT",
    },
    { name: "class CH", bytes: edited(base, (b) => (b[nameEnd + 3] = 3)), rcode: "REFUSED", reason: "class 3" },
    { name: "AXFR", bytes: queryBytes(2, "example.com", "AXFR"), rcode: "REFUSED", reason: "zone transfer" },
  ])("answers $name with $rcode", ({ bytes, rcode, reason }) => {
    const check = readQuery(bytes);
    expect(check.kind).toBe("reply");
    if (check.kind !== "reply") return;
    expect(check.reason).toContain(reason);
    const reply = decoded(check.reply);
    expect(reply).toMatchObject({ id: bytes[0]! * 256 + bytes[1]!, type: "response", rcode, flag_rd: true, flag_ra: true });
  });
});

describe("encodeReply", () => {
  test.each([
    { rcode: RCODE.NXDOMAIN, text: "NXDOMAIN" },
    { rcode: RCODE.SERVFAIL, text: "SERVFAIL" },
    { rcode: RCODE.FORMERR, text: "FORMERR" },
    { rcode: RCODE.REFUSED, text: "REFUSED" },
  ])("$text keeps the id, RD, the question as sent and the OPT record", ({ rcode, text }) => {
    const query = queryOf(queryBytes(0xabcd, "ApI.eXample.com", "AAAA", { edns: true }));
    const reply = decoded(encodeReply(query, rcode));
    expect(reply).toMatchObject({ id: 0xabcd, type: "response", rcode: text, flag_rd: true, flag_tc: false, flag_aa: false });
    expect(reply.questions).toEqual([{ name: "ApI.eXample.com", type: "AAAA", class: "IN" }]);
    expect(reply.answers).toEqual([]);
    expect(reply.additionals).toMatchObject([{ type: "OPT", udpPayloadSize: 1232, flag_do: true, options: [] }]);
  });

  test("without OPT in the query, none in the reply; RD clear stays clear", () => {
    const query = queryOf(queryBytes(9, "a.example", "A", { flags: 0 }));
    const reply = decoded(encodeReply(query, RCODE.NXDOMAIN));
    expect(reply).toMatchObject({ id: 9, flag_rd: false, additionals: [] });
  });
});

describe("encodeUpstreamQuery", () => {
  const withOpt = (udpPayloadSize: number, flags: number, options: { code: number; data: Buffer }[], ednsVersion = 0) =>
    queryBytes(1, "Api.Example.com", "HTTPS", {
      extra: { additionals: [{ type: "OPT", name: ".", udpPayloadSize, flags, ednsVersion, options } as unknown as Answer] },
    });
  const sentOpt = (bytes: Uint8Array) => decoded(encodeUpstreamQuery(queryOf(bytes), 0x4242)).additionals?.[0] as OptAnswer;

  test("a fresh id; the question and RD as the client sent them", () => {
    const sent = decoded(encodeUpstreamQuery(queryOf(withOpt(4096, 0, [])), 0x4242));
    expect(sent).toMatchObject({
      id: 0x4242,
      type: "query",
      flag_rd: true,
      questions: [{ name: "Api.Example.com", type: "UNKNOWN_65", class: "IN" }],
      answers: [],
    });
    expect(sent.additionals).toHaveLength(1);
  });

  test("no EDNS option reaches the upstream: cookie, client subnet, padding, NSID, an unknown code carrying data", () => {
    const secret = Buffer.from("the contents of /etc/shadow, 60 bytes at a time, per query");
    const options = [
      { code: 10, data: Buffer.from("0102030405060708", "hex") }, // COOKIE
      { code: 8, data: Buffer.from([0, 1, 24, 0, 192, 0, 2]) }, // ECS 192.0.2.0/24
      { code: 12, data: secret }, // PADDING is meant to be zeros, but is whatever the client puts there
      { code: 3, data: Buffer.alloc(0) }, // NSID request
      { code: 65001, data: secret }, // local/experimental use
    ];
    const bytes = withOpt(1232, 0x8000, options);
    expect((queryOf(bytes).opt?.options ?? []).length).toBe(5);
    const sent = encodeUpstreamQuery(queryOf(bytes), 0x4242);
    expect(sentOpt(bytes)).toMatchObject({ type: "OPT", udpPayloadSize: 1232, flag_do: true, options: [] });
    // Nothing of the secret anywhere in the forwarded bytes.
    expect(Buffer.from(sent).includes(Buffer.from(secret))).toBe(false);
    // Header, question (17 + 4 bytes) and an 11-byte OPT: nothing else.
    expect(sent.length).toBe(12 + 17 + 4 + 11);
  });

  test("the OPT record keeps only the DO bit, as EDNS version 0, and its UDP size as 1232 or 512", () => {
    expect(sentOpt(withOpt(4096, 0x8000 | 0x7fff, []))).toMatchObject({ udpPayloadSize: 1232, ednsVersion: 0, flags: 0x8000 });
    expect(sentOpt(withOpt(1232, 0, [], 1))).toMatchObject({ udpPayloadSize: 1232, ednsVersion: 0, flags: 0 });
    // Any value below 1232 is 512 (RFC 6891: less than 512 is read as 512): the field carries one bit, not sixteen.
    for (const size of [1, 511, 512, 1000, 1231]) expect(sentOpt(withOpt(size, 0, [])).udpPayloadSize).toBe(512);
    expect(sentOpt(withOpt(65535, 0, [])).udpPayloadSize).toBe(1232);
  });

  test("a query without OPT is forwarded without one", () => {
    expect(decoded(encodeUpstreamQuery(queryOf(queryBytes(1, "api.example.com", "A")), 9)).additionals).toEqual([]);
  });
});

test("withId replaces only the id", () => {
  const bytes = queryBytes(1, "a.example", "A");
  const other = withId(bytes, 0x0102);
  expect([...other.slice(0, 2)]).toEqual([1, 2]);
  expect(other.slice(2)).toEqual(bytes.slice(2));
  expect(bytes[1]).toBe(1);
});

/** An upstream answer to `query` (sent with `id`) holding `answers`. */
function answerBytes(id: number, name: string, type: string, answers: Answer[], flags = 0x8180): Uint8Array {
  return encode({
    type: flags & 0x8000 ? "response" : "query",
    id,
    flags,
    questions: [{ name, type: type as never, class: "IN" }],
    answers,
  });
}

describe("readAnswer", () => {
  const query = queryOf(queryBytes(5, "api.example.com", "A"));
  const a: Answer = { type: "A", name: "api.example.com", ttl: 30, data: "192.0.2.1" };
  test("a matching answer: its rcode and records", () => {
    const check = readAnswer(query, 77, answerBytes(77, "api.example.com", "A", [a]));
    expect(check).toMatchObject({ ok: true, rcode: 0, truncated: false, records: [{ type: "A", data: "192.0.2.1" }] });
  });
  test("question names compare case-insensitively (0x20 randomisation)", () => {
    expect(readAnswer(query, 77, answerBytes(77, "API.example.COM", "A", [a])).ok).toBe(true);
  });
  test("a truncated answer passes with no records", () => {
    const bytes = answerBytes(77, "api.example.com", "A", [a], 0x8380);
    expect(readAnswer(query, 77, bytes.slice(0, bytes.length - 3))).toEqual({ ok: true, rcode: 0, truncated: true, records: [] });
  });
  test.each([
    { name: "another id", bytes: answerBytes(78, "api.example.com", "A", [a]), reason: "id 78, expected 77" },
    { name: "another name", bytes: answerBytes(77, "evil.example.com", "A", [a]), reason: "not the query's" },
    { name: "another type", bytes: answerBytes(77, "api.example.com", "AAAA", []), reason: "not the query's" },
    { name: "a query", bytes: answerBytes(77, "api.example.com", "A", [a], 0x0100), reason: "not a response" },
    { name: "cut short", bytes: answerBytes(77, "api.example.com", "A", [a]).slice(0, 40), reason: "malformed" },
    { name: "a header only", bytes: answerBytes(77, "api.example.com", "A", [a]).slice(0, 12), reason: "not the query's" },
    { name: "too short", bytes: new Uint8Array(3), reason: "shorter than a DNS header" },
  ])("refuses $name", ({ bytes, reason }) => {
    const check = readAnswer(query, 77, bytes);
    expect(check.ok).toBe(false);
    if (!check.ok) expect(check.reason).toContain(reason);
  });
});

/** Records as the proxy sees them: encoded into an answer and decoded again. */
function recordsOf(answers: Answer[]): readonly Answer[] {
  return decoded(answerBytes(1, "q.example", "A", answers)).answers ?? [];
}

describe("answerAddresses", () => {
  const A = (name: string, data: string, ttl = 30): Answer => ({ type: "A", name, ttl, data });
  const AAAA = (name: string, data: string, ttl = 30): Answer => ({ type: "AAAA", name, ttl, data });
  const CNAME = (name: string, data: string): Answer => ({ type: "CNAME", name, ttl: 300, data });
  const addresses = (name: string, answers: Answer[]) =>
    answerAddresses(name, recordsOf(answers)).addresses.map((a) => `${a.address} ${a.ttl} ${a.record} ${a.owner}`);

  const rows: { case: string; name: string; answers: Answer[]; expected: string[] }[] = [
    {
      case: "A and AAAA of the name",
      name: "api.example.com",
      answers: [A("api.example.com", "192.0.2.1", 30), AAAA("api.example.com", "2001:db8::1", 60)],
      expected: ["192.0.2.1 30 A api.example.com", "2001:db8::1 60 AAAA api.example.com"],
    },
    {
      case: "owner case and a trailing dot on the name do not matter",
      name: "api.example.com.",
      answers: [A("API.Example.com", "192.0.2.1")],
      expected: ["192.0.2.1 30 A api.example.com"],
    },
    {
      case: "a CNAME to an unlisted name is followed",
      name: "api.example.com",
      answers: [CNAME("api.example.com", "edge.cdn.example.net"), A("edge.cdn.example.net", "203.0.113.7")],
      expected: ["203.0.113.7 30 A edge.cdn.example.net"],
    },
    {
      case: "a chain of three, records in any order",
      name: "a.example",
      answers: [A("c.example", "192.0.2.3"), CNAME("b.example", "c.example"), CNAME("a.example", "b.example")],
      expected: ["192.0.2.3 30 A c.example"],
    },
    {
      case: "records of other owners are ignored",
      name: "api.example.com",
      answers: [A("api.example.com", "192.0.2.1"), A("evil.example", "198.51.100.66"), AAAA("bank.example", "2001:db8::66")],
      expected: ["192.0.2.1 30 A api.example.com"],
    },
    {
      case: "a CNAME of another owner is not followed",
      name: "api.example.com",
      answers: [A("api.example.com", "192.0.2.1"), CNAME("evil.example", "x.example"), A("x.example", "198.51.100.66")],
      expected: ["192.0.2.1 30 A api.example.com"],
    },
    {
      case: "a chain leaving the answer gives nothing",
      name: "api.example.com",
      answers: [CNAME("api.example.com", "elsewhere.example"), A("other.example", "192.0.2.9")],
      expected: [],
    },
    {
      case: "a CNAME loop ends",
      name: "a.example",
      answers: [CNAME("a.example", "b.example"), CNAME("b.example", "a.example"), A("b.example", "192.0.2.2")],
      expected: ["192.0.2.2 30 A b.example"],
    },
    {
      case: "a repeated address keeps its longest TTL",
      name: "a.example",
      answers: [A("a.example", "192.0.2.1", 10), CNAME("a.example", "b.example"), A("b.example", "192.0.2.1", 50)],
      expected: ["192.0.2.1 50 A b.example"],
    },
    {
      case: "a record of class CH is ignored",
      name: "a.example",
      answers: [{ type: "A", name: "a.example", ttl: 30, class: "CH", data: "192.0.2.1" }],
      expected: [],
    },
    {
      case: "IPv6 is canonical",
      name: "a.example",
      answers: [AAAA("a.example", "2001:DB8:0:0:0:0:0:A")],
      expected: ["2001:db8::a 30 AAAA a.example"],
    },
    {
      case: "HTTPS hints of names in the chain",
      name: "a.example",
      answers: [
        CNAME("a.example", "b.example"),
        svcbRecord("HTTPS", "b.example", 40, svcbRdata(1, ".", { v4: ["192.0.2.10", "192.0.2.11"], v6: ["2001:db8::10"] })),
      ],
      expected: ["192.0.2.10 40 HTTPS b.example", "192.0.2.11 40 HTTPS b.example", "2001:db8::10 40 HTTPS b.example"],
    },
    {
      case: "SVCB hints",
      name: "a.example",
      answers: [svcbRecord("SVCB", "a.example", 20, svcbRdata(2, "svc.example", { v4: ["198.51.100.1"] }))],
      expected: ["198.51.100.1 20 SVCB a.example"],
    },
    {
      case: "HTTPS hints of another owner are ignored",
      name: "a.example",
      answers: [svcbRecord("HTTPS", "evil.example", 40, svcbRdata(1, ".", { v4: ["198.51.100.66"] }))],
      expected: [],
    },
    {
      case: "a malformed HTTPS record admits nothing",
      name: "a.example",
      answers: [svcbRecord("HTTPS", "a.example", 40, Buffer.from([0, 1, 0, 0, 4, 0, 3, 1, 2, 3]))],
      expected: [],
    },
  ];
  test.each(rows)("$case", ({ name, answers, expected }) => {
    expect(addresses(name, answers)).toEqual(expected);
  });

  test("the chain is reported", () => {
    expect(answerAddresses("A.example", recordsOf([CNAME("a.example", "B.example"), CNAME("b.example", "c.example")])).chain).toEqual([
      "a.example",
      "b.example",
      "c.example",
    ]);
  });

  test("a chain is bounded at 16 names", () => {
    const hops = Array.from({ length: 40 }, (_, i) => CNAME(`n${i}.example`, `n${i + 1}.example`));
    expect(answerAddresses("n0.example", recordsOf([...hops, A("n39.example", "192.0.2.1")])).chain).toHaveLength(16);
  });
});

describe("svcbHints", () => {
  test.each([
    {
      case: "ServiceMode with both hints",
      rdata: svcbRdata(1, "x.example", { v4: ["192.0.2.1"], v6: ["2001:db8::1"] }),
      expected: { v4: ["192.0.2.1"], v6: ["2001:db8:0:0:0:0:0:1"] },
    },
    { case: "ServiceMode without hints", rdata: svcbRdata(1, "."), expected: { v4: [], v6: [] } },
    { case: "AliasMode", rdata: svcbRdata(0, "x.example"), expected: { v4: [], v6: [] } },
    { case: "AliasMode with parameters", rdata: Buffer.from([0, 0, 0, 0, 4, 0, 4, 192, 0, 2, 1]), expected: undefined },
    {
      case: "keys out of order",
      rdata: Buffer.from([0, 1, 0, 0, 6, 0, 16, ...new Array(16).fill(0), 0, 4, 0, 4, 192, 0, 2, 1]),
      expected: undefined,
    },
    { case: "an ipv4hint of 5 bytes", rdata: Buffer.from([0, 1, 0, 0, 4, 0, 5, 192, 0, 2, 1, 1]), expected: undefined },
    { case: "an empty ipv6hint", rdata: Buffer.from([0, 1, 0, 0, 6, 0, 0]), expected: undefined },
    { case: "a parameter past the end", rdata: Buffer.from([0, 1, 0, 0, 1, 0, 9, 104, 50]), expected: undefined },
    { case: "a compressed TargetName", rdata: Buffer.from([0, 1, 0xc0, 12]), expected: undefined },
    { case: "a TargetName cut short", rdata: Buffer.from([0, 1, 5, 97]), expected: undefined },
    { case: "too short", rdata: Buffer.from([0, 1]), expected: undefined },
  ])("$case", ({ rdata, expected }) => {
    expect(svcbHints(rdata)).toEqual(expected as never);
  });
});

test.each([
  { type: 1, name: "A" },
  { type: 65, name: "HTTPS" },
  { type: 64, name: "SVCB" },
  { type: 65280, name: "TYPE65280" },
])("typeName($type) is $name", ({ type, name }) => {
  expect(typeName(type)).toBe(name);
});
