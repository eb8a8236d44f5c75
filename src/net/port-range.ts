// Destination ports, as entries open them and the backends and status write them.

export type Protocol = "tcp" | "udp";
export const PROTOCOLS: readonly Protocol[] = ["tcp", "udp"];

/** Destination ports an entry opens: `first`..`last` (one port when equal) of one protocol. */
export interface PortRange {
  readonly protocol: Protocol;
  readonly first: number;
  readonly last: number;
}

/** `443/tcp`, `8000-8100/udp`: the canonical text of a range (shown in status, render comments). */
export const formatPortRange = (ports: PortRange): string =>
  `${ports.first}${ports.last === ports.first ? "" : `-${ports.last}`}/${ports.protocol}`;

/** Protocol, then first port, then last: the order sets and status list ranges in. */
export const comparePortRange = (a: PortRange, b: PortRange): number =>
  a.protocol.localeCompare(b.protocol) || a.first - b.first || a.last - b.last;
