import type { Family } from "../net/ip.ts";
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
 * c-ares in Bun 1.4 spins the event loop at 100% CPU until the lookup times out (10-20 s) when the
 * resolver answers with ICMP port unreachable: a stopped resolver, a kube-dns Service without
 * endpoints (oven-sh/bun#32164). So once a lookup has failed that way, or has taken longer than
 * `slowMs`, each further one first asks `probe` (getaddrinfo, which fails at once) and goes to
 * `primary` (c-ares, which has the TTLs) only when the probe did not fail the same way. An answer
 * from `primary` ends it. While DNS works, nothing changes.
 */
export function guardedLookup(primary: Lookup = bunLookup, probe: Lookup = libcLookup, slowMs = 1000): Lookup {
  let troubled = false;
  return async (host, family) => {
    if (troubled) {
      try {
        await probe(host, family);
      } catch (error) {
        if (isTransient(error)) throw error;
      }
    }
    const slow = setTimeout(() => (troubled = true), slowMs);
    try {
      const answers = await primary(host, family);
      troubled = false;
      return answers;
    } catch (error) {
      troubled = isTransient(error);
      throw error;
    } finally {
      clearTimeout(slow);
    }
  };
}
