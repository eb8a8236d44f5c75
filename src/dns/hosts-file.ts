import { formatAddress, parseAddress, type Family } from "../net/ip.ts";
import type { Answer, Lookup } from "./resolve.ts";

/** The addresses /etc/hosts lists for each name (lower case), per family, in file order. */
export type HostsTable = ReadonlyMap<string, Readonly<Record<Family, readonly string[]>>>;

/**
 * /etc/hosts: `ADDRESS NAME [ALIAS...]` lines, `#` comments. Names are matched without regard to
 * case, as glibc does. A line whose address does not parse strictly (a zone id, an octal or hex
 * IPv4 form) is ignored, so its names are left to DNS: nothing unparsed reaches the policy.
 */
export function parseHostsFile(text: string): HostsTable {
  const table = new Map<string, Record<Family, string[]>>();
  for (const line of text.split("\n")) {
    const [address, ...names] = line.replace(/#.*/, "").trim().split(/\s+/);
    const parsed = address ? parseAddress(address) : undefined;
    if (parsed === undefined) continue;
    const canonical = formatAddress(parsed.family, parsed.words);
    for (const name of names.map((n) => n.toLowerCase())) {
      const entry = table.get(name) ?? { 4: [], 6: [] };
      table.set(name, entry);
      if (!entry[parsed.family].includes(canonical)) entry[parsed.family].push(canonical);
    }
  }
  return table;
}

/**
 * What /etc/hosts answers for one family of `name`: undefined when the file does not list the name
 * (DNS decides), otherwise its addresses of that family, possibly none. A listed name is answered by
 * the file alone, in both families, as glibc's `getaddrinfo` does (`hosts: files dns`): `localhost`
 * listed only as 127.0.0.1 has no IPv6 address, and DNS is not asked for one. The name is matched as
 * given: an absolute name (`localhost.`) is not, as neither glibc nor c-ares matches it. TTL 0: the
 * file can change at any time.
 */
export function hostsFileAnswers(table: HostsTable, name: string, family: Family): readonly Answer[] | undefined {
  return table.get(name.toLowerCase())?.[family].map((address) => ({ address, ttl: 0 }));
}

/**
 * A lookup that consults the hosts file first, read through `readHosts` (an edit is seen by the
 * next lookup, like glibc; lookups started during a read share it; with `reuseMs`, lookups that
 * start within that long after a read began share it too: a watch cycle's 600 lookups run in waves
 * of 64, and each wave would read the file again), and asks `dns` only for names the file does not
 * list. A missing or unreadable file lists nothing.
 */
export function withHostsFile(
  readHosts: () => Promise<string | undefined>,
  dns: Lookup,
  { now = () => 0, reuseMs = 0 }: { readonly now?: () => number; readonly reuseMs?: number } = {},
): Lookup {
  let parsed: { text: string; table: HostsTable } | undefined;
  /** The read under way, or the last one while it may be reused. */
  let reading: { readonly text: Promise<string | undefined>; readonly startedAt: number; done: boolean } | undefined;
  const read = () => {
    const at = now();
    if (reading !== undefined && (!reading.done || at - reading.startedAt < reuseMs)) return reading.text;
    const current = { text: readHosts().catch(() => undefined), startedAt: at, done: false };
    void current.text.finally(() => (current.done = true));
    reading = current;
    return current.text;
  };
  return async (host, family) => {
    const text = await read();
    if (text !== undefined && parsed?.text !== text) parsed = { text, table: parseHostsFile(text) };
    const answers = text === undefined || parsed === undefined ? undefined : hostsFileAnswers(parsed.table, host, family);
    return answers ?? dns(host, family);
  };
}
