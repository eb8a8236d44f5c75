import { carryingBackend } from "../../backends/nft/carrying-backend.ts";
import type { ConfigOf } from "../../config/config.ts";
import { runtimeError, usageError } from "../../errors.ts";
import { IPTABLES_NO_PROXY, messageOf } from "../../messages.ts";
import { buildPolicy, type Policy } from "../../policy/policy.ts";
import { startProxyRuntime, upstreamsOf, type ProxyRuntime } from "../../watch/dns-proxy.ts";
import { loadPolicy } from "../apply.ts";
import type { Context } from "../context.ts";
import { lockedBackend } from "../locking.ts";
import { resolversOf } from "../prepare.ts";
import type { Upstream } from "../../proxy/upstream.ts";
import type { InheritedSockets } from "../../proxy/server.ts";
import { notifyReady, supervisorPid } from "../../proxy/supervisor.ts";
import type { WatchMode } from "./mode.ts";

/** With the proxy nothing cycles on its own: the state for `status` is written this often. */
const STATE_INTERVAL_MS = 5000;

/**
 * `watch --dns-proxy` (see watch/dns-proxy.ts): the process switches to the proxy's group before
 * it opens any socket, the proxy listens before the ruleset that redirects DNS to it is loaded, the
 * names resolved at start are admitted into the proxy's timeout sets, and ready means the proxy
 * answered. domainwall then looks nothing up itself: the apps' own queries keep the sets fresh.
 */
export function dnsProxyMode(
  ctx: Context,
  config: ConfigOf<"watch">,
  proxyConfig: { readonly port: number; readonly gid: number },
  /** The sockets a supervisor holds (this process is its worker); undefined: the proxy opens its own. */
  inherited?: readonly InheritedSockets[],
): WatchMode {
  const { world, log } = ctx;
  const options = config.watch;
  let proxy: ProxyRuntime | undefined;
  let upstreams: readonly Upstream[] = [];
  /** What the loaded policy read of this namespace (on-link prefixes, local networks): a reloaded one is built with the same. */
  let namespace: Pick<Policy, "onLink" | "localNets"> = { onLink: [] };
  return {
    looksUpNames: false,
    stateIntervalMs: STATE_INTERVAL_MS,
    async check() {
      const switched = ctx.runtime.switchGroup(proxyConfig.gid);
      if (!switched.ok) throw runtimeError(`--dns-proxy: ${switched.reason}; nothing was loaded`);
      const resolvers = await resolversOf(ctx, config.policy);
      upstreams = upstreamsOf(resolvers);
      if (upstreams.length === 0) {
        throw usageError(
          `--dns-proxy: no resolver to forward to (${resolvers.length === 0 ? "none found" : `only ${resolvers.map((r) => r.text).join(", ")}`}; a stub on loopback cannot be one): give --dns-servers; nothing was loaded`,
        );
      }
      if ((await ctx.backend()).name !== "nft") throw usageError(IPTABLES_NO_PROXY);
      return resolvers;
    },
    async start(built, backend) {
      namespace = built.policy;
      const runtime = await startProxyRuntime({
        policy: built.policy,
        upstreams,
        minTtlMs: options.minTtlMs,
        maxTtlMs: options.maxTtlMs,
        graceMs: options.graceMs,
        ...(inherited !== undefined && { inherited }),
        pids: { worker: world.pid, supervisor: supervisorPid(world.env) },
        executor: world.nft().executor,
        log,
        now: world.now,
      }).catch((error: unknown) => {
        throw runtimeError(
          `--dns-proxy: cannot start the DNS proxy on 127.0.0.1 and ::1 port ${proxyConfig.port}: ${messageOf(error)}; nothing was loaded`,
        );
      });
      proxy = runtime;
      log.info(
        `DNS proxy listening on 127.0.0.1 and ::1 port ${runtime.port} (group ${proxyConfig.gid}), forwarding to ${upstreams.map((u) => u.address).join(", ")}`,
      );
      await loadPolicy(ctx, backend, built, undefined, "watch", runtime.carryOver());
      const admitted = await runtime.admitResolved(
        built.resolutions.flatMap((r) => (r.status === "empty" ? [] : [{ host: r.host, addresses: r.addresses }])),
      );
      await runtime.selfCheck().catch((error: unknown) => {
        throw runtimeError(`--dns-proxy: ${messageOf(error)}; the rules stay loaded, so DNS here fails closed`);
      });
      log.info(
        `DNS proxy ready: ${config.policy.hosts.length} names (${admitted} addresses admitted at start) and ${config.policy.wildcards.length} wildcards allowed; ${config.policy.audit ? "other names are forwarded anyway and recorded (audit mode)" : "other names get NXDOMAIN"}`,
      );
      // A full load (a failed update retried, a reload whose chains differ) carries the admissions over.
      return lockedBackend(world, carryingBackend(backend, runtime, world.now));
    },
    // The proxy takes the reloaded list (it throws, changing nothing, when its declared sets would change).
    reconfigure: (next) => proxy?.replace(buildPolicy(next.config, [], next.resolvers, namespace.onLink, namespace.localNets).policy),
    report: () => proxy?.report(),
    ready: () => notifyReady(world.env),
    describe: () =>
      `admitted addresses stay their answer's TTL (clamped to ${options.minTtlMs / 1000}s-${options.maxTtlMs / 1000}s) plus ${options.graceMs / 1000}s after the last answer that gave them`,
    stop(signal, removed) {
      const port = proxy?.port ?? proxyConfig.port;
      proxy?.stop();
      proxy = undefined;
      if (removed) return "DNS goes to the resolvers directly again";
      const supervisor = supervisorPid(world.env);
      if (supervisor !== undefined)
        return `${signal}: this worker of the DNS proxy stopped and the rules stay loaded: its supervisor (pid ${supervisor}) holds the sockets (port ${port}) and starts another worker, queries waiting meanwhile, unless the whole watch is stopping`;
      return failsClosed(signal, port);
    },
  };
}

/** What the rules left loaded mean once nothing answers on the proxy's port. */
export const failsClosed = (signal: string, port: number): string =>
  `${signal}: the DNS proxy stopped and the rules stay loaded: DNS here now fails closed (queries are redirected to port ${port}, where nothing listens: connection refused) until domainwall watch --dns-proxy runs again or 'domainwall remove'`;
