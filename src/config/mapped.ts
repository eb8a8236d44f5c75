import { makeCidr, type Cidr } from "../net/ip.ts";
import { show } from "../messages.ts";

/**
 * The IPv4 network an IPv4-mapped IPv6 network (inside ::ffff:0:0/96) stands for; undefined for any
 * other. The kernel never sees a mapped destination: a dual-stack socket connecting to
 * ::ffff:a.b.c.d sends IPv4 packets to a.b.c.d, so such an entry in an IPv6 set would never match.
 */
export function ipv4OfMapped(cidr: Cidr): Cidr | undefined {
  if (cidr.family !== 6 || cidr.prefix < 96 || cidr.words[0] !== 0 || cidr.words[1] !== 0 || cidr.words[2] !== 0xffff) return undefined;
  return makeCidr(4, [cidr.words[3] ?? 0], cidr.prefix - 96);
}

/** `::ffff:a.b.c.d` (with its prefix, if any), as people write a mapped address. */
const mappedText = (cidr: Cidr, ipv4: Cidr): string => `::ffff:${ipv4.text.split("/")[0]}${cidr.prefix === 128 ? "" : `/${cidr.prefix}`}`;

/** At most this many mapped entries are listed one by one (an allow file can hold 100,000 lines). */
const SHOWN = 10;

/**
 * `--allow`, the allow file and IP literals in `--hosts` refuse IPv4-mapped IPv6 entries, each with
 * the IPv4 form to write instead: the problems, empty when there is none.
 */
export function mappedProblems(entries: readonly { readonly cidr: Cidr; readonly source: string }[]): string[] {
  const problems: string[] = [];
  let more = 0;
  for (const entry of entries) {
    const ipv4 = ipv4OfMapped(entry.cidr);
    if (ipv4 === undefined) continue;
    if (problems.length < SHOWN)
      problems.push(
        `${entry.source}: ${show(mappedText(entry.cidr, ipv4))} is an IPv4-mapped IPv6 address, which never matches (the kernel sends IPv4 packets for it): write ${ipv4.text}`,
      );
    else more++;
  }
  return more === 0 ? problems : [...problems, `and ${more} more IPv4-mapped entries`];
}
