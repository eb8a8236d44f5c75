/** The message of anything thrown: an Error's message, or the value as text. */
export const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Why `watch --dns-proxy` needs nft (config and watch refuse it before rendering): iptables-legacy
 * has no sets with per-element timeouts (ipset would be one more tool and kernel module) and no
 * in-process admission fast enough to hold each answer until its addresses are in.
 */
export const IPTABLES_NO_PROXY =
  "--dns-proxy needs the nft backend: iptables-legacy has no sets with per-element timeouts and no in-process way to admit an answer's addresses before the answer is sent";

/** The most characters of one value a message quotes: a 4 MB config value must not become a 4 MB log line. */
export const QUOTED_MAX = 200;

/** A value quoted for a message (JSON string syntax), cut to QUOTED_MAX characters with its full length said. */
export const show = (value: string): string =>
  value.length <= QUOTED_MAX ? JSON.stringify(value) : `${JSON.stringify(value.slice(0, QUOTED_MAX))}... (${value.length} characters)`;

/** Text for a message cut to QUOTED_MAX characters, as `show` does without the quotes. */
export const clip = (text: string): string =>
  text.length <= QUOTED_MAX ? text : `${text.slice(0, QUOTED_MAX)}... (${text.length} characters)`;
