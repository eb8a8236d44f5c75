import { cidr, contains, makeCidr, type Cidr } from "../net/ip.ts";
import type { LocalNet } from "../net/interfaces.ts";

/**
 * Addresses a DNS answer may never open on its own: the one documented list (README, "Answers DNS
 * may never open"). A name resolving to one of these is a DNS-rebinding or metadata-theft attempt
 * far more often than a real service; `--allow` covering the address permits it anyway.
 *
 * - loopback, unspecified, multicast and reserved: never a remote service;
 * - link-local 169.254.0.0/16: the instance metadata service of AWS, GCP, Azure and OpenStack
 *   (169.254.169.254) and AWS's time and DNS endpoints;
 * - 100.100.100.200: Alibaba Cloud's metadata service (inside the shared 100.64.0.0/10 range, which
 *   as a whole is ordinary carrier-grade NAT space and stays allowed);
 * - 192.0.0.192: Oracle Cloud's metadata service (also on 169.254.169.254);
 * - 168.63.129.16: Azure's platform endpoint (WireServer: VM agent, health probes, DNS);
 * - fd00:ec2::254: AWS's metadata service over IPv6.
 */
export const FORBIDDEN_FROM_DNS: readonly { readonly cidr: Cidr; readonly what: string }[] = [
  { cidr: cidr("0.0.0.0/8"), what: "unspecified" },
  { cidr: cidr("127.0.0.0/8"), what: "loopback" },
  { cidr: cidr("169.254.0.0/16"), what: "link-local (AWS, GCP, Azure, OpenStack metadata)" },
  { cidr: cidr("100.100.100.200/32"), what: "Alibaba Cloud metadata" },
  { cidr: cidr("192.0.0.192/32"), what: "Oracle Cloud metadata" },
  { cidr: cidr("168.63.129.16/32"), what: "Azure platform endpoint (WireServer)" },
  { cidr: cidr("224.0.0.0/4"), what: "multicast" },
  { cidr: cidr("240.0.0.0/4"), what: "reserved/broadcast" },
  { cidr: cidr("::/128"), what: "unspecified" },
  { cidr: cidr("::1/128"), what: "loopback" },
  { cidr: cidr("fe80::/10"), what: "link-local" },
  { cidr: cidr("ff00::/8"), what: "multicast" },
  { cidr: cidr("fd00:ec2::254/128"), what: "AWS metadata (IPv6)" },
];

/**
 * The IPv4 address an RFC 6052 IPv4-embedded IPv6 address carries behind a prefix of `length` bits
 * (32, 40, 48, 56, 64 or 96): the 32 bits after the prefix, skipping bits 64..71 (the "u" octet,
 * always zero), so a /48 prefix puts the first two octets in bits 48..63 and the last two in 72..87.
 */
export function embeddedIpv4(address: Cidr, length: 32 | 40 | 48 | 56 | 64 | 96): Cidr {
  const byteAt = (i: number) => ((address.words[i >> 2] ?? 0) >>> (24 - 8 * (i & 3))) & 255;
  let value = 0;
  for (let i = length / 8, taken = 0; taken < 4; i++) {
    if (i === 8) continue;
    value = value * 256 + byteAt(i);
    taken++;
  }
  return makeCidr(4, [value], 32);
}

/**
 * Ranges whose addresses are checked by the IPv4 address they embed: IPv4-mapped (::ffff:0:0/96),
 * the well-known NAT64 prefix (64:ff9b::/96, RFC 6052) and the local-use translation prefix
 * (64:ff9b:1::/48, RFC 8215), read in the /48 format of RFC 6052.
 */
const EMBEDDING_V4 = [
  { range: cidr("::ffff:0:0/96"), length: 96 },
  { range: cidr("64:ff9b::/96"), length: 96 },
  { range: cidr("64:ff9b:1::/48"), length: 48 },
] as const;

