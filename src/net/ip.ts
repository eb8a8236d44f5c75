/**
 * IPv4/IPv6 addresses and CIDRs as plain data: strict parsing, canonical text, ordering and
 * containment. Every address that reaches the ruleset goes through `parseCidr`, so nothing from
 * configuration or DNS is ever copied into nft text unchecked.
 *
 * Addresses are 32-bit words in plain numbers, parsed by scanning character codes: this runs for
 * every entry of a 100,000-line allow file, where BigInt arithmetic, `split` and regular
 * expressions took most of the time.
 */

import { radixOrder } from "./radix.ts";

export type Family = 4 | 6;

/** An address as unsigned 32-bit words, most significant first: one for IPv4, four for IPv6. */
export type Words = readonly number[];

/** A network in canonical form: host bits cleared, `text` is what the renderers print. */
export interface Cidr {
  readonly family: Family;
  /** The network address. */
  readonly words: Words;
  readonly prefix: number;
  /** Canonical text: a bare address for a full-length prefix, `addr/prefix` otherwise. */
  readonly text: string;
}

export type ParsedCidr =
  | { readonly ok: true; readonly cidr: Cidr; readonly hostBitsSet: boolean }
  | { readonly ok: false; readonly reason: string };

const width = (family: Family): number => (family === 4 ? 32 : 128);

const DOT = 46;
const COLON = 58;

/** Dotted-quad IPv4 in `text[start, end)` without leading zeros (which some parsers read as octal); -1 if invalid. */
function scanIpv4(text: string, start: number, end: number): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return -1;
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else if (c === DOT && digits > 0 && dots < 3) {
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else return -1;
  }
  return dots === 3 && digits > 0 ? value * 256 + octet : -1;
}

const hexDigit = (c: number): number => (c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1);

/** Scratch space for the eight 16-bit groups of the address being parsed or printed. */
const groups = new Uint16Array(8);

/**
 * The longest run (≥2) of zero groups in `groups`, leftmost on ties: what RFC 5952 compresses to
 * `::`; its start (-1: none) and length as `start * 16 + length` (no object for each of 100,000 addresses).
 */
function longestZeros(): number {
  let start = -1;
  let length = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > length) [start, length] = [i, j - i];
    i = j;
  }
  return start * 16 + length;
}

/** An address scanned from text; `canonical` when the text is exactly what `formatAddress` prints. */
interface Scanned {
  readonly family: Family;
  readonly words: Words;
  readonly canonical: boolean;
}

/**
 * RFC 4291 text form in `text[start, end)`, including `::` and a trailing dotted quad; zone ids are
 * refused. The eight groups are left in `groups`; returns -1 if invalid, 1 when the text is exactly
 * what `formatAddress` prints, 0 otherwise.
 */
function scanIpv6Groups(text: string, start: number, end: number): number {
  if (end === start || end - start > 45) return -1;
  let count = 0;
  let gap = -1;
  let i = start;
  // RFC 5952 form so far: lower case, no leading zeros, no dotted quad
  let plain = true;
  if (text.charCodeAt(i) === COLON) {
    if (text.charCodeAt(i + 1) !== COLON) return -1;
    gap = 0;
    i += 2;
  }
  while (i < end) {
    let value = 0;
    let j = i;
    for (let c = text.charCodeAt(j), h = hexDigit(c); h >= 0 && j < end; c = text.charCodeAt(++j), h = hexDigit(c)) {
      value = value * 16 + h;
      if (c >= 65 && c <= 70) plain = false;
    }
    if (j < end && text.charCodeAt(j) === DOT) {
      const v4 = scanIpv4(text, i, end);
      if (v4 < 0 || count > 6) return -1;
      groups[count++] = v4 >>> 16;
      groups[count++] = v4 & 0xffff;
      plain = false;
      break;
    }
    if (j === i || j - i > 4 || count === 8) return -1;
    if (j - i > 1 && text.charCodeAt(i) === 48) plain = false;
    groups[count++] = value;
    if (j === end) break;
    if (text.charCodeAt(j) !== COLON) return -1;
    if (text.charCodeAt(j + 1) === COLON) {
      if (gap >= 0) return -1;
      gap = count;
      i = j + 2;
    } else {
      i = j + 1;
      if (i === end) return -1;
    }
  }
  if (gap < 0 ? count !== 8 : count > 7) return -1;
  const zeros = 8 - count;
  if (gap >= 0) {
    for (let k = count - 1; k >= gap; k--) groups[k + zeros] = groups[k] ?? 0;
    groups.fill(0, gap, gap + zeros);
  }
  // Canonical when `::` stands for exactly the run formatIpv6 would compress (or for none).
  const run = plain ? longestZeros() : 0;
  return plain && (gap < 0 ? run < 0 : run === gap * 16 + zeros) ? 1 : 0;
}

