import { cidr, contains, makeCidr, type Cidr } from "../net/ip.ts";

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

/** IPv4-mapped (::ffff:0:0/96) and NAT64 (64:ff9b::/96) answers are checked by the IPv4 address they embed. */
const EMBEDDING_V4 = [cidr("::ffff:0:0/96"), cidr("64:ff9b::/96")];

/** Why DNS may not open `address` (a full-length CIDR), or undefined when it may. */
export function forbiddenReason(address: Cidr): string | undefined {
  const embedding = EMBEDDING_V4.find((range) => contains(range, address));
  const checked = embedding ? makeCidr(4, address.words.slice(3), 32) : address;
  return FORBIDDEN_FROM_DNS.find((range) => contains(range.cidr, checked))?.what;
}
