import type { LoadedStatus } from "../backends/backend.ts";
import type { Destination } from "../config/destination.ts";
import { compileMatcher } from "../proxy/match.ts";
import { describeTarget, explain, type Explanation, type ProxyNames } from "./explain.ts";

/** What a running `watch --dns-proxy` left in its state file: the list it answers for and what it admitted. */
export interface ProxyWatchState {
  readonly list: { readonly names: readonly string[]; readonly wildcards: readonly string[] };
  readonly addresses: readonly { readonly address: string; readonly names: readonly string[]; readonly entries: readonly string[] }[];
}

/** The names and entries a running watch says admitted an address. */
export const proxyNamesOf =
  (watch: Pick<ProxyWatchState, "addresses"> | undefined): ProxyNames =>
  (address) =>
    watch?.addresses.find((a) => a.address === address);

/**
 * A name under `--dns-proxy`, never looked up (an unlisted name must not leave the host): a listed
 * name or a wildcard's match is allowed by its entry, its addresses admitted when an app asks (those
 * admitted now are explained one by one); an unlisted name gets NXDOMAIN from the proxy. Without a
 * running watch nothing answers the redirected queries, so no name resolves. Pure.
 */
export function explainProxyName(
  status: LoadedStatus,
  destination: Destination & { readonly host: { readonly kind: "name" } },
  watch: ProxyWatchState | undefined,
): Explanation {
  const name = destination.host.name;
  const target = describeTarget(destination);
  const denied = (why: string, audit: string): Explanation => ({
    destination: target,
    allowed: false,
    enforcing: status.enforcing,
    name: { name, listed: false, addressesFrom: "proxy" },
    addresses: [],
    summary: `denied: ${target}: ${why} (not looked up)${status.enforcing ? "" : audit}`,
  });
  if (watch === undefined) {
    return denied(`DNS goes to the DNS proxy here, but no watch --dns-proxy runs: DNS fails closed, so ${name} does not resolve`, "");
  }
  const compiled = compileMatcher([...watch.list.names, ...watch.list.wildcards]);
  const entry = compiled.ok ? compiled.match(name) : undefined;
  if (entry === undefined) {
    return denied(
      `${name} is not in the DNS proxy's list: the proxy answers NXDOMAIN for it`,
      " (audit mode: the proxy forwards it anyway, and records it)",
    );
  }
  // Its addresses the kernel still holds (the state file is a few seconds old), each explained.
  const admitted = watch.addresses
    .filter((a) => a.names.includes(name) && status.proxy?.some((e) => e.address === a.address && e.expiresInSeconds > 0))
    .map((a) => a.address);
  const now = explain(status, destination, admitted, [], undefined, proxyNamesOf(watch));
  const parts = now.summary.slice(`${now.allowed ? "allowed" : "denied"}: ${target}: `.length);
  const intro = `${name} is allowed by the DNS proxy's entry ${entry}: its addresses are admitted when an app asks`;
  return {
    ...now,
    allowed: true,
    name: { name, listed: true, addressesFrom: "proxy", entry },
    summary: `allowed: ${target}: ${intro}; ${admitted.length === 0 ? "none is admitted now" : `now ${parts}`}`,
  };
}
