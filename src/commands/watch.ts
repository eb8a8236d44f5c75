import type { Backend } from "../backends/backend.ts";
import type { Config, ConfigOf } from "../config/config.ts";
import { runtimeError, usageError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { messageOf } from "../messages.ts";
import { metricsHandler } from "../watch/metrics.ts";
import { stateWriteDue, WATCH_STATE_FILE, watchStateOf } from "../watch/state.ts";
import { createWatcher, type Reconfiguration, type Watcher, type WatchSnapshot } from "../watch/watcher.ts";
import type { World } from "../world.ts";
import { describeHolder, WATCH_MARKER } from "../backends/lock.ts";
import { loadPolicy } from "./apply.ts";
import { lockedBackend } from "./locking.ts";
import { watchStateFile, type Context } from "./context.ts";
import { preparePolicy, resolversOf } from "./prepare.ts";
import { saveNames } from "./names.ts";
import { reloadOnChange, type Reloader } from "./reload.ts";
import { addressesByName } from "../watch/refresh.ts";
import type { Cidr } from "../net/ip.ts";
import { IPTABLES_NO_PROXY } from "../messages.ts";
import { resolverNetworks } from "../policy/forbidden.ts";
import { guardBackend, startWatchGuard, stateOnStop, type GuardedBackend } from "../watch/guard-start.ts";
import type { RulesetGuard } from "../watch/guard.ts";
import { carryingBackend, startProxyRuntime, upstreamsOf, type ProxyReport, type ProxyRuntime } from "../proxy/runtime.ts";

/**
 * `watch`: apply as `apply` does, then keep the allow sets true to DNS until SIGTERM or SIGINT.
 * With `--dns-proxy` (see proxy/runtime.ts): the process switches to the proxy's group before it
 * opens any socket, the proxy listens before the ruleset that redirects DNS to it is loaded, the
 * names resolved at start are admitted into the proxy's timeout sets, and ready means the proxy
 * answered. domainwall then looks nothing up itself: the apps' own queries keep the sets fresh.
 */
export async function watchCommand(ctx: Context, config: ConfigOf<"watch">): Promise<void> {
  const { world, log } = ctx;
  const options = config.watch;
  const marker = await world.lock(WATCH_MARKER, "watch", 0);
  if (!marker.ok)
    throw runtimeError(
      `another domainwall watch is running in this network namespace: ${describeHolder(marker.holder)}; nothing was changed`,
    );
  const proxyConfig = config.policy.dnsProxy;
  if (proxyConfig !== undefined) {
    const switched = world.switchGroup(proxyConfig.gid);
    if (!switched.ok) throw runtimeError(`--dns-proxy: ${switched.reason}; nothing was loaded`);
  }
  const stop = world.untilStopped();
  let server: { stop: () => void } | undefined;
  let reloader: Reloader | undefined;
  let removeOnExit = options.removeOnExit;
  let proxy: ProxyRuntime | undefined;
  let stateTimer: Timer | undefined;
  let guard: RulesetGuard | undefined;
  let guarded: GuardedBackend | undefined;
  try {
    let resolvers: readonly Cidr[] | undefined;
    if (proxyConfig !== undefined) {
      if (options.readyFile !== undefined) await checkWritable(world, options.readyFile, "--ready-file");
      resolvers = await resolversOf(ctx, config.policy);
      const upstreams = upstreamsOf(resolvers);
      if (upstreams.length === 0) {
        throw usageError(
          `--dns-proxy: no resolver to forward to (${resolvers.length === 0 ? "none found" : `only ${resolvers.map((r) => r.text).join(", ")}`}; a stub on loopback cannot be one): give --dns-servers; nothing was loaded`,
        );
      }
      const backend = await ctx.backend();
      if (backend.name !== "nft") throw usageError(IPTABLES_NO_PROXY);
      proxy = await startProxyRuntime({
        names: config.policy.hosts,
        wildcards: config.policy.wildcards,
        hostPorts: config.policy.hostPorts,
        allow: config.policy.allow,
        ...(config.policy.refusePrivateAnswers && {
          privateGuard: { resolverNets: resolverNetworks(resolvers), privateDomains: config.policy.privateDomains },
        }),
        audit: config.policy.audit,
        port: proxyConfig.port,
        gid: proxyConfig.gid,
        upstreams,
        minTtlMs: options.minTtlMs,
        maxTtlMs: options.maxTtlMs,
        graceMs: options.graceMs,
        executor: world.nftExecutor(),
        log,
        now: world.now,
      }).catch((error: unknown) => {
        throw runtimeError(
          `--dns-proxy: cannot start the DNS proxy on 127.0.0.1 and ::1 port ${proxyConfig.port}: ${messageOf(error)}; nothing was loaded`,
        );
      });
      log.info(
        `DNS proxy listening on 127.0.0.1 and ::1 port ${proxy.port} (group ${proxyConfig.gid}), forwarding to ${upstreams.map((u) => u.address).join(", ")}`,
      );
    }
    const built = await preparePolicy(ctx, config.policy, undefined, resolvers);
    let watcher: Watcher | undefined;
    let chosen: Backend | undefined;
    if (options.readyFile !== undefined && proxy === undefined) await checkWritable(world, options.readyFile, "--ready-file");
    if (options.metricsAddr !== undefined) {
      const { hostname, port } = options.metricsAddr;
      const lateMs = config.policy.resolveTimeoutMs + 30_000;
      const handle = metricsHandler({
        snapshot: () => watcher?.snapshot(),
        status: async () => chosen?.status(),
        process: world.processStats,
        now: world.now,
        lateMs,
        reloads: () => reloader?.stats(),
        proxy: () => proxy?.report(),
        missing: async () => (guarded === undefined ? [] : guarded.missingNow()),
        guard: () => guard?.stats(),
      });
      try {
        server = world.serve(options.metricsAddr, handle);
      } catch (error) {
        throw runtimeError(`--metrics-addr: cannot listen on ${hostname}:${port}: ${messageOf(error)}`);
      }
      if (
        config.policy.ports.length > 0 &&
        !config.policy.ports.includes(port) &&
        hostname !== "localhost" &&
        !hostname.startsWith("127.") &&
        hostname !== "::1"
      ) {
        log.warn(`--ports does not include the --metrics-addr port ${port}: probes and scrapes from outside the pod will be dropped`);
      }
    }
    const unlocked = await ctx.backend();
    chosen = unlocked;
    await loadPolicy(ctx, unlocked, built, undefined, "watch", proxy?.carryOver()); // under the kernel lock
    // Each update, and --remove-on-exit, under the kernel lock; with the proxy a full load carries its admissions over.
    // The guard puts the rules back when they are removed from outside, through the same queue as the loop's loads.
    guarded = guardBackend(
      lockedBackend(world, proxy === undefined ? unlocked : carryingBackend(unlocked, proxy, world.now)),
      built.policy,
    );
    const { backend } = guarded;
    guard = startWatchGuard(guarded, backend.name, log, world);
    if (proxy !== undefined) {
      const admitted = await proxy.admitResolved(
        built.resolutions.flatMap((r) => (r.status === "empty" ? [] : [{ host: r.host, addresses: r.addresses }])),
      );
      await proxy.selfCheck().catch((error: unknown) => {
        throw runtimeError(`--dns-proxy: ${messageOf(error)}; the rules stay loaded, so DNS here fails closed`);
      });
      log.info(
        `DNS proxy ready: ${config.policy.hosts.length} names (${admitted} addresses admitted at start) and ${config.policy.wildcards.length} wildcards allowed; ${config.policy.audit ? "other names are forwarded anyway and recorded (audit mode)" : "other names get NXDOMAIN"}`,
      );
    }
    const saveState = stateSaver(world, log, backend.name, () => proxy?.report());
    // With the proxy, the watcher looks nothing up (no names): the apps' queries keep the sets fresh.
    const watched = proxy === undefined ? config.policy : proxyLoopConfig(config.policy);
    watcher = createWatcher(
      {
        config: watched,
        schedule: options,
        resolvers: built.resolvers,
        resolutions: proxy === undefined ? built.resolutions : [],
        policy: built.policy,
        loadedAt: world.now(),
      },
      {
        backend,
        lookup: world.lookup,
        log,
        now: world.now,
        sleep: world.sleep,
        setTimer: world.setTimer,
        random: Math.random,
        cycled: saveState.afterCycle,
      },
    );
    const current = watcher;
    await saveState(current.snapshot());
    if (proxy !== undefined) stateTimer = setInterval(() => void saveState(current.snapshot()), PROXY_STATE_INTERVAL_MS);
    if (options.configFile !== undefined && ctx.reread !== undefined) {
      const text = await world.readFile(options.configFile).catch(() => undefined);
      // With the proxy the loop looks nothing up: a reloaded list goes to the proxy, not the loop.
      const target = {
        reconfigure(next: Reconfiguration) {
          if (proxy === undefined) return current.reconfigure(next);
          proxy.setList({
            names: next.config.hosts,
            wildcards: next.config.wildcards,
            hostPorts: next.config.hostPorts,
            allow: next.config.allow,
            audit: next.config.audit,
            ...(next.config.refusePrivateAnswers && {
              privateGuard: { resolverNets: resolverNetworks(next.resolvers), privateDomains: next.config.privateDomains },
            }),
          });
          current.reconfigure({ ...next, config: proxyLoopConfig(next.config) });
        },
      };
      reloader = reloadOnChange(ctx, options.configFile, config, text, target, (next) => void (removeOnExit = next.watch.removeOnExit));
    }
    if (options.readyFile !== undefined) await world.writeFile(options.readyFile, "loaded\n");
    if (proxy === undefined) {
      log.info(
        `watching ${config.policy.hosts.length} names: looked up again as their TTLs run out (between ${options.minTtlMs / 1000}s and ${options.maxTtlMs / 1000}s); unseen addresses stay ${options.graceMs / 1000}s`,
      );
    } else {
      log.info(
        `admitted addresses stay their answer's TTL (clamped to ${options.minTtlMs / 1000}s-${options.maxTtlMs / 1000}s) plus ${options.graceMs / 1000}s after the last answer that gave them`,
      );
    }
    await watcher.run(stop.stopped);
    const signal = await stop.stopped;
    guard.stop();
    clearInterval(stateTimer);
    // What the rules hold now, named, for status after this process has gone.
    await saveNames(world, log, addressesByName(current.snapshot().state));
    await world.removeFile(watchStateFile(world.env, WATCH_STATE_FILE));
    await reloader?.stop();
    if (!removeOnExit) {
      proxy?.stop();
      const missing = await stateOnStop(guarded);
      if (missing !== undefined) return log.error(`${signal}: stopped; domainwall's rules are NOT loaded as they should be: ${missing}`);
      if (proxy !== undefined) {
        log.warn(
          `${signal}: the DNS proxy stopped and the rules stay loaded: DNS here now fails closed (queries are redirected to port ${proxy.port}, where nothing listens: connection refused) until domainwall watch --dns-proxy runs again or 'domainwall remove'`,
        );
      }
      return log.success(`${signal}: stopped; the rules stay loaded`);
    }
    await backend.remove();
    proxy?.stop();
    if (options.readyFile !== undefined) await world.removeFile(options.readyFile);
    log.success(
      `${signal}: stopped and removed domainwall's rules (--remove-on-exit)${proxy === undefined ? "" : "; DNS goes to the resolvers directly again"}`,
    );
  } finally {
    guard?.stop();
    await reloader?.stop();
    clearInterval(stateTimer);
    proxy?.stop();
    server?.stop();
    stop.done();
    marker.release();
  }
}

/**
 * The loop's configuration with the proxy: it looks no name up (the apps' queries keep the sets
 * fresh), yet the policy it builds on a reload or a retried load must declare the proxy's port sets
 * of the whole list, names and wildcards alike, as the loaded one does (Policy.proxy.portSets):
 * without the names, a full load would drop the sets of `api.example.com:443` the proxy admits into.
 */
export const proxyLoopConfig = (config: Config): Config => ({ ...config, hosts: [], wildcards: [...config.hosts, ...config.wildcards] });

/** With the proxy nothing cycles on its own: the state for `status` is written this often. */
const PROXY_STATE_INTERVAL_MS = 5000;

/**
 * A file domainwall must write later (after the rules are loaded): remove what is there and prove
 * its directory takes a file now, so a bad path exits 2 before the kernel is touched.
 */
async function checkWritable(world: World, path: string, flag: string): Promise<void> {
  const probe = `${path}.domainwall-check`;
  try {
    await world.removeFile(path);
    await world.writeFile(probe, "");
    await world.removeFile(probe);
  } catch (error) {
    throw usageError(`${flag}: cannot write ${JSON.stringify(path)}: ${messageOf(error)}`);
  }
}

/**
 * Writes the watch state for `status`; a run directory that cannot be written is warned about once,
 * never fatal. `afterCycle` writes only when stateWriteDue says so.
 */
function stateSaver(world: World, log: Logger, backend: string, proxy: () => ProxyReport | undefined) {
  const path = watchStateFile(world.env, WATCH_STATE_FILE);
  let warned = false;
  let last: { at: number; state: WatchSnapshot["state"] } | undefined;
  const save = async (snapshot: WatchSnapshot): Promise<void> => {
    last = { at: world.now(), state: snapshot.state };
    try {
      await world.writeFile(
        path,
        JSON.stringify(watchStateOf(snapshot, { monotonicMs: world.now(), epochMs: world.epochNow() }, world.pid, backend, proxy())),
      );
    } catch (error) {
      if (!warned) log.warn(`cannot write ${path} (status will not show per-name addresses): ${messageOf(error)}`);
      warned = true;
    }
  };
  const afterCycle = (snapshot: WatchSnapshot): Promise<void> =>
    stateWriteDue(last, snapshot.state, world.now()) ? save(snapshot) : Promise.resolve();
  return Object.assign(save, { afterCycle });
}
