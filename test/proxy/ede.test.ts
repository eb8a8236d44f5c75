import { describe, expect, test } from "bun:test";
import { decode, type OptAnswer } from "dns-packet";
import { EDE, encodeReply, RCODE, readQuery, type Query } from "../../src/proxy/message.ts";
import { queryBytes } from "../support/dns.ts";

function queryOf(bytes: Uint8Array): Query {
  const check = readQuery(bytes);
  if (check.kind !== "query") throw new Error(`not a query: ${check.reason}`);
  return check.query;
}

/** The reply's additional section, as raw bytes after the question: [OPT record...]. */
const optBytes = (reply: Uint8Array, query: Query) => reply.subarray(12 + query.bytes.length);

describe("Extended DNS Errors (RFC 8914) in the proxy's own replies", () => {
  test("NXDOMAIN with EDE 15 (Blocked): the OPT record carries option 15, INFO-CODE 15 then the text, byte for byte", () => {
    const query = queryOf(queryBytes(7, "unlisted.example", "A", { edns: true }));
    const reply = encodeReply(query, RCODE.NXDOMAIN, { code: EDE.BLOCKED, text: "not in the domainwall allowlist" });
    const text = [...new TextEncoder().encode("not in the domainwall allowlist")];
    expect([...optBytes(reply, query)]).toEqual([
      0, // root owner
      0,
      41, // type OPT
      1232 >> 8,
      1232 & 255, // UDP payload size
      0, // extended rcode
      0, // version
      0x80,
      0, // flags: DO, copied from the query
      0,
      4 + 2 + text.length, // rdata length
      0,
      15, // option code 15: Extended DNS Error
      0,
      2 + text.length, // option length
      0,
      15, // INFO-CODE 15: Blocked
      ...text,
    ]);
    expect(reply[11]).toBe(1); // one additional record
    const decoded = decode(Buffer.from(reply)) as ReturnType<typeof decode> & { rcode?: string };
    expect(decoded.rcode).toBe("NXDOMAIN");
    const opt = decoded.additionals?.[0] as OptAnswer;
    expect(opt.options.map((o) => ({ code: o.code as number, data: [...(o as unknown as { data: Buffer }).data] }))).toEqual([
      { code: 15, data: [0, 15, ...text] },
    ]);
  });

  test("SERVFAIL with EDE 0 (Other) and its text", () => {
    const query = queryOf(queryBytes(9, "api.example", "AAAA", { edns: true }));
    const reply = encodeReply(query, RCODE.SERVFAIL, { code: EDE.OTHER, text: "x" });
    expect([...optBytes(reply, query)].slice(-7)).toEqual([0, 15, 0, 3, 0, 0, "x".charCodeAt(0)]);
  });

  test("a query without EDNS gets no OPT record, and so no EDE", () => {
    const query = queryOf(queryBytes(7, "unlisted.example", "A"));
    const reply = encodeReply(query, RCODE.NXDOMAIN, { code: EDE.BLOCKED, text: "not in the domainwall allowlist" });
    expect(optBytes(reply, query).length).toBe(0);
    expect(reply[11]).toBe(0);
    expect(reply).toEqual(encodeReply(query, RCODE.NXDOMAIN));
  });
});
