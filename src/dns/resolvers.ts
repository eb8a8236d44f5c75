import type { DnsServers } from "../config/values.ts";
import { usageError } from "../errors.ts";
import { contains, type Cidr } from "../net/ip.ts";
import { onlyLocalStub, parseResolvConf, RESOLVED_UPSTREAM_CONF } from "./resolv-conf.ts";

const RESOLV_CONF = "/etc/resolv.conf";

export interface ResolverIo {
  readonly readFile: (path: string) => Promise<string | undefined>;
  readonly warn: (message: string) => void;
  readonly info: (message: string) => void;
}

/**
 * The resolvers DNS may go to: none to list for "any", the given list, or the `nameserver`s of
 * resolv.conf (behind a local stub such as systemd-resolved, also the stub's upstream servers; a
 * loopback stub whose upstreams are unknown is a usage error: exit 2, asking for --dns-servers).
 */
export async function resolversFor(dnsServers: DnsServers, io: ResolverIo): Promise<Cidr[]> {
  if (dnsServers.kind === "any") return [];
  if (dnsServers.kind === "list") {
    const system = await systemResolvers(io);
    const missing = leftOut(system, dnsServers.servers);
    if (missing.length > 0)
      io.warn(
        `--dns-servers ${texts(dnsServers.servers)} leaves out the resolvers this host's lookups use (${RESOLV_CONF}: ${texts(system)}), ${texts(missing)}: once these rules are loaded, the apps' lookups and domainwall's own fail, so a later apply or watch cannot resolve its names; add them to --dns-servers`,
      );
    return [...dnsServers.servers];
  }
  const read = async (path: string) => {
    const { servers, ignored } = parseResolvConf((await io.readFile(path)) ?? "");
    for (const entry of ignored) io.warn(`${path}: ignoring nameserver ${JSON.stringify(entry)}: not an IP address`);
    return servers;
  };
  const servers = await read(RESOLV_CONF);
  if (servers.length === 0) io.warn(`${RESOLV_CONF} lists no nameserver: DNS is allowed only over loopback; use --dns-servers`);
  if (!onlyLocalStub(servers)) return servers;
  const upstream = (await read(RESOLVED_UPSTREAM_CONF)).filter((server) => !onlyLocalStub([server]));
  if (upstream.length === 0) {
    // The stub's own queries leave through the firewall to servers we do not know: a policy allowing
    // DNS only to the stub would be a silent DNS outage.
    throw usageError(
      `${RESOLV_CONF} lists only a local stub resolver (${servers.map((s) => s.text).join(", ")}) and its upstream servers are unknown (no ${RESOLVED_UPSTREAM_CONF}): its own queries would be dropped; pass --dns-servers with the stub's upstream servers (or --dns-servers any); nothing was loaded`,
    );
  }
  io.info(
    `${RESOLV_CONF} points at a local stub resolver; allowing DNS to its upstream servers ${upstream.map((s) => s.text).join(", ")} (from ${RESOLVED_UPSTREAM_CONF})`,
  );
  return [...servers, ...upstream];
}

const texts = (servers: readonly Cidr[]): string => servers.map((s) => s.text).join(", ");

/** The servers of `system` that no entry of `allowed` holds. */
export const leftOut = (system: readonly Cidr[], allowed: readonly Cidr[]): Cidr[] =>
  system.filter((server) => !allowed.some((entry) => contains(entry, server)));

/**
 * The resolvers this host's lookups (the apps', and domainwall's own through c-ares) go to: the
 * `nameserver`s of resolv.conf, or behind a local stub its upstream servers; loopback left out
 * (the ruleset always lets loopback through). Empty when there is no resolv.conf to read.
 */
export async function systemResolvers(io: Pick<ResolverIo, "readFile">): Promise<Cidr[]> {
  const read = async (path: string) => parseResolvConf((await io.readFile(path).catch(() => undefined)) ?? "").servers;
  const servers = await read(RESOLV_CONF);
  const remote = servers.filter((server) => !onlyLocalStub([server]));
  return onlyLocalStub(servers) ? (await read(RESOLVED_UPSTREAM_CONF)).filter((server) => !onlyLocalStub([server])) : remote;
}
