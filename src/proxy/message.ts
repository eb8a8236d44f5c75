/**
 * DNS messages of the proxy, pure: read a client's query, build the proxy's own replies, check an
 * upstream answer against its query, and take from it the addresses the query name was told.
 * dns-packet decodes; the header and the question are also read at the wire level, because the
 * question's exact labels decide what is forwarded (dns-packet joins labels with dots, so a label
 * holding a dot would read as two).
 */
import { decode, type Answer, type OptAnswer } from "dns-packet";
import { formatAddress, parseAddress, type Family } from "../net/ip.ts";
import { svcbHints } from "./svcb.ts";

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export type Rcode = (typeof RCODE)[keyof typeof RCODE];

const QR = 0x8000;
const OPCODE = 0x7800;
const TC = 0x0200;
const RD = 0x0100;
const RA = 0x0080;
const AD = 0x0020;
const CD = 0x0010;
const CLASS_IN = 1;
const TYPE_OPT = 41;
/** The DO bit of the OPT record's flags (RFC 3225): the one flag forwarded. */
const DO = 0x8000;
/** The UDP payload size the proxy announces in its own replies (the DNS Flag Day 2020 value). */
const UDP_PAYLOAD = 1232;
/** Larger queries are dropped: real ones are a name and an OPT record, a few hundred bytes. */
export const MAX_QUERY_BYTES = 4096;

const TYPE_NAMES: Readonly<Record<number, string>> = {
  1: "A",
  2: "NS",
  5: "CNAME",
  6: "SOA",
  12: "PTR",
  15: "MX",
  16: "TXT",
  28: "AAAA",
  33: "SRV",
  64: "SVCB",
  65: "HTTPS",
  255: "ANY",
};
/** A query type as logs show it: its mnemonic, or `TYPEn` (RFC 3597). */
export const typeName = (type: number): string => TYPE_NAMES[type] ?? `TYPE${type}`;

/** The question of a message, read at the wire level. */
interface Question {
  /** Presentation form as sent (case kept): bytes other than letters, digits, `-` and `_` are escaped (`\.`, `\DDD`). */
  readonly name: string;
  /** Every label is letters, digits, `-` or `_` only: the only names that can match an entry. */
  readonly plain: boolean;
  readonly type: number;
  readonly class: number;
  /** The question section's bytes, copied into replies and forwarded queries as they came. */
  readonly bytes: Uint8Array;
}

const isPlain = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 95;

/** The one question at offset 12; undefined if it is cut short, compressed or longer than 255 bytes. */
function readQuestion(bytes: Uint8Array): Question | undefined {
  let name = "";
  let labels = 0;
  let plain = true;
  let offset = 12;
  for (let wire = 1; ; ) {
    const length = bytes[offset++];
    if (length === undefined || length > 63) return undefined;
    if (length === 0) break;
    wire += length + 1;
    const end = offset + length;
    if (wire > 255 || end > bytes.length) return undefined;
    if (labels++ > 0) name += ".";
    // Index and one character at a time: faster here than an iterator or a subarray per label.
    for (let at = offset; at < end; at++) {
      const c = bytes[at] as number;
      if (isPlain(c)) name += String.fromCharCode(c);
      else {
        plain = false;
        name += c === 46 || c === 92 ? `\\${String.fromCharCode(c)}` : `\\${String(c).padStart(3, "0")}`;
      }
    }
    offset = end;
  }
  if (offset + 4 > bytes.length) return undefined;
  return {
    name: labels === 0 ? "." : name,
    plain: plain && labels > 0,
    type: u16(bytes, offset),
    class: u16(bytes, offset + 2),
    bytes: bytes.slice(12, offset + 4),
  };
}

/** A client's query that passed every check. */
export interface Query extends Question {
  readonly id: number;
  /** The header's flags word (QR, opcode, RD, CD…). */
  readonly flags: number;
  /** The EDNS0 OPT record, when the client sent one. */
  readonly opt: OptAnswer | undefined;
}

