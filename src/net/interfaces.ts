import { contains, makeCidr, sortByCidr, type Cidr } from "./ip.ts";

/** Where `/proc/net/if_inet6` lists this network namespace's IPv6 addresses. */
export const IF_INET6 = "/proc/net/if_inet6";

/** `/proc/net/if_inet6` scope of a global address (ULAs, fc00::/7, are global scope too). */
const SCOPE_GLOBAL = 0;

/**
 * The IPv6 prefixes on the links of this namespace: the prefix of each global or ULA address on a
 * non-loopback interface, from `/proc/net/if_inet6` (32 hex digits, ifindex, prefix length, scope,
 * flags, device; undefined: no IPv6). Neighbours on such a link are solicited at their global
 * addresses (Linux sends an NS from its own global address, so the NA goes back to it). Sorted,
 * unique, a prefix inside a shorter one left out; malformed lines are skipped. Pure.
 */
export function onLinkPrefixes(ifInet6: string | undefined): Cidr[] {
  const found: Cidr[] = [];
  for (const line of (ifInet6 ?? "").split("\n")) {
    const [hex, , prefixHex, scopeHex, , device] = line.trim().split(/\s+/);
    if (hex === undefined || !/^[0-9a-f]{32}$/i.test(hex) || device === undefined || device === "lo") continue;
    if (!/^[0-9a-f]{2}$/i.test(prefixHex ?? "") || !/^[0-9a-f]{2}$/i.test(scopeHex ?? "")) continue;
    const prefix = Number.parseInt(prefixHex ?? "", 16);
    if (prefix > 128 || Number.parseInt(scopeHex ?? "", 16) !== SCOPE_GLOBAL) continue;
    const words = Array.from({ length: 4 }, (_, i) => Number.parseInt(hex.slice(i * 8, i * 8 + 8), 16));
    found.push(makeCidr(6, words, prefix));
  }
  const kept: Cidr[] = [];
  for (const prefix of sortByCidr(found, (c) => c)) if (!kept.some((outer) => contains(outer, prefix))) kept.push(prefix);
  return kept;
}

/** Where this network namespace's IPv4 routes (`/proc/net/route`), IPv6 routes and IPv4 local addresses are listed. */
export const ROUTE_V4 = "/proc/net/route";
export const ROUTE_V6 = "/proc/net/ipv6_route";
export const FIB_TRIE = "/proc/net/fib_trie";

/** One of this namespace's own addresses, on-link networks or gateways, and which. */
export interface LocalNet {
  readonly cidr: Cidr;
  readonly what: string;
}

/** `/proc/net/route`'s little-endian hex IPv4 word as a number; undefined when malformed. */
const routeWord = (hex: string | undefined): number | undefined =>
  hex !== undefined && /^[0-9a-f]{8}$/i.test(hex) ? Number.parseInt(hex.match(/../g)!.reverse().join(""), 16) : undefined;

/** A contiguous netmask's prefix length; -1 for any other mask. */
const prefixOfMask = (mask: number): number => {
  const prefix = mask === 0 ? 0 : 32 - Math.log2((~mask >>> 0) + 1);
  return Number.isInteger(prefix) ? prefix : -1;
};

const hexWords = (hex: string): number[] => Array.from({ length: 4 }, (_, i) => Number.parseInt(hex.slice(i * 8, i * 8 + 8), 16));

/**
 * This namespace's own addresses, the networks on its links and its gateways, read from /proc (what
 * the kernel holds for the reading process's network namespace): what `--refuse-private-answers`
 * keeps DNS from opening besides the private ranges. Loopback and a route to everything (`/0`) are
 * left out. Unique by network; malformed lines are skipped. Pure.
 */
export function localNetworks(files: {
  readonly route?: string;
  readonly ipv6Route?: string;
  readonly fibTrie?: string;
  readonly ifInet6?: string;
}): LocalNet[] {
  const found = new Map<string, LocalNet>();
  const add = (cidr: Cidr, what: string) => {
    if (cidr.prefix > 0 && !found.has(cidr.text)) found.set(cidr.text, { cidr, what });
  };
  // fib_trie: a leaf `|-- A.B.C.D` followed by `/32 host LOCAL` is an address of this namespace.
  const trie = (files.fibTrie ?? "").split("\n");
  for (let i = 0; i + 1 < trie.length; i++) {
    const leaf = /^\s*\|-- (\d+\.\d+\.\d+\.\d+)\s*$/.exec(trie[i] ?? "")?.[1];
    if (leaf === undefined || !/^\s*\/32 host LOCAL\s*$/.test(trie[i + 1] ?? "") || leaf.startsWith("127.")) continue;
    const words = leaf.split(".").map(Number);
    if (words.every((n) => n <= 255))
      add(makeCidr(4, [((words[0]! << 24) | (words[1]! << 16) | (words[2]! << 8) | words[3]!) >>> 0], 32), "address");
  }
  for (const line of (files.route ?? "").split("\n").slice(1)) {
    const [device, destination, gateway, , , , , mask] = line.trim().split(/\s+/);
    const [dest, via, netmask] = [routeWord(destination), routeWord(gateway), routeWord(mask)];
    if (device === undefined || device === "lo" || dest === undefined || via === undefined || netmask === undefined) continue;
    if (via !== 0) add(makeCidr(4, [via], 32), "gateway");
    else if (prefixOfMask(netmask) > 0) add(makeCidr(4, [dest], prefixOfMask(netmask)), "on-link network");
  }
  for (const line of (files.ifInet6 ?? "").split("\n")) {
    const [hex, , , , , device] = line.trim().split(/\s+/);
    if (hex !== undefined && /^[0-9a-f]{32}$/i.test(hex) && device !== undefined && device !== "lo")
      add(makeCidr(6, hexWords(hex), 128), "address");
  }
  for (const prefix of onLinkPrefixes(files.ifInet6)) add(prefix, "on-link network");
  for (const line of (files.ipv6Route ?? "").split("\n")) {
    const [, , , , nextHop, , , , , device] = line.trim().split(/\s+/);
    if (nextHop === undefined || !/^[0-9a-f]{32}$/i.test(nextHop) || device === undefined || device === "lo") continue;
    if (!/^0+$/.test(nextHop)) add(makeCidr(6, hexWords(nextHop), 128), "gateway");
  }
  return sortByCidr([...found.values()], (n) => n.cidr);
}
