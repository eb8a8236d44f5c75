import type { Family } from "../net/ip.ts";
import { coalescedTimer, realSetTimer, type SetTimer } from "../timer.ts";
import { withHostsFile } from "./hosts-file.ts";
import { isTransient, type Lookup } from "./resolve.ts";

/**
 * The real DNS seam: `Bun.dns.lookup` with the c-ares backend, the only one that reports real TTLs.
 * It honours /etc/hosts and /etc/resolv.conf and follows CNAME chains. It has no timeout of its own:
 * `resolveHosts` bounds every call.
 */
export const bunLookup: Lookup = async (host: string, family: Family) => {
  const answers = await Bun.dns.lookup(host, { family, backend: "c-ares" });
  return answers.filter((a) => a.family === family).map((a) => ({ address: a.address, ttl: a.ttl }));
};

/** `getaddrinfo` in a worker thread: no TTLs, but a refusing resolver fails it at once. */
export const libcLookup: Lookup = async (host: string, family: Family) => {
  const answers = await Bun.dns.lookup(host, { family, backend: "libc" });
  return answers.filter((a) => a.family === family).map((a) => ({ address: a.address, ttl: 0 }));
};

/**
 * Only the addresses on the CNAME chain from the name asked. `primary` (c-ares, the backend with
 * TTLs and precise errors) returns every A/AAAA record of the answer section, a stray one for another
 * name too (`other.unlisted.x A ...` in the answer for `stray.x`); `chain` (getaddrinfo, Bun's libc
 * backend) checks each record's owner as it walks the chain, as the apps' own lookups do. Both are
 * asked at once: the addresses are `chain`'s, with the TTL `primary` gave the name (one answer's
 * records share it); a failure is `primary`'s (it says which kind), else `chain`'s. Two lookups
 * rather than a check of one against the other: a CDN answers each query with other addresses.
 */
export function chainChecked(primary: Lookup, chain: Lookup): Lookup {
  return async (host, family) => {
    const [precise, onChain] = await Promise.allSettled([primary(host, family), chain(host, family)]);
    if (precise.status === "rejected") throw precise.reason;
    if (onChain.status === "rejected") throw onChain.reason;
    const ttl = precise.value.length === 0 ? 0 : Math.min(...precise.value.map((a) => a.ttl));
    return [...new Set(onChain.value.map((a) => a.address))].map((address) => ({ address, ttl }));
  };
}

/** The real hosts file; undefined when there is none. */
export const readEtcHosts = async (): Promise<string | undefined> => {
  const file = Bun.file("/etc/hosts");
  return (await file.exists()) ? file.text() : undefined;
};

export interface GuardOptions {
  readonly primary?: Lookup;
  readonly probe?: Lookup;
  readonly slowMs?: number;
  readonly readHosts?: () => Promise<string | undefined>;
  readonly setTimer?: SetTimer;
  /** The clock the hosts file's reuse and `setTimer` run on. */
  readonly now?: () => number;
}

/**
 * Lookups that start within this long of a read of /etc/hosts share it (withHostsFile): one read
 * per watch cycle instead of one per wave of lookups; an edit is seen within a second.
 */
const HOSTS_REUSE_MS = 1000;

/**
 * The lookup the real world uses. First /etc/hosts, read through `readHosts`: a name it lists is
 * answered by it alone, in both families, as glibc's `getaddrinfo` does (withHostsFile); c-ares
 * would ask DNS for the family the file lacks. Then DNS, guarded:
 *
 * c-ares in Bun 1.4 spins the event loop at 100% CPU until the lookup times out (10-20 s) when the
 * resolver answers with ICMP port unreachable: a stopped resolver, a kube-dns Service without
 * endpoints (oven-sh/bun#32164). So once a lookup has failed that way, or has taken longer than
 * `slowMs`, each further one first asks `probe` (getaddrinfo, which fails at once) and goes to
 * `primary` (c-ares, which has the TTLs) only when the probe did not fail the same way. An answer
 * from `primary` ends it. While DNS works, nothing changes. `setTimer` runs the `slowMs` guard; `now`
 * the hosts file's reuse (HOSTS_REUSE_MS). The real world's `primary` is c-ares whose answers are
 * kept to the CNAME chain's (`chainChecked`).
 */
export function guardedLookup({
  primary = bunLookup,
  probe = libcLookup,
  slowMs = 1000,
  readHosts = readEtcHosts,
  setTimer = realSetTimer,
  now = () => performance.now(),
}: GuardOptions = {}): Lookup {
  let troubled = false;
  // One timer for the lookups in flight together (a watch cycle asks for all its due names at once).
  const slowTimer = coalescedTimer(setTimer, now);
  return withHostsFile(
    readHosts,
    async (host, family) => {
      if (troubled) {
        try {
          await probe(host, family);
        } catch (error) {
          if (isTransient(error)) throw error;
        }
      }
      const cancelSlow = slowTimer(slowMs, () => (troubled = true));
      try {
        const answers = await primary(host, family);
        troubled = false;
        return answers;
      } catch (error) {
        troubled = isTransient(error);
        throw error;
      } finally {
        cancelSlow();
      }
    },
    { now, reuseMs: HOSTS_REUSE_MS },
  );
}
