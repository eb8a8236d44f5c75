/** The message of anything thrown: an Error's message, or the value as text. */
export const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Why `watch --dns-proxy` needs nft (config and watch refuse it before rendering): iptables-legacy
 * has no sets with per-element timeouts (ipset would be one more tool and kernel module) and no
 * in-process admission fast enough to hold each answer until its addresses are in.
 */
export const IPTABLES_NO_PROXY =
  "--dns-proxy needs the nft backend: iptables-legacy has no sets with per-element timeouts and no in-process way to admit an answer's addresses before the answer is sent";
