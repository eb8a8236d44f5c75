import { cidr, contains, makeCidr, type Cidr } from "../net/ip.ts";

/**
 * Internal address space a DNS answer may point a listed name at, refused only with
 * `--refuse-private-answers` (a DNS-rebinding guard: a public name answering with an address
 * inside the cluster, the VPC or the home network). Kept apart from the addresses DNS may never
 * open (forbidden.ts): those are refused always, these only on request, since internal services
 * (Kubernetes, a VPC's databases) legitimately answer with them.
 */
export const PRIVATE_FROM_DNS: readonly { readonly cidr: Cidr; readonly what: string }[] = [
  { cidr: cidr("10.0.0.0/8"), what: "private, RFC 1918" },
  { cidr: cidr("172.16.0.0/12"), what: "private, RFC 1918" },
  { cidr: cidr("192.168.0.0/16"), what: "private, RFC 1918" },
  { cidr: cidr("100.64.0.0/10"), what: "carrier-grade NAT, RFC 6598" },
  { cidr: cidr("fc00::/7"), what: "unique local, RFC 4193" },
];

/** IPv4-mapped and NAT64 answers are checked by the IPv4 address they embed. */
const EMBEDDING_V4 = [cidr("::ffff:0:0/96"), cidr("64:ff9b::/96")];

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

/** Why `--refuse-private-answers` refuses `address` (a full-length CIDR), or undefined when it does not. */
export function privateReason(address: Cidr, resolverNets: readonly Cidr[]): string | undefined {
  const checked = EMBEDDING_V4.some((range) => contains(range, address)) ? makeCidr(4, address.words.slice(3), 32) : address;
  const listed = PRIVATE_FROM_DNS.find((range) => contains(range.cidr, checked))?.what;
  if (listed !== undefined) return listed;
  const resolver = resolverNets.find((net) => contains(net, checked));
  return resolver === undefined ? undefined : `the resolvers' network ${resolver.text}`;
}

/** Whether `host` is one of `domains` or under one (`api.svc.cluster.local` under `cluster.local`); a trailing dot does not count. */
export function underDomain(host: string, domains: readonly string[]): boolean {
  const name = host.endsWith(".") ? host.slice(0, -1) : host;
  return domains.some((domain) => {
    const d = domain.endsWith(".") ? domain.slice(0, -1) : domain;
    return name === d || name.endsWith(`.${d}`);
  });
}
