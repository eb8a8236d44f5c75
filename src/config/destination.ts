import { parseAddress, parseCidr } from "../net/ip.ts";
import { parseHost } from "./hostname.ts";

/**
 * What `explain` is asked about: an address or a name, with an optional port and protocol (TCP
 * unless `/udp` is given). Addresses are in their canonical text, names in their ASCII form.
 */
export interface Destination {
  readonly host: { readonly kind: "address"; readonly address: string } | { readonly kind: "name"; readonly name: string };
  readonly port?: number;
  readonly protocol: "tcp" | "udp";
}

export type ParsedDestination = { readonly ok: true; readonly destination: Destination } | { readonly ok: false; readonly reason: string };

/** `ADDRESS`, `ADDRESS:PORT`, `[IPv6]:PORT`, `NAME`, `NAME:PORT`; a port may end in `/tcp` or `/udp`. */
export function parseDestination(input: string): ParsedDestination {
  const text = input.trim();
  const protocolMatch = /\/(tcp|udp)$/i.exec(text);
  const protocol = (protocolMatch?.[1]?.toLowerCase() ?? "tcp") as Destination["protocol"];
  const rest = protocolMatch ? text.slice(0, protocolMatch.index) : text;
  // A bare IPv6 address holds colons but no port.
  const bare = parseAddress(rest);
  if (bare !== undefined && !protocolMatch)
    return { ok: true, destination: { host: { kind: "address", address: canonical(rest) }, protocol } };
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(rest);
  if (protocolMatch && !match) return { ok: false, reason: "a protocol (/tcp, /udp) goes after a port: HOST:PORT/udp" };
  const hostText = match ? (match[1] ?? match[2] ?? "") : rest;
  const port = match ? Number(match[3]) : undefined;
  if (port !== undefined && (port < 1 || port > 65535)) return { ok: false, reason: `port ${port} is not between 1 and 65535` };
  if (match?.[1] !== undefined && parseAddress(match[1])?.family !== 6)
    return { ok: false, reason: "only an IPv6 address goes in brackets" };
  if (parseAddress(hostText) !== undefined)
    return {
      ok: true,
      destination: { host: { kind: "address", address: canonical(hostText) }, protocol, ...(port !== undefined && { port }) },
    };
  if (hostText.includes("/")) return { ok: false, reason: "a network (CIDR) is not a destination: give one address" };
  const host = parseHost(hostText);
  if (!host.ok) return { ok: false, reason: host.reason };
  if (host.host.kind !== "name") return { ok: false, reason: "not an address or a name" };
  return { ok: true, destination: { host: { kind: "name", name: host.host.name }, protocol, ...(port !== undefined && { port }) } };
}

/** The canonical text of an address (`2001:DB8:0::1` → `2001:db8::1`). */
function canonical(address: string): string {
  const parsed = parseCidr(address);
  return parsed.ok ? parsed.cidr.text : address;
}
