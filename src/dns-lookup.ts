import type { Family } from "./ip.ts";
import type { Lookup } from "./resolve.ts";

/**
 * The real DNS seam: `Bun.dns.lookup` with the c-ares backend, the only one that reports real TTLs.
 * It honours /etc/hosts and /etc/resolv.conf and follows CNAME chains. It has no timeout of its own:
 * `resolveHosts` bounds every call.
 */
export const bunLookup: Lookup = async (host: string, family: Family) => {
  const answers = await Bun.dns.lookup(host, { family, backend: "c-ares" });
  return answers.filter((a) => a.family === family).map((a) => ({ address: a.address, ttl: a.ttl }));
};
