import { parseCidr, type Cidr } from "./ip.ts";

/**
 * The `nameserver` lines of a resolv.conf. Link-local IPv6 servers carry a zone (`fe80::1%eth0`)
 * that a ruleset cannot express; the zone is dropped and the address kept. Unparseable lines are
 * reported, never copied into the ruleset.
 */
export function parseResolvConf(text: string): { servers: Cidr[]; ignored: string[] } {
  const servers: Cidr[] = [];
  const ignored: string[] = [];
  for (const line of text.split("\n")) {
    const match = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!match?.[1]) continue;
    const address = match[1].replace(/%.*$/, "");
    const parsed = address.includes("/") ? undefined : parseCidr(address);
    if (parsed?.ok) servers.push(parsed.cidr);
    else ignored.push(match[1]);
  }
  return { servers, ignored };
}
