/**
 * IPv4/IPv6 addresses and CIDRs as plain data: strict parsing, canonical text, ordering and
 * containment. Every address that reaches the ruleset goes through `parseCidr`, so nothing from
 * configuration or DNS is ever copied into nft text unchecked.
 */

export type Family = 4 | 6;

/** A network in canonical form: host bits cleared, `text` is what the renderers print. */
export interface Cidr {
  readonly family: Family;
  /** Network address as an unsigned integer (32 or 128 bits). */
  readonly bits: bigint;
  readonly prefix: number;
  /** Canonical text: a bare address for a full-length prefix, `addr/prefix` otherwise. */
  readonly text: string;
}

export type ParsedCidr =
  | { readonly ok: true; readonly cidr: Cidr; readonly hostBitsSet: boolean }
  | { readonly ok: false; readonly reason: string };

const width = (family: Family): number => (family === 4 ? 32 : 128);

const DEC_OCTET = /^(0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** Dotted-quad IPv4 without leading zeros (which some parsers read as octal). */
export function parseIpv4(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!DEC_OCTET.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

/** RFC 4291 text form, including `::` and a trailing dotted quad; zone ids are refused. */
export function parseIpv6(text: string): bigint | undefined {
  if (text.length === 0 || text.length > 45) return undefined;
  let head = text;
  let tailV4: bigint | undefined;
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".")) {
    tailV4 = parseIpv4(text.slice(lastColon + 1));
    if (tailV4 === undefined) return undefined;
    head = text.slice(0, lastColon + 1) + "0:0";
  }
  const halves = head.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (s: string): string[] | undefined => {
    if (s === "") return [];
    const groups = s.split(":");
    return groups.every((g) => HEX_GROUP.test(g)) ? groups : undefined;
  };
  const left = groupsOf(halves[0] ?? "");
  const right = halves.length === 2 ? groupsOf(halves[1] ?? "") : [];
  if (left === undefined || right === undefined) return undefined;
  const explicit = left.length + right.length;
  if (halves.length === 2 ? explicit > 7 : explicit !== 8) return undefined;
  const groups = [...left, ...Array<string>(8 - explicit).fill("0"), ...right];
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(parseInt(g, 16));
  if (tailV4 !== undefined) value = (value & ~0xffffffffn) | tailV4;
  return value;
}

export function parseAddress(text: string): { family: Family; bits: bigint } | undefined {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return { family: 4, bits: v4 };
  const v6 = text.includes(":") ? parseIpv6(text) : undefined;
  return v6 === undefined ? undefined : { family: 6, bits: v6 };
}

function formatIpv4(bits: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((bits >> shift) & 0xffn)).join(".");
}

/** RFC 5952: lower case, the longest run (≥2) of zero groups compressed, leftmost on ties. */
function formatIpv6(bits: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((bits >> BigInt(112 - 16 * i)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

export function formatAddress(family: Family, bits: bigint): string {
  return family === 4 ? formatIpv4(bits) : formatIpv6(bits);
}

const mask = (family: Family, prefix: number): bigint => {
  const w = BigInt(width(family));
  return ((1n << w) - 1n) ^ ((1n << (w - BigInt(prefix))) - 1n);
};

export function makeCidr(family: Family, bits: bigint, prefix: number): Cidr {
  const network = bits & mask(family, prefix);
  const address = formatAddress(family, network);
  return { family, bits: network, prefix, text: prefix === width(family) ? address : `${address}/${prefix}` };
}

/** Parse `addr` or `addr/prefix`; host bits are cleared and reported, never an error. */
export function parseCidr(text: string): ParsedCidr {
  const slash = text.indexOf("/");
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const addr = parseAddress(addrText);
  if (addr === undefined) return { ok: false, reason: "not an IPv4 or IPv6 address" };
  let prefix = width(addr.family);
  if (slash >= 0) {
    const prefixText = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText) || Number(prefixText) > width(addr.family)) {
      return { ok: false, reason: `prefix must be 0-${width(addr.family)}` };
    }
    prefix = Number(prefixText);
  }
  const cidr = makeCidr(addr.family, addr.bits, prefix);
  return { ok: true, cidr, hostBitsSet: cidr.bits !== addr.bits };
}

/** Parse text already known to be valid (constants, canonical output); throws otherwise. */
export function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(`invalid CIDR constant ${text}: ${parsed.reason}`);
  return parsed.cidr;
}

export function contains(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.family === inner.family &&
    outer.prefix <= inner.prefix &&
    (inner.bits & mask(outer.family, outer.prefix)) === outer.bits
  );
}

/** Total order: IPv4 before IPv6, then by network address, then shorter prefix first. */
export function compareCidr(a: Cidr, b: Cidr): number {
  if (a.family !== b.family) return a.family - b.family;
  if (a.bits !== b.bits) return a.bits < b.bits ? -1 : 1;
  return a.prefix - b.prefix;
}
