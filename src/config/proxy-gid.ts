import { show } from "../messages.ts";
/** The DNS proxy's group id as configuration: its default and what a valid one is (see proxy/identity.ts). */
/** Chosen to be unlikely in a pod or on a VM: above the ranges distributions and `runAsGroup` habits use. */
export const DEFAULT_PROXY_GID = 2_000_053;

export type ParsedGid = { readonly ok: true; readonly gid: number } | { readonly ok: false; readonly reason: string };

/**
 * A group id for the proxy: decimal, 1 to 4294967294. Not 0 (root's group: excluding it would let
 * every root process past the redirect), not 65534 (nogroup, which unprivileged services share),
 * not 4294967295 (-1, "no change" to setgid).
 */
export function parseProxyGid(text: string): ParsedGid {
  if (!/^[0-9]{1,10}$/.test(text)) return { ok: false, reason: `${show(text)} is not a decimal group id` };
  const gid = Number(text);
  if (gid === 0) return { ok: false, reason: "0 is root's group: every root process would bypass the DNS proxy" };
  if (gid === 65534) return { ok: false, reason: "65534 is nogroup, shared by unprivileged services" };
  if (gid >= 4294967295) return { ok: false, reason: `${gid} is not a valid group id (at most 4294967294)` };
  return { ok: true, gid };
}
