import { formatAddress } from "../net/ip.ts";
import { IF_INET6 } from "../net/interfaces.ts";

/** Where the kernel lists this network namespace's IPv4 routing tables, its local routes among them. */
export const FIB_TRIE = "/proc/net/fib_trie";
export { IF_INET6 };

/**
 * This namespace's own addresses and networks, as the kernel routes them: a packet to one is
 * delivered here, through `lo`. IPv4: each `host LOCAL` route of `/proc/net/fib_trie` (the
 * interfaces' addresses, 127.0.0.0/8, `ip route add local` ranges); IPv6: each address of
 * `/proc/net/if_inet6`, and ::1. Sorted text, unique; malformed lines are skipped. Pure.
 */
export function localNetworks(fibTrie: string | undefined, ifInet6: string | undefined): string[] {
  const found = new Set<string>(["127.0.0.0/8", "::1"]);
  let last: string | undefined;
  for (const line of (fibTrie ?? "").split("\n")) {
    const leaf = /^\s*\|-- ([0-9]{1,3}(?:\.[0-9]{1,3}){3})\s*$/.exec(line);
    if (leaf) last = leaf[1];
    const route = /^\s*\/([0-9]{1,2}) host LOCAL\s*$/.exec(line);
    if (route && last !== undefined && Number(route[1]) <= 32) found.add(route[1] === "32" ? last : `${last}/${route[1]}`);
  }
  for (const line of (ifInet6 ?? "").split("\n")) {
    const hex = line.trim().split(/\s+/)[0];
    if (hex === undefined || !/^[0-9a-f]{32}$/i.test(hex)) continue;
    found.add(
      formatAddress(
        6,
        Array.from({ length: 4 }, (_, i) => Number.parseInt(hex.slice(i * 8, i * 8 + 8), 16)),
      ),
    );
  }
  return [...found].sort();
}
