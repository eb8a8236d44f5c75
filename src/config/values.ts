import * as v from "valibot";
import { show } from "../messages.ts";
import { parseDuration } from "./duration.ts";
import { parseHost, type HostEntry } from "./hostname.ts";
import { splitPortSpec } from "./port-spec.ts";
import { type PortRange } from "../net/port-range.ts";
import { parseAddress, parseCidr, type Cidr } from "../net/ip.ts";
import { parseProxyGid } from "./proxy-gid.ts";

/**
 * The value parsers of the option table (cli/options.ts): each is a valibot schema over one raw
 * setting (the items of a list, the text of a value, a switch's boolean) that names where the value
 * came from (`from`: a flag, a variable or `FILE: key`) in every message.
 */
export type ValueSchema<T> = v.GenericSchema<unknown, T>;

/** A DNS resolver list: "any" or addresses (see policy: where port 53 may go). */
export type DnsServers =
  | { readonly kind: "resolv.conf" }
  | { readonly kind: "any" }
  | { readonly kind: "list"; readonly servers: readonly Cidr[] };

export type LogFormat = "text" | "json";

export interface ListenAddress {
  /** An IP address (IPv6 without brackets) or "localhost". */
  readonly hostname: string;
  readonly port: number;
}

export { show } from "../messages.ts";

type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

/** One item, parsed or reported as `FROM: "VALUE" REASON`. */
function item<T>(from: string, parse: (raw: string) => Parsed<T>): v.GenericSchema<string, T> {
  return v.pipe(
    v.string(),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const result = parse(dataset.value);
      if (result.ok) return result.value;
      addIssue({ message: `${from}: ${show(dataset.value)} ${result.reason}` });
      return NEVER;
    }),
  );
}

const listOf = <T>(schema: v.GenericSchema<string, T>): ValueSchema<T[]> => v.optional(v.array(schema), []) as ValueSchema<T[]>;

/** A host list item: a name or IP literal and, when written with `:PORT[-PORT][/PROTO]`, the ports it opens. */
export interface HostItem {
  readonly raw: string;
  readonly host: HostEntry;
  readonly ports?: PortRange;
}

export const hostList = (from: string): ValueSchema<HostItem[]> =>
  listOf(
    item(from, (raw) => {
      const split = splitPortSpec(raw);
      if (!split.ok) return { ok: false, reason: `has a bad port: ${split.reason}` };
      const parsed = parseHost(split.target);
      if (!parsed.ok) return { ok: false, reason: `is not a valid host name: ${parsed.reason}` };
      return { ok: true, value: { raw, host: parsed.host, ...(split.ports && { ports: split.ports }) } };
    }),
  );

/** Kubernetes namespace names (RFC 1123 labels). */
export const namespaceList = (from: string): ValueSchema<string[]> =>
  listOf(
    item(from, (raw) =>
      /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(raw)
        ? { ok: true, value: raw }
        : { ok: false, reason: "is not a namespace name (lower-case letters, digits and '-', at most 63)" },
    ),
  );

/** DNS domains (`cluster.local`): names as `--hosts` takes them, without ports, addresses or wildcards. */
export const domainList = (from: string): ValueSchema<string[]> =>
  listOf(
    item(from, (raw) => {
      const parsed = parseHost(raw);
      if (!parsed.ok) return { ok: false, reason: `is not a domain name: ${parsed.reason}` };
      if (parsed.host.kind === "name") return { ok: true, value: parsed.host.name.replace(/\.$/, "") };
      return {
        ok: false,
        reason:
          parsed.host.kind === "address"
            ? "is an address, not a domain name"
            : "is not a domain name: a wildcard (a domain already covers every name under it)",
      };
    }),
  );

export const portList = (from: string): ValueSchema<number[]> =>
  listOf(
    item(from, (raw) =>
      /^[0-9]{1,5}$/.test(raw) && Number(raw) >= 1 && Number(raw) <= 65535
        ? { ok: true, value: Number(raw) }
        : { ok: false, reason: "is not a port number (1-65535)" },
    ),
  );

/** An address or CIDR as written, parsed, with its ports if any; `hostBitsSet` is warned about by the caller. */
export interface CidrItem {
  readonly raw: string;
  readonly cidr: Cidr;
  readonly hostBitsSet: boolean;
  readonly ports?: PortRange;
}

/** `203.0.113.0/24`, `203.0.113.0/24:443`, `[2001:db8::/64]:8000-8100/udp`: the reason when it is not. */
export function parseCidrItem(raw: string): Parsed<CidrItem> {
  const split = splitPortSpec(raw);
  if (!split.ok) return { ok: false, reason: `has a bad port: ${split.reason}` };
  const parsed = parseCidr(split.target);
  if (!parsed.ok) return { ok: false, reason: `is not an IP address or CIDR: ${parsed.reason}` };
  return { ok: true, value: { raw, cidr: parsed.cidr, hostBitsSet: parsed.hostBitsSet, ...(split.ports && { ports: split.ports }) } };
}

export const cidrList = (from: string): ValueSchema<CidrItem[]> => listOf(item(from, parseCidrItem));

export const dnsServers = (from: string): ValueSchema<DnsServers> =>
  v.pipe(
    v.optional(v.array(v.string())),
    v.rawTransform(({ dataset, addIssue, NEVER }): DnsServers => {
      const items = dataset.value;
      if (items === undefined) return { kind: "resolv.conf" };
      if (items.length === 1 && items[0] === "any") return { kind: "any" };
      if (items.length === 0) addIssue({ message: `${from}: expected "any" or a list of resolver addresses` });
      const servers: Cidr[] = [];
      for (const raw of items) {
        const parsed = parseCidr(raw);
        if (parsed.ok && !parsed.hostBitsSet) servers.push(parsed.cidr);
        else addIssue({ message: `${from}: ${show(raw)} is not a resolver address` });
      }
      return servers.length > 0 ? { kind: "list", servers } : NEVER;
    }),
  ) as ValueSchema<DnsServers>;