/** Word `w` (0-3) of the IPv6 address in `groups`. */
const groupWord = (w: number): number => (groups[2 * w] ?? 0) * 65536 + (groups[2 * w + 1] ?? 0);

function scanIpv6(text: string, start: number, end: number): Scanned | undefined {
  const scanned = scanIpv6Groups(text, start, end);
  if (scanned < 0) return undefined;
  return { family: 6, words: [groupWord(0), groupWord(1), groupWord(2), groupWord(3)], canonical: scanned === 1 };
}

/** IPv4 text that parses is canonical: decimal octets without leading zeros. */
function scanAddress(text: string, start: number, end: number): Scanned | undefined {
  const v4 = scanIpv4(text, start, end);
  if (v4 >= 0) return { family: 4, words: [v4], canonical: true };
  const colon = text.indexOf(":", start);
  return colon >= 0 && colon < end ? scanIpv6(text, start, end) : undefined;
}

export function parseAddress(text: string): { family: Family; words: Words } | undefined {
  const scanned = scanAddress(text, 0, text.length);
  return scanned && { family: scanned.family, words: scanned.words };
}

// Texts are built with `join`, which makes flat strings: concatenation makes ropes, and flattening
// 100,000 of them later (to compare or print them) costs more than building them.
const formatIpv4 = (w: number): string => [w >>> 24, (w >>> 16) & 255, (w >>> 8) & 255, w & 255].join(".");

/** RFC 5952: lower case, the longest run (≥2) of zero groups compressed, leftmost on ties. */
function formatIpv6(words: Words): string {
  for (let w = 0; w < 4; w++) {
    groups[2 * w] = (words[w] ?? 0) >>> 16;
    groups[2 * w + 1] = (words[w] ?? 0) & 0xffff;
  }
  const run = longestZeros();
  const bestStart = run < 0 ? -1 : Math.floor(run / 16);
  const bestLen = run < 0 ? 1 : run % 16;
  const parts: string[] = [];
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      // "" between separators is the "::"; one more at either end, where it has no neighbour
      parts.push(...(i === 0 ? [""] : []), "", ...(bestStart + bestLen === 8 ? [""] : []));
      i += bestLen - 1;
    } else parts.push((groups[i] ?? 0).toString(16));
  }
  return parts.join(":");
}

export function formatAddress(family: Family, words: Words): string {
  return family === 4 ? formatIpv4(words[0] ?? 0) : formatIpv6(words);
}

/** Word `index` of an address with only the first `prefix` bits kept. */
const maskedWord = (word: number, index: number, prefix: number): number => {
  const kept = prefix - 32 * index;
  if (kept >= 32) return word;
  if (kept <= 0) return 0;
  return (word & (0xffffffff << (32 - kept))) >>> 0;
};

/** The network of `words`/`prefix`; `words` itself when no host bits are set. */
function networkOf(words: Words, prefix: number): Words {
  for (let i = 0; i < words.length; i++) {
    if (maskedWord(words[i] ?? 0, i, prefix) !== words[i]) return words.map((word, index) => maskedWord(word, index, prefix));
  }
  return words;
}

export function makeCidr(family: Family, words: Words, prefix: number): Cidr {
  const network = networkOf(words, prefix);
  const address = formatAddress(family, network);
  return { family, words: network, prefix, text: prefix === width(family) ? address : [address, prefix].join("/") };
}

