import { show } from "../messages.ts";
import { parseCidr } from "../net/ip.ts";
import { formatPortRange, PROTOCOLS, type PortRange, type Protocol } from "../net/port-range.ts";

/**
 * An allow entry split into what it names (a host name, wildcard, address or CIDR, without
 * brackets) and the ports it opens; without `ports` it opens every port and protocol, as the
 * original image did.
 */
export interface SplitEntry {
  readonly target: string;
  readonly ports?: PortRange;
}

export type SplitResult = ({ readonly ok: true } & SplitEntry) | { readonly ok: false; readonly reason: string };

const PORT = /^[0-9]{1,5}$/;

/** `PORT`, `PORT-PORT`, either with `/tcp` or `/udp` (tcp by default). */
export function parsePortRange(spec: string): { ok: true; ports: PortRange } | { ok: false; reason: string } {
  if (spec === "") return { ok: false, reason: "nothing after ':' (expected a port, e.g. :443 or :8000-8100/udp)" };
  const slash = spec.indexOf("/");
  const range = slash < 0 ? spec : spec.slice(0, slash);
  const protocol = slash < 0 ? "tcp" : spec.slice(slash + 1).toLowerCase();
  if (!(PROTOCOLS as readonly string[]).includes(protocol))
    return { ok: false, reason: `unknown protocol ${show(spec.slice(slash + 1))} (tcp or udp)` };
  const dash = range.indexOf("-");
  const bounds = dash < 0 ? [range, range] : [range.slice(0, dash), range.slice(dash + 1)];
  const [first, last] = bounds.map((b) => (PORT.test(b) ? Number(b) : Number.NaN)) as [number, number];
  for (const port of [first, last]) {
    if (!(port >= 1 && port <= 65535))
      return { ok: false, reason: `${show(range)} is not a port (1-65535) or a range of ports (e.g. 8000-8100)` };
  }
  if (first > last) return { ok: false, reason: `the range ${range} runs backwards` };
  return { ok: true, ports: { protocol: protocol as Protocol, first, last } };
}

const withPorts = (target: string, spec: string): SplitResult => {
  const parsed = parsePortRange(spec);
  return parsed.ok ? { ok: true, target, ports: parsed.ports } : parsed;
};

/**
 * Split `api.example.com:443`, `ntp.example.com:123/udp`, `203.0.113.0/24:8000-8100`,
 * `[2001:db8::1]:443` or `[2001:db8::/64]:443`. An IPv6 address or CIDR takes a port only in
 * brackets: `2001:db8::/64:443` is refused rather than guessed at. An unbracketed IPv6 address is
 * always the whole address (`2001:db8::1:443` is the address 2001:db8::1:443, every port).
 */
export function splitPortSpec(entry: string): SplitResult {
  if (entry.startsWith("[")) {
    const close = entry.indexOf("]");
    if (close < 0) return { ok: false, reason: "'[' without ']'" };
    const target = entry.slice(1, close);
    const rest = entry.slice(close + 1);
    if (rest === "") return { ok: true, target };
    if (!rest.startsWith(":")) return { ok: false, reason: `expected ':PORT' after ']', not ${show(rest)}` };
    return withPorts(target, rest.slice(1));
  }
  const colons = entry.split(":").length - 1;
  if (colons === 0) return { ok: true, target: entry };
  if (colons === 1) {
    const colon = entry.indexOf(":");
    return withPorts(entry.slice(0, colon), entry.slice(colon + 1));
  }
  if (parseCidr(entry).ok) return { ok: true, target: entry };
  const last = entry.lastIndexOf(":");
  const head = entry.slice(0, last);
  if (parseCidr(head).ok && parsePortRange(entry.slice(last + 1)).ok) {
    return { ok: false, reason: `an IPv6 address or network with a port needs brackets: [${head}]:${entry.slice(last + 1)}` };
  }
  return { ok: true, target: entry };
}

/** The entry as a user writes it, brackets around IPv6; `splitPortSpec` reads it back. */
export const formatEntry = (entry: SplitEntry): string =>
  entry.ports === undefined
    ? entry.target
    : `${entry.target.includes(":") ? `[${entry.target}]` : entry.target}:${formatPortRange(entry.ports)}`;
