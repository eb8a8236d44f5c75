import { cidr, contains, parseCidr, type Cidr } from "../net/ip.ts";

/** Where systemd-resolved writes the upstream servers its stub (127.0.0.53) forwards to. */
export const RESOLVED_UPSTREAM_CONF = "/run/systemd/resolve/resolv.conf";

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

const LOOPBACK = [cidr("127.0.0.0/8"), cidr("::1")];

/**
 * A resolv.conf that names only loopback servers points at a local stub (systemd-resolved on
 * 127.0.0.53, or a local dnsmasq). The stub's own upstream queries leave the machine too, so they
 * must be allowed: true when the upstream list should be read.
 */
export const onlyLocalStub = (servers: readonly Cidr[]): boolean =>
  servers.length > 0 && servers.every((server) => LOOPBACK.some((range) => contains(range, server)));
