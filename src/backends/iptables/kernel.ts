import { ptr } from "bun:ffi";
import { openLibc, SOCK_CLOEXEC, SOCK_RAW } from "../../libc.ts";
import type { Family } from "../../net/ip.ts";

/**
 * Whether the legacy (x_tables) filter tables hold anything at all, asked of the kernel without
 * running iptables-legacy-save: two processes cost about 7 ms, these questions about 0.2 ms.
 * An empty table holds nothing of domainwall's (its chains and jumps are entries), so `apply`
 * beside the nft backend, `remove` and `status` need no tool there. Whenever the answer is not a
 * clear "empty", the tools are asked as before.
 */

/** The legacy tables this network namespace has, one name a line; the file exists once ip_tables (ip6_tables) is loaded. */
export const TABLE_NAMES: Readonly<Record<Family, string>> = { 4: "/proc/net/ip_tables_names", 6: "/proc/net/ip6_tables_names" };

/** A file every network namespace's /proc/net has. */
const NET_DEV = "/proc/net/dev";

/** What IPT_SO_GET_INFO (IP6T_SO_GET_INFO) says of a table: its built-in chains (a bit per hook) and its entries. */
export interface FilterInfo {
  readonly validHooks: number;
  readonly entries: number;
}

/** `struct ipt_getinfo` (= `ip6t_getinfo`): name[32], valid_hooks, hook_entry[5], underflow[5], num_entries, size. */
export const IPT_GETINFO_BYTES = 84;
const VALID_HOOKS_AT = 32;
const NUM_ENTRIES_AT = 76;

/** The filter table's built-in chains: NF_INET_LOCAL_IN (1), FORWARD (2), LOCAL_OUT (3). */
const FILTER_HOOKS = 0b1110;
/** An empty filter table: one policy entry per built-in chain, and the entry that ends the table. */
const EMPTY_FILTER_ENTRIES = 4;

/** The kernel's answer, in host byte order (little endian: x86-64 and arm64, the only targets). */
export function parseGetinfo(bytes: Uint8Array): FilterInfo {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { validHooks: view.getUint32(VALID_HOOKS_AT, true), entries: view.getUint32(NUM_ENTRIES_AT, true) };
}

/** Whether a TABLE_NAMES file (undefined: absent) lists the filter table. */
export const listsFilter = (text: string | undefined): boolean => text !== undefined && text.split("\n").includes("filter");

/**
 * True only when, in both families, the filter table does not exist here or holds nothing but its
 * built-in chains' policies. A table /proc does not list is not asked about: asking would create it
 * (as iptables-legacy-save does). `filterInfo` undefined: the kernel cannot be asked (no
 * CAP_NET_RAW, no ip_tables), so the answer is false and the tools decide.
 */
export async function legacyFilterEmpty(io: {
  readonly readFile: (path: string) => Promise<string | undefined>;
  readonly filterInfo: (family: Family) => FilterInfo | undefined;
}): Promise<boolean> {
  // `readFile` gives undefined for a file that does not exist and throws for any other failure
  // (EACCES, EIO): a file that could not be read says nothing, so the tools decide.
  let names: (string | undefined)[];
  try {
    names = await Promise.all([io.readFile(TABLE_NAMES[4]), io.readFile(TABLE_NAMES[6])]);
    // An absent file means "no legacy tables here" only where /proc/net is this namespace's and
    // readable: without /proc (or with a /proc whose `self` is not this process) every file is absent.
    if (names.includes(undefined) && (await io.readFile(NET_DEV)) === undefined) return false;
  } catch {
    return false;
  }
  for (const [index, family] of ([4, 6] as const).entries()) {
    if (!listsFilter(names[index])) continue;
    const info = io.filterInfo(family);
    if (info === undefined || info.validHooks !== FILTER_HOOKS || info.entries !== EMPTY_FILTER_ENTRIES) return false;
  }
  return true;
}

/** socket(2) and getsockopt(2) arguments: AF_INET/SOL_IP and AF_INET6/SOL_IPV6; IPT_SO_GET_INFO = IP6T_SO_GET_INFO = 64. */
const ASK = { 4: { domain: 2, level: 0 }, 6: { domain: 10, level: 41 } } as const;
const IPPROTO_RAW = 255;
const SO_GET_INFO = 64;

/** IPT_SO_GET_INFO for the filter table on a raw socket, as iptables-legacy-save asks first; undefined when it cannot be asked. */
export function filterInfo(family: Family): FilterInfo | undefined {
  try {
    const libc = openLibc();
    const fd = libc.socket(ASK[family].domain, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (fd < 0) return undefined;
    try {
      const info = new Uint8Array(IPT_GETINFO_BYTES);
      info.set(new TextEncoder().encode("filter"));
      const length = new Uint32Array([IPT_GETINFO_BYTES]);
      if (libc.getsockopt(fd, ASK[family].level, SO_GET_INFO, ptr(info), ptr(length)) !== 0) return undefined;
      return parseGetinfo(info);
    } finally {
      libc.close(fd);
    }
  } catch {
    return undefined;
  }
}
