/**
 * The TTLs a client is told: never longer than an admission lasts (`--max-ttl`, without the
 * grace), so a stub or app that caches by TTL asks again before the address it connects to expires.
 * A shorter TTL, 0 included ("do not cache"), is passed on as it is: its addresses are admitted for
 * `--min-ttl` + `--grace` all the same, which covers the connection that follows the answer.
 */

const OPT = 41;
/** The header's truncation flag, in its third byte. */
const TC = 0x02;

/** Past the name at `at` (labels or a compression pointer): the offset after it, or -1. */
function skipName(bytes: Uint8Array, at: number): number {
  for (let labels = 0; labels < 128 && at < bytes.length; labels++) {
    const length = bytes[at] as number;
    if (length === 0) return at + 1;
    if ((length & 0xc0) === 0xc0) return at + 2 <= bytes.length ? at + 2 : -1;
    if ((length & 0xc0) !== 0) return -1;
    at += 1 + length;
  }
  return -1;
}

/**
 * A copy of the message with every record's TTL (answers, CNAMEs, authority and additional
 * records; not the OPT pseudo-record, whose TTL field holds EDNS flags) at most `maxSeconds`;
 * undefined when the message cannot be walked (a reply the caller must not pass on), except a
 * truncated one cut mid-record: its header and question, TC set, no records.
 */
export function clampTtls(message: Uint8Array, maxSeconds: number): Uint8Array | undefined {
  if (message.length < 12) return undefined;
  const bytes = new Uint8Array(message);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const max = Math.max(0, Math.floor(maxSeconds));
  let at = 12;
  for (let q = view.getUint16(4); q > 0; q--) {
    at = skipName(bytes, at);
    if (at < 0 || at + 4 > bytes.length) return undefined;
    at += 4;
  }
  const questionEnd = at;
  // A truncated answer (TC) cut mid-record: the header and question with no records still tell the client to retry over TCP.
  const cut = () => ((view.getUint8(2) & TC) === 0 ? undefined : withoutRecords(bytes.slice(0, questionEnd)));
  const records = view.getUint16(6) + view.getUint16(8) + view.getUint16(10);
  for (let r = 0; r < records; r++) {
    at = skipName(bytes, at);
    if (at < 0 || at + 10 > bytes.length) return cut();
    const type = view.getUint16(at);
    if (type !== OPT && view.getUint32(at + 4) > max) view.setUint32(at + 4, max);
    at += 10 + view.getUint16(at + 8);
    if (at > bytes.length) return cut();
  }
  return bytes;
}

/** `head` (a header and its questions) with the answer, authority and additional counts zero. */
function withoutRecords(head: Uint8Array): Uint8Array {
  head.fill(0, 6, 12);
  return head;
}
