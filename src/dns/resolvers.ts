import type { DnsServers } from "../config/values.ts";
import { usageError } from "../errors.ts";
import type { Cidr } from "../net/ip.ts";
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
  if (dnsServers.kind === "list") return [...dnsServers.servers];
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
