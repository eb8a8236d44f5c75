import { domainToASCII } from "node:url";
import { parseCidr, type Cidr } from "../net/ip.ts";
import { show } from "../messages.ts";

export type HostEntry =
  /**
   * `name` is what DNS is asked, exactly: ASCII, lower case, and ending with "." when the input did.
   * A trailing dot makes a name absolute: resolved as it is, without resolv.conf's search list, as
   * the app's own `getaddrinfo("name.")` does (c-ares and glibc both honour it; neither matches such
   * a name in /etc/hosts). Without one, the search list and `ndots` apply, as for the app.
   */
  | { readonly kind: "name"; readonly name: string }
  | { readonly kind: "address"; readonly cidr: Cidr }
  /**
   * `*.NAME` (one more label) or `**.NAME` (one or more), canonical (NAME as `kind: "name"`
   * normalises it). Only the DNS proxy can allow these: config refuses them without `--dns-proxy`.
   */
  | { readonly kind: "wildcard"; readonly entry: string };

export type ParsedHost = { readonly ok: true; readonly host: HostEntry } | { readonly ok: false; readonly reason: string };

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** Before IDNA: letters (any script), digits, dots and hyphens only, so no nft or shell syntax survives. */
const PLAIN = /^[\p{L}\p{M}\p{N}.-]+$/u;

/**
 * A host from `hosts_csv`/`--hosts`: an IP literal (IPv6 may be bracketed), or a DNS name checked
 * against RFC 1123 after IDNA conversion to its ASCII form, lower case; a trailing dot is kept.
 */
export function parseHost(input: string): ParsedHost {
  const literal = input.startsWith("[") && input.endsWith("]") ? input.slice(1, -1) : input;
  const address = literal.includes("/") ? undefined : parseCidr(literal);
  if (address?.ok) return { ok: true, host: { kind: "address", cidr: address.cidr } };
  if (input.startsWith("*")) {
    const star = input.startsWith("**.") ? "**" : input.startsWith("*.") ? "*" : undefined;
    const rest = star === undefined ? "" : input.slice(star.length + 1);
    const suffix = rest.includes("*") ? undefined : parseHost(rest);
    if (star === undefined || suffix === undefined)
      return { ok: false, reason: "a '*' or '**' is allowed only as the whole leftmost label, followed by a name" };
    if (!suffix.ok) return suffix;
    if (suffix.host.kind !== "name") return { ok: false, reason: "a wildcard needs a name after it, not an address" };
    return { ok: true, host: { kind: "wildcard", entry: `${star}.${suffix.host.name.replace(/\.$/, "")}` } };
  }
  const absolute = input.endsWith(".");
  const name = absolute ? input.slice(0, -1) : input;
  if (name === "") return { ok: false, reason: "empty name" };
  if (!PLAIN.test(name)) return { ok: false, reason: "only letters, digits, '-' and '.' are allowed" };
  if (/^[0-9]+$/.test(name.split(".").at(-1) ?? "")) {
    return { ok: false, reason: "all-numeric top-level label (and not a valid IP address)" };
  }
  const ascii = domainToASCII(name);
  if (ascii === "") return { ok: false, reason: "not a valid internationalised domain name" };
  // domainToASCII follows the URL standard, which reads hex and octal IPv4 forms (1.2.3.0x4): not a name.
  if (parseCidr(ascii).ok) return { ok: false, reason: "an IPv4 address in hex or octal form; write it in dotted decimal" };
  if (ascii.length > 253) return { ok: false, reason: "longer than 253 characters" };
  const labels = ascii.split(".");
  const bad = labels.find((label) => !LABEL.test(label));
  if (bad !== undefined) {
    return { ok: false, reason: `label ${show(bad)} must be 1-63 letters, digits or '-', not starting or ending with '-'` };
  }
  return { ok: true, host: { kind: "name", name: absolute ? `${ascii}.` : ascii } };
}
