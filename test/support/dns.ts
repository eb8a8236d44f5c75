// DNS messages for tests and the lab's DNS server, built with dns-packet.
import { encode, type Answer, type Packet } from "dns-packet";
import { parseAddress } from "../../src/net/ip.ts";

/** Address text as bytes (4 or 16), for SVCB hints. */
function addressBytes(text: string): number[] {
  const parsed = parseAddress(text);
  if (parsed === undefined) throw new Error(`not an address: ${text}`);
  return parsed.words.flatMap((w) => [w >>> 24, (w >>> 16) & 255, (w >>> 8) & 255, w & 255]);
}

/** SVCB/HTTPS RDATA (RFC 9460): priority, TargetName, then ipv4hint (key 4) and ipv6hint (key 6) when given. */
export function svcbRdata(
  priority: number,
  target: string,
  hints: { readonly v4?: readonly string[]; readonly v6?: readonly string[] } = {},
): Buffer {
  const bytes: number[] = [priority >> 8, priority & 255];
  for (const label of target.split(".").filter((l) => l !== "")) bytes.push(label.length, ...Buffer.from(label, "ascii"));
  bytes.push(0);
  for (const [key, list] of [
    [4, hints.v4 ?? []],
    [6, hints.v6 ?? []],
  ] as const) {
    const value = list.flatMap(addressBytes);
    if (value.length > 0) bytes.push(0, key, value.length >> 8, value.length & 255, ...value);
  }
  return Buffer.from(bytes);
}

/** An HTTPS (type 65) or SVCB (64) record for dns-packet, which knows neither type by name. */
export function svcbRecord(kind: "HTTPS" | "SVCB", name: string, ttl: number, data: Buffer): Answer {
  return { type: kind === "HTTPS" ? "UNKNOWN_65" : "UNKNOWN_64", name, ttl, class: "IN", data } as unknown as Answer;
}

export const RECURSION_DESIRED = 0x0100;

/** A type name dns-packet can encode: it spells HTTPS and SVCB `UNKNOWN_65` and `UNKNOWN_64`. */
export const packetType = (type: string): string => ({ HTTPS: "UNKNOWN_65", SVCB: "UNKNOWN_64" })[type] ?? type;

/** A query as a stub resolver sends it: RD set, optionally with an EDNS0 OPT record. */
export function queryBytes(
  id: number,
  name: string,
  type: string,
  options: { readonly edns?: boolean; readonly flags?: number; readonly extra?: Partial<Packet> } = {},
): Uint8Array {
  // a copy: slices of a Buffer share its memory
  return new Uint8Array(
    encode({
      type: "query",
      id,
      flags: options.flags ?? RECURSION_DESIRED,
      questions: [{ name, type: packetType(type) as never, class: "IN" }],
      additionals: options.edns ? [{ type: "OPT", name: ".", udpPayloadSize: 1232, flags: 0x8000, options: [] } as unknown as Answer] : [],
      ...options.extra,
    }),
  );
}