/** The address to check: the IPv4 address an IPv4-mapped or NAT64 answer embeds, or the answer itself. */
const checkedOf = (address: Cidr): Cidr => {
  if (address.family !== 6) return address;
  const embedding = EMBEDDING_V4.find(({ range }) => contains(range, address));
  return embedding === undefined ? address : embeddedIpv4(address, embedding.length);
};

/** FORBIDDEN_FROM_DNS by family: an answer is checked against its own family's ranges only (it runs for every answer). */
const FORBIDDEN_BY_FAMILY = {
  4: FORBIDDEN_FROM_DNS.filter((r) => r.cidr.family === 4),
  6: FORBIDDEN_FROM_DNS.filter((r) => r.cidr.family === 6),
} as const;

/** Why DNS may not open `address` (a full-length CIDR), or undefined when it may. */
export function forbiddenReason(address: Cidr): string | undefined {
  const checked = checkedOf(address);
  for (const range of FORBIDDEN_BY_FAMILY[checked.family]) if (contains(range.cidr, checked)) return range.what;
  return undefined;
}

/**
 * Internal address space a DNS answer may point a listed name at, refused only with
 * `--refuse-private-answers` (a DNS-rebinding guard: a public name answering with an address
 * inside the cluster, the VPC or the home network). Apart from the list above: those are refused
 * always, these only on request, since internal services (Kubernetes, a VPC's databases)
 * legitimately answer with them.
 */
export const PRIVATE_FROM_DNS: readonly { readonly cidr: Cidr; readonly what: string }[] = [
  { cidr: cidr("10.0.0.0/8"), what: "private, RFC 1918" },
  { cidr: cidr("172.16.0.0/12"), what: "private, RFC 1918" },
  { cidr: cidr("192.168.0.0/16"), what: "private, RFC 1918" },
  { cidr: cidr("100.64.0.0/10"), what: "carrier-grade NAT, RFC 6598" },
  { cidr: cidr("fc00::/7"), what: "unique local, RFC 4193" },
];

/**
 * The resolvers' own networks: the /24 (IPv4) or /64 (IPv6) around each resolver address, where a
 * resolver's neighbours (a router's admin page, the node it runs on) live. A server given as a
 * wider CIDR (`--dns-servers`) is taken as it is.
 */
export const resolverNetworks = (resolvers: readonly Cidr[]): Cidr[] =>
  resolvers.map((r) => {
    const prefix = r.family === 4 ? 24 : 64;
    return r.prefix <= prefix ? r : makeCidr(r.family, r.words, prefix);
  });

/**
 * Why `--refuse-private-answers` refuses `address` (a full-length CIDR), or undefined when it does
 * not: a private range, the resolvers' networks, or this namespace's own addresses, on-link
 * networks and gateways (`localNets`, net/interfaces.ts), wherever the resolver is.
 */
export function privateReason(address: Cidr, resolverNets: readonly Cidr[], localNets: readonly LocalNet[] = []): string | undefined {
  const checked = checkedOf(address);
  const listed = PRIVATE_FROM_DNS.find((range) => contains(range.cidr, checked))?.what;
  if (listed !== undefined) return listed;
  const resolver = resolverNets.find((net) => contains(net, checked));
  if (resolver !== undefined) return `the resolvers' network ${resolver.text}`;
  // The narrowest one that holds it: "address 198.51.100.1" rather than its on-link network.
  const local = localNets.filter((net) => contains(net.cidr, checked)).sort((a, b) => b.cidr.prefix - a.cidr.prefix)[0];
  return local === undefined ? undefined : `this namespace's ${local.what} ${local.cidr.text}`;
}

/** Whether `host` is one of `domains` or under one (`api.svc.cluster.local` under `cluster.local`); a trailing dot does not count. */
export function underDomain(host: string, domains: readonly string[]): boolean {
  const name = host.endsWith(".") ? host.slice(0, -1) : host;
  return domains.some((domain) => {
    const d = domain.endsWith(".") ? domain.slice(0, -1) : domain;
    return name === d || name.endsWith(`.${d}`);
  });
}