/** The prefix length in `text(slash, end)`: 0-`max` in decimal without leading zeros; -1 if invalid. */
function scanPrefix(text: string, slash: number, end: number, max: number): number {
  const digits = end - slash - 1;
  if (digits < 1 || digits > 3 || (digits > 1 && text.charCodeAt(slash + 1) === 48)) return -1;
  let prefix = 0;
  for (let i = slash + 1; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    prefix = prefix * 10 + (c - 48);
  }
  return prefix <= max ? prefix : -1;
}

/** Parse `addr` or `addr/prefix`; host bits are cleared and reported, never an error. */
export function parseCidr(text: string): ParsedCidr {
  const slash = text.indexOf("/");
  const addr = scanAddress(text, 0, slash < 0 ? text.length : slash);
  if (addr === undefined) return { ok: false, reason: "not an IPv4 or IPv6 address" };
  const max = width(addr.family);
  const prefix = slash < 0 ? max : scanPrefix(text, slash, text.length, max);
  if (prefix < 0) return { ok: false, reason: `prefix must be 0-${max}` };
  const network = networkOf(addr.words, prefix);
  const hostBitsSet = network !== addr.words;
  if (!addr.canonical || hostBitsSet || (slash >= 0 && prefix === max))
    return { ok: true, cidr: makeCidr(addr.family, network, prefix), hostBitsSet };
  // Already in canonical form (as most of a long allow file is): keep the text instead of printing it again.
  return { ok: true, cidr: { family: addr.family, words: network, prefix, text }, hostBitsSet };
}

/** What `scanCidrWords` found besides the prefix length (the low 8 bits of its result). */
export const SCANNED = {
  v6: 0x100,
  /** The text is exactly the canonical text (`Cidr.text`) of the network. */
  canonical: 0x200,
  /** Host bits were set, and cleared in the words. */
  hostBits: 0x400,
} as const;

/**
 * `parseCidr` of `text[start, end)` without an object, for a list of 100,000: the network's words
 * into `words` from `at` (one for IPv4, four for IPv6) and the rest packed in the result, the
 * prefix length plus `SCANNED` flags; -1 when `parseCidr` would refuse the text.
 */
export function scanCidrWords(text: string, start: number, end: number, words: Uint32Array, at: number): number {
  let slash = start;
  while (slash < end && text.charCodeAt(slash) !== 47) slash++;
  const v4 = scanIpv4(text, start, slash);
  let scanned = 1;
  if (v4 >= 0) words[at] = v4;
  else {
    scanned = scanIpv6Groups(text, start, slash);
    if (scanned < 0) return -1;
    for (let w = 0; w < 4; w++) words[at + w] = groupWord(w);
  }
  const family: Family = v4 >= 0 ? 4 : 6;
  const max = width(family);
  const prefix = slash === end ? max : scanPrefix(text, slash, end, max);
  if (prefix < 0) return -1;
  let hostBits = false;
  for (let w = 0; w < (family === 4 ? 1 : 4); w++) {
    const word = words[at + w] ?? 0;
    const network = maskedWord(word, w, prefix);
    if (network !== word) [hostBits, words[at + w]] = [true, network];
  }
  const canonical = scanned === 1 && !hostBits && !(slash < end && prefix === max);
  return prefix | (family === 6 ? SCANNED.v6 : 0) | (canonical ? SCANNED.canonical : 0) | (hostBits ? SCANNED.hostBits : 0);
}

/** Parse text already known to be valid (constants, canonical output); throws otherwise. */
export function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(`invalid CIDR constant ${text}: ${parsed.reason}`);
  return parsed.cidr;
}

/** The bytes the `compareCidr` order is, least significant first: prefix, the words' 16 bytes, family. */
export const CIDR_DIGITS = 18;