/** A duration in milliseconds, between `minMs` and `maxMs`; absent means `fallback`. */
export const duration = (from: string, fallback: string, minMs: number, maxMs: number): ValueSchema<number> =>
  v.pipe(
    v.optional(v.string(), fallback),
    v.check(
      (raw) => {
        const ms = parseDuration(raw);
        return ms !== undefined && ms >= minMs && ms <= maxMs;
      },
      (issue) => `${from}: ${show(String(issue.input))} is not a duration between ${minMs / 1000}s and ${maxMs / 1000}s (e.g. ${fallback})`,
    ),
    v.transform((raw) => parseDuration(raw) ?? 0),
  ) as ValueSchema<number>;

/** A duration without bounds or default (`--confirm-within`): undefined when absent. */
export const optionalDuration = (from: string): ValueSchema<number | undefined> =>
  v.optional(
    item(from, (raw) => {
      const ms = parseDuration(raw);
      return ms ? { ok: true, value: ms } : { ok: false, reason: "is not a duration (e.g. 60s)" };
    }),
  ) as ValueSchema<number | undefined>;

/** One of `choices`; absent means the first. */
export const oneOf = <const T extends string>(from: string, choices: readonly [T, ...T[]]): ValueSchema<T> =>
  v.optional(
    v.picklist(
      choices,
      (issue) =>
        `${from}: ${show(String(issue.input))} must be ${choices.length === 2 ? `"${choices[0]}" or "${choices[1]}"` : `one of ${choices.join(", ")}`}`,
    ),
    choices[0],
  ) as ValueSchema<T>;

export const filePath = (from: string): ValueSchema<string | undefined> =>
  v.optional(v.pipe(v.string(), v.trim(), v.nonEmpty(`${from}: expected a file path`))) as ValueSchema<string | undefined>;

/** A path kept as written (the allow file: an empty one is reported with the file's other problems). */
export const text = (): ValueSchema<string | undefined> => v.optional(v.string()) as ValueSchema<string | undefined>;

export const flag = (): ValueSchema<boolean> => v.optional(v.boolean(), false) as ValueSchema<boolean>;

/** `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all IPv4 interfaces); HOST is an IP address or localhost. */
function parseListenAddress(text: string): ListenAddress | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):([0-9]{1,5})$/.exec(text.trim());
  const port = Number(match?.[3]);
  if (!match || port < 1 || port > 65535) return undefined;
  const hostname = match[1] ?? (match[2] || "0.0.0.0");
  const ip = parseAddress(hostname);
  if (hostname !== "localhost" && (ip === undefined || (ip.family === 6) !== (match[1] !== undefined))) return undefined;
  return { hostname, port };
}

export const listenAddress = (from: string): ValueSchema<ListenAddress | undefined> =>
  v.optional(
    item(from, (raw) => {
      const address = parseListenAddress(raw);
      return address
        ? { ok: true, value: address }
        : { ok: false, reason: "is not HOST:PORT (e.g. 0.0.0.0:9464, [::]:9464, 127.0.0.1:9464)" };
    }),
  ) as ValueSchema<ListenAddress | undefined>;

/** One port number, 1-65535; absent means `fallback`. */
export const port = (from: string, fallback: number): ValueSchema<number> =>
  v.optional(
    item(from, (raw) =>
      /^[0-9]{1,5}$/.test(raw) && Number(raw) >= 1 && Number(raw) <= 65535
        ? { ok: true, value: Number(raw) }
        : { ok: false, reason: "is not a port number (1-65535)" },
    ),
    String(fallback),
  ) as ValueSchema<number>;

/** The DNS proxy's group id (see proxy/identity.ts: not 0, not nogroup); absent means `fallback`. */
export const proxyGid = (from: string, fallback: number): ValueSchema<number> =>
  v.optional(
    item(from, (raw) => {
      const parsed = parseProxyGid(raw);
      return parsed.ok ? { ok: true, value: parsed.gid } : { ok: false, reason: `is not a group id for the DNS proxy: ${parsed.reason}` };
    }),
    String(fallback),
  ) as ValueSchema<number>;

/** A container resource (`cpu=10m`, `memory=64Mi`) as the Kubernetes API reads it. */
export interface ResourceItem {
  readonly name: "cpu" | "memory" | "ephemeral-storage";
  readonly quantity: string;
}

/** A Kubernetes quantity: a decimal number with an optional SI or binary suffix (no exponents). */
const QUANTITY = /^(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

function parseResourceItem(raw: string): Parsed<ResourceItem> {
  const [name, quantity, ...rest] = raw.split("=");
  if (rest.length > 0 || quantity === undefined) return { ok: false, reason: "is not NAME=QUANTITY (e.g. cpu=10m, memory=64Mi)" };
  if (name !== "cpu" && name !== "memory" && name !== "ephemeral-storage")
    return { ok: false, reason: "names no resource: cpu, memory or ephemeral-storage" };
  if (!QUANTITY.test(quantity)) return { ok: false, reason: "is not a Kubernetes quantity (e.g. 100m, 64Mi, 1)" };
  return { ok: true, value: { name, quantity } };
}

/** Container resources as `NAME=QUANTITY` items; absent means `fallback`. */
export const resourceList = (from: string, fallback: readonly string[]): ValueSchema<ResourceItem[]> =>
  v.optional(v.array(item(from, parseResourceItem)), [...fallback]) as ValueSchema<ResourceItem[]>;
