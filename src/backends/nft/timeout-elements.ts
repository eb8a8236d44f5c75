/**
 * Elements of nft sets with `flags timeout` (the DNS proxy's admitted addresses): read from
 * `nft -j list set`, and rendered back as an `elements = { ... }` line so that a full replace of the
 * table (`delete table` + the new definition, one transaction) carries them over with the time
 * they had left instead of flushing them.
 */
import * as v from "valibot";
import { type Family, formatAddress, parseAddress } from "../../net/ip.ts";

/** One element as the kernel holds it. */
export interface TimeoutElement {
  /** Canonical address text (validated: it is printed into nft text). */
  readonly address: string;
  readonly family: Family;
  /** The element's timeout, whole seconds. */
  readonly timeoutSeconds: number;
  /** What is left of it, milliseconds (nft -j gives whole seconds, rounded down). */
  readonly expiresInMs: number;
}

// nft 1.0.6: {"nftables": [{"metainfo": ...}, {"set": {..., "elem": [{"elem": {"val": "198.51.100.9",
// "timeout": 600, "expires": 598}}, "198.51.100.12"]}}]}; a plain string is an element without a
// timeout; an empty set has no "elem".
const ElemSchema = v.union([
  v.string(),
  v.object({
    elem: v.object({
      val: v.string(),
      timeout: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
      expires: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
    }),
  }),
]);
const ListingSchema = v.object({
  nftables: v.array(
    v.union([
      v.object({ set: v.object({ name: v.string(), type: v.string(), elem: v.optional(v.array(ElemSchema)) }) }),
      v.object({ metainfo: v.unknown() }),
    ]),
  ),
});

const TYPE_FAMILY: Readonly<Record<string, Family>> = { ipv4_addr: 4, ipv6_addr: 6 };

/**
 * The elements with a timeout in the output of `nft -j list set inet T S` (`json`), or why it
 * cannot be read. Elements without a timeout are not ones we added and are left out.
 */
export function parseTimeoutElements(json: string): { ok: true; elements: TimeoutElement[] } | { ok: false; reason: string } {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (error) {
    return { ok: false, reason: `nft -j output is not JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
  const parsed = v.safeParse(ListingSchema, data);
  if (!parsed.success) return { ok: false, reason: `unexpected nft -j set listing: ${v.summarize(parsed.issues)}` };
  const elements: TimeoutElement[] = [];
  for (const item of parsed.output.nftables) {
    if (!("set" in item)) continue;
    const family = TYPE_FAMILY[item.set.type];
    if (family === undefined) return { ok: false, reason: `set ${item.set.name} has type ${item.set.type}, not ipv4_addr or ipv6_addr` };
    for (const elem of item.set.elem ?? []) {
      if (typeof elem === "string" || elem.elem.timeout === undefined) continue;
      const address = parseAddress(elem.elem.val);
      if (address === undefined || address.family !== family)
        return { ok: false, reason: `set ${item.set.name} holds ${JSON.stringify(elem.elem.val)}, not an IPv${family} address` };
      elements.push({
        address: formatAddress(family, address.words),
        family,
        timeoutSeconds: elem.elem.timeout,
        expiresInMs: (elem.elem.expires ?? elem.elem.timeout) * 1000,
      });
    }
  }
  return { ok: true, elements };
}

/**
 * `elements = { 198.51.100.9 timeout 600s expires 598000ms, ... }` for a set definition (nft 1.0.6
 * accepts `expires` there, up to the timeout), or "" when there is none. Sorted by address text.
 */
export function renderTimeoutElements(elements: readonly TimeoutElement[]): string {
  const live = elements.filter((e) => e.expiresInMs > 0 && e.timeoutSeconds > 0);
  if (live.length === 0) return "";
  const items = live
    .map((e) => `${e.address} timeout ${e.timeoutSeconds}s expires ${Math.min(Math.ceil(e.expiresInMs), e.timeoutSeconds * 1000)}ms`)
    .sort();
  return `elements = { ${items.join(", ")} }`;
}
