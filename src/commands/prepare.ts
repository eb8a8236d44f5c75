import type { Config } from "../config/config.ts";
import { resolversFor } from "../dns/resolvers.ts";
import { resolveHosts, type HostResolution } from "../dns/resolve.ts";
import { withDnsDiagnosis } from "../dns/diagnose.ts";
import { FIB_TRIE, IF_INET6, localNetworks, onLinkPrefixes, ROUTE_V4, ROUTE_V6, type LocalNet } from "../net/interfaces.ts";
import type { Cidr } from "../net/ip.ts";
import { admitResolutions, buildPolicy, summarize, type Policy, type PolicySummary } from "../policy/policy.ts";
import type { Context } from "./context.ts";

/** config → resolution → policy: everything before the kernel, shared by apply, render, check and watch. */
export interface PreparedPolicy {
  readonly config: Config;
  readonly policy: Policy;
  readonly summary: PolicySummary;
  readonly resolutions: readonly HostResolution[];
  readonly resolvers: readonly Cidr[];
  readonly resolveMs: number;
  readonly buildMs: number;
}

/** Resolve the names and build the policy; `outcome` is what a failed gate means for the command ("nothing was loaded"). */
export async function preparePolicy(
  { world, log }: Context,
  config: Config,
  outcome?: string,
  knownResolvers?: readonly Cidr[],
  /** The lookup to resolve through: `world.lookup` unless said (watch: `world.watchLookup`). */
  lookup = world.lookup,
): Promise<PreparedPolicy> {
  const started = world.now();
  const [resolvers, resolutions, ifInet6] = await Promise.all([
    knownResolvers ?? resolversOf({ world, log }, config),
    resolveHosts(config.hosts, {
      lookup,
      deadlineMs: config.resolveTimeoutMs,
      now: world.now,
      sleep: world.sleep,
      setTimer: world.setTimer,
    }),
    world.readFile(IF_INET6),
  ]);
  // Read whatever the configuration says: a reload may turn --refuse-private-answers on.
  const localNets = await readLocalNetworks(world, ifInet6);
  const resolveMs = Math.round(world.now() - started);
  // The DNS proxy needs no answer to start: the apps' own queries admit their addresses once the resolver answers.
  const unresolved = config.dnsProxy === undefined ? [] : resolutions.filter((r) => r.status === "failed" && r.addresses.length === 0);
  if (unresolved.length > 0)
    log.warn(
      `--dns-proxy: could not resolve ${unresolved.map((r) => `${r.host} (${r.status === "failed" ? r.error : ""})`).join(", ")} at start-up: starting with nothing admitted for ${unresolved.length === 1 ? "it" : "them"}; the apps' queries admit their answers once the resolver answers`,
    );
  const gated = unresolved.length === 0 ? resolutions : resolutions.filter((r) => !unresolved.includes(r));
  let admitted: ReturnType<typeof admitResolutions>;
  try {
    admitted = admitResolutions(config, gated, outcome);
  } catch (error) {
    throw await withDnsDiagnosis(error, resolutions, world); // names the resolvers asked and how each failed
  }
  const names = config.dnsProxy === undefined ? admitted.names : [];
  const { policy, warnings, refusedNames } = buildPolicy(config, names, resolvers, onLinkPrefixes(ifInet6), localNets);
  // A name whose every answer was refused allows nothing: skipped, not resolved.
  const counts = {
    ...admitted.counts,
    namesResolved: admitted.counts.namesResolved - refusedNames.length,
    namesSkipped: admitted.counts.namesSkipped + refusedNames.length,
  };
  const buildMs = world.now() - started - resolveMs;
  for (const warning of [...admitted.warnings, ...warnings]) log.warn(warning);
  return { config, policy, summary: summarize(counts, policy), resolutions, resolvers, resolveMs, buildMs };
}

/** This namespace's own addresses, on-link networks and gateways, from /proc (unreadable files count as empty). */
export async function readLocalNetworks(world: Pick<Context["world"], "readFile">, ifInet6?: string): Promise<LocalNet[]> {
  const read = (path: string) => world.readFile(path).catch(() => undefined);
  const [route, ipv6Route, fibTrie, inet6] = await Promise.all([read(ROUTE_V4), read(ROUTE_V6), read(FIB_TRIE), ifInet6 ?? read(IF_INET6)]);
  return localNetworks({ route, ipv6Route, fibTrie, ifInet6: inet6 });
}

/** The resolvers DNS may go to (resolv.conf, its stub's upstream file, or --dns-servers). */
export const resolversOf = ({ world, log }: Pick<Context, "world" | "log">, config: Config): Promise<Cidr[]> =>
  resolversFor(config.dnsServers, { readFile: world.readFile, warn: (m) => log.warn(m), info: (m) => log.info(m) });

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

export const describeSummary = (s: PolicySummary, resolveMs: number, times?: { renderMs: number; loadMs: number }): string =>
  [
    `${plural(s.namesResolved, "name")} resolved, ${s.namesSkipped} skipped${s.namesFailed > 0 ? `, ${s.namesFailed} failed` : ""}`,
    `${s.ipv4} IPv4 and ${s.ipv6} IPv6 allowed`,
    s.ports.length > 0 ? `inbound TCP ${s.ports.join(",")}` : "inbound untouched",
    `resolve ${resolveMs} ms${times === undefined ? "" : `, render ${times.renderMs} ms, load ${times.loadMs} ms`}`,
  ].join("; ");
