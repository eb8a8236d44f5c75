// What the benchmark loads: names with records, a large allow file, the hand-written floors and the
// naive shell baseline. Documentation addresses only (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
// 2001:db8::/32), used inside namespaces the benchmark creates.

export const nameOf = (i: number): string => `n${i}.bench.example`;

/**
 * Name i has 2 A and 2 AAAA records. Only 3 × 256 IPv4 documentation addresses exist, so IPv4
 * addresses repeat between names beyond ~250 names (the set then holds fewer IPv4 elements);
 * IPv6 addresses are all distinct.
 */
export function recordsFor(names: number): Record<string, string[]> {
  const records: Record<string, string[]> = {};
  for (let i = 0; i < names; i++) {
    const hex = i.toString(16);
    records[nameOf(i)] = [`203.0.113.${(i % 254) + 1}`, `192.0.2.${((i * 7) % 254) + 1}`, `2001:db8:ff::${hex}:1`, `2001:db8:ff::${hex}:2`];
  }
  return records;
}

/** A deterministic shuffle, so files look like a list someone keeps rather than a sorted dump. */
function shuffled<T>(items: T[]): T[] {
  let seed = 42;
  const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

/** `count` distinct, non-adjacent IPv6 /64 prefixes in 2001:db8::/32 (so no two merge into one range). */
export function cidrs(count: number): { shuffled: string[]; sorted: string[] } {
  const sorted = Array.from(
    { length: count },
    (_, i) => `2001:db8:${(0x1000 + (i >> 10)).toString(16)}:${((i & 1023) * 2).toString(16)}::/64`,
  );
  return { sorted, shuffled: shuffled([...sorted]) };
}

/**
 * IPv4 space for the mixed workload: 240.0.0.0/4 (reserved, never assigned or routed), because the
 * IPv4 documentation ranges hold 768 addresses in all, not 40,000 hosts and 20,000 /28s. The
 * benchmark only loads these into a set in its own namespace; no packet is sent to them.
 */
const MIXED_V4_HOSTS = 240 << 24; // 240.0.0.0: /32s, every other address (none adjacent)
const MIXED_V4_BLOCKS = 241 << 24; // 241.0.0.0: /28s, every other block of 16
const v4 = (n: number) => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

/**
 * The issue's mixed workload: `count` CIDRs, 40 % IPv4 /32, 20 % IPv4 /28, 40 % IPv6 /64, none
 * adjacent (nothing merges), shuffled together; `sorted` per family for the floor.
 */
export function mixedCidrs(count: number): { shuffled: string[]; sortedV4: string[]; sortedV6: string[] } {
  const hosts = Math.round(count * 0.4);
  const blocks = Math.round(count * 0.2);
  const sortedV4 = [
    ...Array.from({ length: hosts }, (_, i) => v4((MIXED_V4_HOSTS + 2 * i) >>> 0)),
    ...Array.from({ length: blocks }, (_, i) => `${v4((MIXED_V4_BLOCKS + 32 * i) >>> 0)}/28`),
  ];
  const sortedV6 = cidrs(count - hosts - blocks).sorted;
  return { shuffled: shuffled([...sortedV4, ...sortedV6]), sortedV4, sortedV6 };
}

export function allowFile(list: readonly string[]): string {
  return `# benchmark: ${list.length} prefixes\n${list.join("\n")}\n`;
}

/**
 * The nft floor: a hand-written minimal table with one interval set holding the same prefixes,
 * sorted (nft loads sorted elements fastest; shuffled ones take about 1.5 times as long).
 */
export const NFT_FLOOR_TABLE = "dwbench_floor";
export function nftFloor(sortedV6: readonly string[], sortedV4: readonly string[] = []): string {
  const set = (name: string, type: string, sorted: readonly string[]) =>
    `\tset ${name} {\n\t\ttype ${type}\n\t\tflags interval\n\t\telements = {\n${sorted.map((c) => `\t\t\t${c},\n`).join("")}\t\t}\n\t}\n`;
  return `table inet ${NFT_FLOOR_TABLE} {\n${sortedV4.length > 0 ? set("s4", "ipv4_addr", sortedV4) : ""}${set("s", "ipv6_addr", sortedV6)}}\n`;
}

/** The iptables floor: one chain with one rule per prefix, for `ip6tables-legacy-restore --noflush`. */
export const IPTABLES_FLOOR_CHAIN = "DWBENCH-FLOOR";
export function iptablesFloor(sorted: readonly string[]): string {
  return `*filter\n:${IPTABLES_FLOOR_CHAIN} - [0:0]\n${sorted.map((c) => `-A ${IPTABLES_FLOOR_CHAIN} -d ${c} -j ACCEPT\n`).join("")}COMMIT\n`;
}

/**
 * The naive baseline, the way shell initContainers do it (the original image did this with ipset):
 * one `dig` process per name, one `iptables-legacy`/`ip6tables-legacy -A` process per address,
 * then the fixed rules and a DROP policy. Hosts come from a file, one per line.
 */
export function naiveScript(hostsFile: string): string {
  return `#!/bin/bash
set -u
for t in iptables-legacy ip6tables-legacy; do $t -F OUTPUT; done
while read -r host; do
  for ip in $(dig +short "$host" A "$host" AAAA); do
    case "$ip" in
      *:*) ip6tables-legacy -A OUTPUT -d "$ip" -j ACCEPT ;;
      *.*.*.*) iptables-legacy -A OUTPUT -d "$ip" -j ACCEPT ;;
    esac
  done
done < ${hostsFile}
for t in iptables-legacy ip6tables-legacy; do
  $t -A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  $t -A OUTPUT -o lo -j ACCEPT
  $t -A OUTPUT -p udp --dport 53 -j ACCEPT
  $t -A OUTPUT -p tcp --dport 53 -j ACCEPT
  $t -P OUTPUT DROP
done
`;
}

/** Undo the naive baseline (not timed). */
export const NAIVE_RESET = "for t in iptables-legacy ip6tables-legacy; do $t -P OUTPUT ACCEPT; $t -F OUTPUT; done";

/**
 * The original image's way (../shared/seed: its bash entrypoint): one `dig +short` process per name
 * (A records only), one `ipset add` process per answer, then the fixed iptables rules and one rule
 * matching the set. Needs the `ipset` tool. Hosts come from a file, one per line.
 */
export const ORIGINAL_SET = "dwbench_whitelist";
export function originalScript(hostsFile: string): string {
  return `#!/bin/bash
set -u
ipset create ${ORIGINAL_SET} hash:net
iptables-legacy -F OUTPUT
while read -r host; do
  for ip in $(dig +short "$host"); do
    ipset add ${ORIGINAL_SET} "$ip" -exist
  done
done < ${hostsFile}
iptables-legacy -A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
iptables-legacy -A OUTPUT -o lo -j ACCEPT
iptables-legacy -A OUTPUT -p udp --dport 53 -j ACCEPT
iptables-legacy -A OUTPUT -p tcp --dport 53 -j ACCEPT
iptables-legacy -A OUTPUT -m set --match-set ${ORIGINAL_SET} dst -j ACCEPT
iptables-legacy -P OUTPUT DROP
`;
}

/** Undo the original's way (not timed). */
export const ORIGINAL_RESET = `iptables-legacy -P OUTPUT ACCEPT; iptables-legacy -F OUTPUT; ipset destroy ${ORIGINAL_SET} 2>/dev/null; true`;