/** Writes item `i`'s `CIDR_DIGITS` bytes into `digits` (byte `d` of item `i` at `d * n + i`, see `radixOrder`); IPv4 in `w0`. */
export function cidrDigits(
  digits: Uint8Array,
  n: number,
  i: number,
  family: Family,
  prefix: number,
  w0: number,
  w1: number,
  w2: number,
  w3: number,
): void {
  digits[i] = prefix;
  const word = (w: number, row: number) => {
    digits[row * n + i] = w & 0xff;
    digits[(row + 1) * n + i] = (w >>> 8) & 0xff;
    digits[(row + 2) * n + i] = (w >>> 16) & 0xff;
    digits[(row + 3) * n + i] = w >>> 24;
  };
  // the most significant word gets the highest rows; IPv4 leaves the others at 0, as compareCidr's shorter words
  word(w0, 13);
  word(w1, 9);
  word(w2, 5);
  word(w3, 1);
  digits[17 * n + i] = family;
}

export function contains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || outer.prefix > inner.prefix) return false;
  for (let i = 0; i < outer.words.length; i++) {
    if (maskedWord(inner.words[i] ?? 0, i, outer.prefix) !== outer.words[i]) return false;
  }
  return true;
}

/** Total order: IPv4 before IPv6, then by network address, then shorter prefix first. */
export function compareCidr(a: Cidr, b: Cidr): number {
  if (a.family !== b.family) return a.family - b.family;
  for (let i = 0; i < a.words.length; i++) {
    const x = a.words[i] ?? 0;
    const y = b.words[i] ?? 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return a.prefix - b.prefix;
}

/**
 * `items` sorted by `compareCidr` of their networks, stable. A comparator function costs hundreds
 * of ms for 100,000 entries and string keys cost tens of MB, so this is a radix sort of indices
 * (`radixOrder`) on the bytes of each item's network.
 */
export function sortByCidr<T>(items: readonly T[], cidrOf: (item: T) => Cidr): T[] {
  const n = items.length;
  if (n < 256) return [...items].sort((a, b) => compareCidr(cidrOf(a), cidrOf(b)));
  const digits = new Uint8Array(n * CIDR_DIGITS);
  for (let i = 0; i < n; i++) {
    const { family, words, prefix } = cidrOf(items[i] as T);
    cidrDigits(digits, n, i, family, prefix, words[0] ?? 0, words[1] ?? 0, words[2] ?? 0, words[3] ?? 0);
  }
  const order = radixOrder(digits, n, CIDR_DIGITS);
  if (order === undefined) return [...items];
  const sorted: T[] = [];
  for (let i = 0; i < n; i++) sorted.push(items[order[i] ?? 0] as T);
  return sorted;
}

/**
 * Lists each sorted by `compareCidr` merged into one sorted list, stable: on equal networks, items
 * of an earlier list first. Each list is placed into the result so far by binary search for each of
 * its items when it is the shorter (a few `--allow` entries among 100,000 of a file), so a long
 * list is copied, not compared item by item.
 */
export function mergeByCidr<T>(lists: readonly (readonly T[])[], cidrOf: (item: T) => Cidr): T[] {
  let merged: readonly T[] = [];
  for (const list of lists)
    merged = merged.length <= list.length ? mergeTwo(list, merged, cidrOf, false) : mergeTwo(merged, list, cidrOf, true);
  return [...merged];
}

/** `few`'s items placed among `many`'s by binary search; on equal networks `few`'s after `many`'s (`fewLast`) or before. */
function mergeTwo<T>(many: readonly T[], few: readonly T[], cidrOf: (item: T) => Cidr, fewLast: boolean): readonly T[] {
  if (few.length === 0) return many;
  const merged: T[] = [];
  let from = 0;
  for (const item of few) {
    const cidr = cidrOf(item);
    let [low, high] = [from, many.length];
    while (low < high) {
      const middle = (low + high) >>> 1;
      const order = compareCidr(cidrOf(many[middle] as T), cidr);
      if (order < 0 || (order === 0 && fewLast)) low = middle + 1;
      else high = middle;
    }
    while (from < low) merged.push(many[from++] as T);
    merged.push(item);
  }
  while (from < many.length) merged.push(many[from++] as T);
  return merged;
}
