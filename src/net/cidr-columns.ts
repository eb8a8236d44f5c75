/**
 * Many CIDRs scanned from one text (a 100,000-line allow file) into typed arrays, without an object
 * per entry: sorted as indices, then turned into `Cidr` objects in sorted order. Objects allocated in
 * the order they are later read in (config, policy and renderer all walk the sorted list) are read
 * from memory in order; allocated in file order and read sorted, each visit was a cache miss.
 */
import { makeCidr, SCANNED, scanCidrWords, type Cidr } from "./ip.ts";
import { radixOrder } from "./radix.ts";

export interface CidrColumns {
  count: number;
  /** Per entry: what `scanCidrWords` returned (prefix length and `SCANNED` flags). */
  info: Uint16Array;
  /** Four per entry: the network; IPv4 in the first (the other three are not read). */
  words: Uint32Array;
  /** Per entry: where its text is, `[start, end)`, and the caller's tag (a line number). */
  start: Uint32Array;
  end: Uint32Array;
  tag: Uint32Array;
}

export const cidrColumns = (capacity = 1024): CidrColumns => ({
  count: 0,
  info: new Uint16Array(capacity),
  words: new Uint32Array(4 * capacity),
  start: new Uint32Array(capacity),
  end: new Uint32Array(capacity),
  tag: new Uint32Array(capacity),
});

function grow(c: CidrColumns): void {
  const bigger = <A extends Uint16Array | Uint32Array>(a: A): A => {
    const b = new (a.constructor as new (n: number) => A)(2 * a.length);
    b.set(a);
    return b;
  };
  [c.info, c.words, c.start, c.end, c.tag] = [bigger(c.info), bigger(c.words), bigger(c.start), bigger(c.end), bigger(c.tag)];
}

/** Scan `text[start, end)` as `parseCidr` would into the next entry; -1 (and no entry) when it is not a CIDR. */
export function addScanned(c: CidrColumns, text: string, start: number, end: number, tag: number): number {
  if (c.count === c.info.length) grow(c);
  const i = c.count;
  const info = scanCidrWords(text, start, end, c.words, 4 * i);
  if (info < 0) return -1;
  c.info[i] = info;
  c.start[i] = start;
  c.end[i] = end;
  c.tag[i] = tag;
  c.count++;
  return info;
}

/** An entry parsed some other way, to be sorted with the rest; its index. */
export function addCidr(c: CidrColumns, cidr: Cidr, tag: number): number {
  if (c.count === c.info.length) grow(c);
  const i = c.count++;
  for (let w = 0; w < 4; w++) c.words[4 * i + w] = cidr.words[w] ?? 0;
  [c.info[i], c.start[i], c.end[i], c.tag[i]] = [cidr.prefix | (cidr.family === 6 ? SCANNED.v6 : 0), 0, 0, tag];
  return i;
}

/** Entry `i` as a `Cidr`; its text is cut from `text` when it is canonical there already. */
export function cidrAt(c: CidrColumns, i: number, text: string): Cidr {
  const info = c.info[i] ?? 0;
  const family = info & SCANNED.v6 ? 6 : 4;
  const w = 4 * i;
  const words = family === 4 ? [c.words[w] ?? 0] : [c.words[w] ?? 0, c.words[w + 1] ?? 0, c.words[w + 2] ?? 0, c.words[w + 3] ?? 0];
  const prefix = info & 0xff;
  if (info & SCANNED.canonical) return { family, words, prefix, text: text.slice(c.start[i], c.end[i]) };
  return makeCidr(family, words, prefix);
}

/**
 * The entries' indices in `compareCidr` order, stable: a radix sort (`radixOrder`) of each family
 * apart, IPv4 first. Apart, an IPv4 entry takes 5 bytes (prefix and address) instead of the 18 of a
 * mixed list, and bytes that are the same across one family (an IPv6 list's first 32 bits, its /64s'
 * last 64) are skipped.
 */
export function cidrOrder(c: CidrColumns): Uint32Array {
  const order = new Uint32Array(c.count);
  let next = 0;
  for (const members of byFamily(c)) {
    const m = members.length;
    const wordCount = m > 0 && (c.info[members[0] ?? 0] ?? 0) & SCANNED.v6 ? 4 : 1;
    const rows = 1 + 4 * wordCount;
    const digits = new Uint8Array(m * rows);
    for (let j = 0; j < m; j++) {
      const i = members[j] ?? 0;
      digits[j] = (c.info[i] ?? 0) & 0xff;
      for (let w = 0; w < wordCount; w++) {
        const word = c.words[4 * i + w] ?? 0;
        const row = 1 + 4 * (wordCount - 1 - w); // the most significant word gets the highest rows
        digits[row * m + j] = word & 0xff;
        digits[(row + 1) * m + j] = (word >>> 8) & 0xff;
        digits[(row + 2) * m + j] = (word >>> 16) & 0xff;
        digits[(row + 3) * m + j] = word >>> 24;
      }
    }
    const sorted = radixOrder(digits, m, rows);
    for (let j = 0; j < m; j++) order[next++] = members[sorted === undefined ? j : (sorted[j] ?? 0)] ?? 0;
  }
  return order;
}

/** The indices of the IPv4 entries and of the IPv6 ones, each in order. */
function byFamily(c: CidrColumns): [Uint32Array, Uint32Array] {
  let v6 = 0;
  for (let i = 0; i < c.count; i++) if ((c.info[i] ?? 0) & SCANNED.v6) v6++;
  const members: [Uint32Array, Uint32Array] = [new Uint32Array(c.count - v6), new Uint32Array(v6)];
  for (let i = 0, j4 = 0, j6 = 0; i < c.count; i++) {
    if ((c.info[i] ?? 0) & SCANNED.v6) members[1][j6++] = i;
    else members[0][j4++] = i;
  }
  return members;
}
