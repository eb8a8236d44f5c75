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