export type QueryCheck =
  | { readonly kind: "query"; readonly query: Query }
  | { readonly kind: "reply"; readonly reply: Uint8Array; readonly reason: string }
  | { readonly kind: "drop"; readonly reason: string };

const u16 = (bytes: Uint8Array, offset: number) => ((bytes[offset] ?? 0) << 8) | (bytes[offset + 1] ?? 0);

/**
 * Check a client's message: one question of class IN, QR=0, opcode QUERY, nothing but one OPT
 * record besides. Short messages and responses are dropped (no reply can be addressed, or replying
 * could loop); a message that cannot be read gets FORMERR, another opcode NOTIMP, another class or
 * a zone transfer REFUSED — each reply keeps the id, RD and, when readable, the question and OPT.
 */
export function readQuery(bytes: Uint8Array): QueryCheck {
  if (bytes.length < 12) return { kind: "drop", reason: `${bytes.length} bytes, shorter than a DNS header` };
  if (bytes.length > MAX_QUERY_BYTES) return { kind: "drop", reason: `${bytes.length} bytes, longer than a query can be` };
  const id = u16(bytes, 0);
  const flags = u16(bytes, 2);
  if (flags & QR) return { kind: "drop", reason: "a response, not a query" };
  const formerr = (reason: string): QueryCheck => ({ kind: "reply", reply: encodeReply({ id, flags }, RCODE.FORMERR), reason });
  if (flags & OPCODE) return { kind: "reply", reply: encodeReply({ id, flags }, RCODE.NOTIMP), reason: `opcode ${(flags & OPCODE) >> 11}` };
  if (u16(bytes, 4) !== 1) return formerr(`${u16(bytes, 4)} questions`);
  if (u16(bytes, 6) !== 0 || u16(bytes, 8) !== 0) return formerr("answer or authority records in a query");
  const question = readQuestion(bytes);
  if (question === undefined) return formerr("unreadable question");
  let additionals: readonly Answer[] = [];
  // Most queries carry no additional record: nothing left to decode.
  if (u16(bytes, 10) !== 0) {
    try {
      additionals = decode(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).additionals ?? [];
    } catch (error) {
      return formerr(`malformed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (additionals.length > 1 || additionals.some((record) => record.type !== "OPT"))
    return formerr("additional records other than one OPT");
  const query: Query = { ...question, id, flags, opt: additionals[0] as OptAnswer | undefined };
  if (question.class !== CLASS_IN) return { kind: "reply", reply: encodeReply(query, RCODE.REFUSED), reason: `class ${question.class}` };
  if (question.type === 251 || question.type === 252)
    return { kind: "reply", reply: encodeReply(query, RCODE.REFUSED), reason: "zone transfer" };
  return { kind: "query", query };
}

function header(id: number, flags: number, questions: number, additionals: number): number[] {
  return [id >> 8, id & 255, flags >> 8, flags & 255, 0, questions, 0, 0, 0, 0, 0, additionals];
}

/** An OPT record: root owner, type 41, payload size as class, version and DO in the TTL field. */
function encodeOpt(payload: number, version: number, flags: number, options: readonly { code: number; data?: Uint8Array }[]): Uint8Array {
  const rdata = options.flatMap(({ code, data = new Uint8Array() }) => [
    code >> 8,
    code & 255,
    data.length >> 8,
    data.length & 255,
    ...data,
  ]);
  return Uint8Array.from([
    0,
    0,
    TYPE_OPT,
    payload >> 8,
    payload & 255,
    0,
    version,
    flags >> 8,
    flags & 255,
    rdata.length >> 8,
    rdata.length & 255,
    ...rdata,
  ]);
}

/** RFC 8914 Extended DNS Error INFO-CODEs the proxy sends. */
export const EDE = { OTHER: 0, BLOCKED: 15 } as const;
/** An Extended DNS Error: its INFO-CODE and EXTRA-TEXT (UTF-8, for people: dig prints it). */
export interface ExtendedError {
  readonly code: number;
  readonly text: string;
}
/** The EDNS option code of an Extended DNS Error. */
const EDE_OPTION = 15;

/** An Extended DNS Error as an EDNS option: the 2-byte INFO-CODE, then the text. */
const edeOption = ({ code, text }: ExtendedError) => ({
  code: EDE_OPTION,
  data: Uint8Array.from([code >> 8, code & 255, ...new TextEncoder().encode(text)]),
});

/**
 * The proxy's own reply with `rcode` and no records: the query's id and RD (and CD), RA set; the
 * question and an OPT record (payload 1232, DO copied) when the query had them. `ede` goes into
 * that OPT record: only a client that sent EDNS gets it (RFC 8914).
 */
export function encodeReply(
  query: { readonly id: number; readonly flags: number; readonly bytes?: Uint8Array; readonly opt?: OptAnswer | undefined },
  rcode: Rcode,
  ede?: ExtendedError,
): Uint8Array {
  const flags = QR | RA | (query.flags & (RD | CD)) | rcode;
  const opt =
    query.opt === undefined ? new Uint8Array() : encodeOpt(UDP_PAYLOAD, 0, query.opt.flags & DO, ede === undefined ? [] : [edeOption(ede)]);
  const question = query.bytes ?? new Uint8Array();
  return Uint8Array.from([...header(query.id, flags, question.length > 0 ? 1 : 0, opt.length > 0 ? 1 : 0), ...question, ...opt]);
}

/**
 * The query as the proxy forwards it: a fresh id, the client's RD, CD and AD bits and question, and
 * when the client sent an OPT record, the proxy's own: EDNS version 0, the DO bit, a UDP size of
 * 1232 (the client offered at least that) or 512, and no options. A client's EDNS options (cookie,
 * client subnet, padding, any unknown code) never leave the pod: each is up to 64 KiB of the
 * client's choosing that a listed name would carry to whoever runs its DNS.
 */
export function encodeUpstreamQuery(query: Query, id: number): Uint8Array {
  const opt = query.opt;
  const optBytes = opt === undefined ? undefined : encodeOpt(opt.udpPayloadSize >= UDP_PAYLOAD ? UDP_PAYLOAD : 512, 0, opt.flags & DO, []);
  const out = new Uint8Array(12 + query.bytes.length + (optBytes?.length ?? 0));
  out.set(header(id, query.flags & (RD | CD | AD), 1, optBytes === undefined ? 0 : 1));
  out.set(query.bytes, 12);
  if (optBytes !== undefined) out.set(optBytes, 12 + query.bytes.length);
  return out;
}

/** `bytes` with another message id: an upstream answer handed back to the client under its own id. */
export function withId(bytes: Uint8Array, id: number): Uint8Array {
  const copy = new Uint8Array(bytes);
  copy[0] = id >> 8;
  copy[1] = id & 255;
  return copy;
}

export type AnswerCheck =
  | { readonly ok: true; readonly rcode: number; readonly truncated: boolean; readonly records: readonly Answer[] }
  | { readonly ok: false; readonly reason: string };

/**
 * Check an upstream answer to `query` sent with `id`: a response with that id, opcode QUERY and the
 * same question (names compared case-insensitively). A truncated answer (TC) is not decoded — it is
 * passed on for the client to retry over TCP, and admits nothing.
 */
export function readAnswer(query: Query, id: number, bytes: Uint8Array): AnswerCheck {
  if (bytes.length < 12) return { ok: false, reason: `${bytes.length} bytes, shorter than a DNS header` };
  if (u16(bytes, 0) !== id) return { ok: false, reason: `id ${u16(bytes, 0)}, expected ${id}` };
  const flags = u16(bytes, 2);
  if (!(flags & QR) || flags & OPCODE) return { ok: false, reason: "not a response to a standard query" };
  const question = u16(bytes, 4) === 1 ? readQuestion(bytes) : undefined;
  if (
    question === undefined ||
    question.name.toLowerCase() !== query.name.toLowerCase() ||
    question.type !== query.type ||
    question.class !== query.class
  ) {
    return { ok: false, reason: "the answer's question is not the query's" };
  }
  const rcode = flags & 15;
  if (flags & TC) return { ok: true, rcode, truncated: true, records: [] };
  try {
    return {
      ok: true,
      rcode,
      truncated: false,
      records: decode(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).answers ?? [],
    };
  } catch (error) {
    return { ok: false, reason: `malformed answer: ${error instanceof Error ? error.message : String(error)}` };
  }
}

/** An address the query name was told, to be admitted for `ttl` seconds. */
export interface AnswerAddress {
  readonly family: Family;
  /** Canonical text (`parseAddress` then `formatAddress`): safe to put in a ruleset. */
  readonly address: string;
  readonly ttl: number;
  /** The owner name in the chain and the record type it came from, for logs. */
  readonly owner: string;
  readonly record: "A" | "AAAA" | "HTTPS" | "SVCB";
}

export interface AnswerAddresses {
  /** The query name and the CNAME targets reached from it, lower case, in order. */
  readonly chain: readonly string[];
  /** One entry per address, with the longest TTL it was given. */
  readonly addresses: readonly AnswerAddress[];
}

const MAX_CHAIN = 16;

/**
 * The addresses an answer gives `name`: A/AAAA records and HTTPS/SVCB `ipv4hint`/`ipv6hint` whose
 * owner is the name or a name reached from it through CNAME records of the answer section. Records
 * of any other owner are ignored — an upstream must not admit addresses for names it was not asked —
 * and so are addresses that do not parse as their record's family.
 */
export function answerAddresses(name: string, records: readonly Answer[]): AnswerAddresses {
  const inClass = records.filter(
    (record): record is Exclude<Answer, OptAnswer> => record.type !== "OPT" && (record.class ?? "IN") === "IN",
  );
  const chain = [name.toLowerCase().replace(/\.$/, "")];
  for (let grew = true; grew && chain.length < MAX_CHAIN; ) {
    grew = false;
    for (const record of inClass) {
      if (record.type !== "CNAME" || !chain.includes(record.name.toLowerCase())) continue;
      const target = record.data.toLowerCase();
      if (!chain.includes(target) && chain.length < MAX_CHAIN) [chain[chain.length], grew] = [target, true];
    }
  }
  const found = new Map<string, AnswerAddress>();
  const add = (family: Family, text: string, ttl: number, owner: string, record: AnswerAddress["record"]) => {
    const parsed = parseAddress(text);
    if (parsed === undefined || parsed.family !== family) return;
    const address = formatAddress(parsed.family, parsed.words);
    const seen = found.get(address);
    if (seen === undefined || seen.ttl < ttl) found.set(address, { family, address, ttl, owner, record });
  };
  for (const record of inClass) {
    const owner = record.name.toLowerCase();
    if (!chain.includes(owner)) continue;
    const ttl = record.ttl ?? 0;
    if (record.type === "A") add(4, record.data, ttl, owner, "A");
    else if (record.type === "AAAA") add(6, record.data, ttl, owner, "AAAA");
    else if ((record.type as string) === "UNKNOWN_65" || (record.type as string) === "UNKNOWN_64") {
      const hints = svcbHints(record.data as Uint8Array);
      const kind = (record.type as string) === "UNKNOWN_65" ? "HTTPS" : "SVCB";
      for (const text of hints?.v4 ?? []) add(4, text, ttl, owner, kind);
      for (const text of hints?.v6 ?? []) add(6, text, ttl, owner, kind);
    }
  }
  return { chain, addresses: [...found.values()] };
}
