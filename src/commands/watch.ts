import type { Backend } from "../backends/backend.ts";
import { describeHolder, WATCH_MARKER } from "../backends/lock.ts";
import type { ConfigOf } from "../config/config.ts";
import { runtimeError, usageError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { messageOf } from "../messages.ts";
import type { ProxyReport } from "../watch/dns-proxy.ts";
import { metricsHandler, type MetricsSource } from "../watch/metrics.ts";
import { addressesByName } from "../watch/refresh.ts";
import { stateWriteDue, WATCH_STATE_FILE, watchStateOf } from "../watch/state.ts";

import { createWatcher, type Reconfiguration, type Watcher, type WatchSnapshot } from "../watch/watcher.ts";
import type { Runtime } from "../runtime.ts";
import type { World } from "../world.ts";
import { explainResolveFailure } from "./blocked-lookups.ts";
import { checkRunDir, watchStateFile, type Context } from "./context.ts";
import { saveNames } from "./names.ts";
import { preparePolicy } from "./prepare.ts";
import { reloadOnChange, type Reloader } from "./reload.ts";
import { ACCEPTED_CONFIG_ENV, ACCEPTED_CONFIG_FILE, acceptedConfigPath, inheritedSockets, selfCommand } from "../proxy/supervisor.ts";
import { dnsProxyMode, failsClosed } from "./watch/proxy-mode.ts";
import { resolveMode } from "./watch/resolve-mode.ts";
import { deniedReader } from "../backends/nft/denied.ts";
import { logDenial, startDenialStream, type DenialStream } from "../watch/denial-stream.ts";
import { guardBackend, startWatchGuard, stateOnStop, type GuardedBackend } from "../watch/guard-start.ts";
import type { RulesetGuard } from "../watch/guard.ts";

/**
 * `watch`: apply as `apply` does, then keep the policy true to DNS until SIGTERM or SIGINT, in one
 * of two modes (commands/watch/resolve-mode.ts, commands/watch/proxy-mode.ts), chosen here and run the same way.
 */
export async function watchCommand(ctx: Context, config: ConfigOf<"watch">): Promise<number | void> {
  const { world, log } = ctx;
  const options = config.watch;
  await checkRunDir(world);
  // With the proxy, a supervisor holds its sockets and runs this command again as the answering worker (proxy/supervisor.ts).
  const inherited = proxySockets(world);
  const supervise = ctx.runtime.superviseProxy;
  if (config.policy.dnsProxy !== undefined && inherited === undefined && supervise !== undefined)
    return superviseWatch(ctx, supervise, config, config.policy.dnsProxy);
  const marker = await world.lock(WATCH_MARKER, "watch", 0);
  if (!marker.ok)
    throw runtimeError(
      `another domainwall watch is running in this network namespace: ${describeHolder(marker.holder)}; nothing was changed`,
    );
  const mode =
    config.policy.dnsProxy === undefined ? resolveMode(ctx, config) : dnsProxyMode(ctx, config, config.policy.dnsProxy, inherited);
  let stop: ReturnType<World["untilStopped"]> | undefined;
  let server: { stop: () => void } | undefined;
  let reloader: Reloader | undefined;
  let removeOnExit = options.removeOnExit;
  let stateTimer: Timer | undefined;
  let denials: DenialStream | undefined;
  let guard: RulesetGuard | undefined;
  let guarded: GuardedBackend | undefined;
  try {
    stop = world.untilStopped();
    const resolvers = await mode.check();
    if (options.readyFile !== undefined) await checkWritable(world, options.readyFile, "--ready-file");
    const built = await preparePolicy(ctx, config.policy, undefined, resolvers, world.watchLookup).catch(async (error: unknown) => {
      throw await explainResolveFailure(ctx, ctx.backend, error);
    });
    let watcher: Watcher | undefined;
    let chosen: Backend | undefined;
    server = serveMetrics(ctx, config, {
      snapshot: () => watcher?.snapshot(),
      status: async () => chosen?.status(),
      reloads: () => reloader?.stats(),
      proxy: () => mode.report(),
      missing: async () => (guarded === undefined ? [] : guarded.missingNow()),
      guard: () => guard?.stats(),
    });
    chosen = await ctx.backend();
    // The guard puts the rules back when they are removed from outside, through the same queue as the loop's loads.
    guarded = guardBackend(await mode.start(built, chosen), built.policy);
    const { backend } = guarded;
    guard = startWatchGuard(guarded, backend.name, log, world);
    const saveState = stateSaver(world, log, backend.name, () => mode.report());
    watcher = createWatcher(
      {
        config: config.policy,
        lookUpNames: mode.looksUpNames,
        schedule: options,
        resolvers: built.resolvers,
        resolutions: mode.looksUpNames ? built.resolutions : [],
        policy: built.policy,
        loadedAt: world.now(),
      },
      {
        backend,
        lookup: world.watchLookup,
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
    if (mode.stateIntervalMs !== undefined) stateTimer = setInterval(() => void saveState(current.snapshot()), mode.stateIntervalMs);
    if (options.configFile !== undefined && ctx.reread !== undefined) {
      reloader = await reloadConfigFile(
        ctx,
        options.configFile,
        config,
        (next) => {
          mode.reconfigure(next);
          current.reconfigure(next);
        },
        (next) => (removeOnExit = next.watch.removeOnExit),
      );
    }
    if (options.readyFile !== undefined) await world.writeFile(options.readyFile, "loaded\n");
    mode.ready();
    // The listed names that last gave a denied address: the proxy's admissions, or the loop's own answers.
    denials = denialStream(
      ctx,
      chosen,
      (address) =>
        mode.report()?.admitted.find((a) => a.address === address)?.names ??
        addressesByName(current.snapshot().state).flatMap((n) => (n.addresses.some((a) => a.address === address) ? [n.host] : [])),
    );
    log.info(mode.describe());
    await watcher.run(stop.stopped);
    const signal = await stop.stopped;
    guard.stop();
    clearInterval(stateTimer);
    await denials?.stop();
    // What the rules hold now, named, for status after this process has gone.
    await saveNames(world, log, addressesByName(current.snapshot().state), current.snapshot().hostPorts);
    await world.removeFile(watchStateFile(world.env, WATCH_STATE_FILE));
    await reloader?.stop();
    // A supervised worker keeps the rules: it may be replaced in a moment; its supervisor removes them when the whole watch stops.
    if (!removeOnExit || inherited !== undefined) {
      const said = mode.stop(signal, false);
      const missing = await stateOnStop(guarded);
      if (missing !== undefined) return log.error(`${signal}: stopped; domainwall's rules are NOT loaded as they should be: ${missing}`);
      if (said !== undefined) log.warn(said);
      return log.success(`${signal}: stopped; the rules stay loaded`);
    }
    await backend.remove();
    const said = mode.stop(signal, true);
    if (options.readyFile !== undefined) await world.removeFile(options.readyFile);
    log.success(`${signal}: stopped and removed domainwall's rules (--remove-on-exit)${said === undefined ? "" : `; ${said}`}`);
  } finally {
    guard?.stop();
    await denials?.stop();
    await reloader?.stop();
    clearInterval(stateTimer);
    mode.stop("error", false); // a second stop does nothing
    server?.stop();
    stop?.done();
    marker.release();
  }
}

/** `--metrics-addr`: serve /healthz and /metrics, read when asked; warns when --ports would drop scrapes from outside. */
function serveMetrics(
  { world, log }: Context,
  config: ConfigOf<"watch">,
  source: Omit<MetricsSource, "process" | "now" | "lateMs">,
): { stop: () => void } | undefined {
  const address = config.watch.metricsAddr;
  if (address === undefined) return undefined;
  const { hostname, port } = address;
  const handle = metricsHandler({
    ...source,
    process: world.processStats,
    now: world.now,
    lateMs: config.policy.resolveTimeoutMs + 30_000,
  });
  let server: { stop: () => void };
  try {
    server = world.serve(address, handle);
  } catch (error) {
    throw runtimeError(`--metrics-addr: cannot listen on ${hostname}:${port}: ${messageOf(error)}`);
  }
  const local = hostname === "localhost" || hostname.startsWith("127.") || hostname === "::1";
  if (config.policy.ports.length > 0 && !config.policy.ports.includes(port) && !local)
    log.warn(`--ports does not include the --metrics-addr port ${port}: probes and scrapes from outside the pod will be dropped`);
  return server;
}

/**
 * `--config FILE`: reload on a change or SIGHUP (commands/reload.ts). `reconfigure` takes an
 * accepted configuration's part; a supervised worker keeps the accepted text for the next one.
 */
async function reloadConfigFile(
  ctx: Context,
  path: string,
  config: ConfigOf<"watch">,
  reconfigure: (next: Reconfiguration) => void,
  accepted: (next: ConfigOf<"watch">) => void,
): Promise<Reloader> {
  const { world, log } = ctx;
  const text = ctx.configText ?? (await world.readFile(path).catch(() => undefined));
  const keep = acceptedConfigPath(world.env, watchStateFile(world.env, ACCEPTED_CONFIG_FILE));
  return reloadOnChange(ctx, path, config, text, { reconfigure }, (next, nextText) => {
    accepted(next);
    // The next worker starts from what this one accepted.
    if (keep !== undefined && nextText !== undefined)
      world.writeFile(keep, nextText).catch((error: unknown) => log.warn(`cannot keep the accepted configuration: ${messageOf(error)}`));
  });
}

/** A worker's sockets, inherited from its supervisor; undefined in any other process. */
function proxySockets(world: World) {
  try {
    return inheritedSockets(world.env);
  } catch (error) {
    throw runtimeError(`--dns-proxy: ${messageOf(error)}; nothing was loaded`);
  }
}

/**
 * The live denial stream in the logs (nft only: iptables-legacy keeps counters, not destinations).
 * `namesOf`: the listed names that last gave an address, from the watch's own state.
 */
function denialStream({ world, log }: Context, backend: Backend, namesOf: (address: string) => readonly string[]) {
  if (backend.name !== "nft") {
    log.info("denied destinations are not logged with iptables-legacy (it keeps counters only; see status)");
    return undefined;
  }
  return startDenialStream({
    read: deniedReader(world.nft().executor),
    emit: logDenial(log, namesOf),
    failed: (message) => log.warn(`cannot read the denied destinations for the log: ${message}`),
    now: world.now,
    setTimer: world.setTimer,
  });
}

/** `watch --dns-proxy`: this process holds the proxy's sockets and runs the watch as a worker on them (proxy/supervisor.ts). */
async function superviseWatch(
  ctx: Context,
  supervise: NonNullable<Runtime["superviseProxy"]>,
  config: ConfigOf<"watch">,
  proxy: { readonly port: number; readonly gid: number },
): Promise<number> {
  const { world, log } = ctx;
  const { readyFile, configFile } = config.watch;
  // The --config text this process parsed, kept for each new worker (see ACCEPTED_CONFIG_ENV); replaced by a worker's accepted reload.
  const accepted = configFile === undefined || ctx.configText === undefined ? undefined : watchStateFile(world.env, ACCEPTED_CONFIG_FILE);
  if (accepted !== undefined) {
    await world.writeFile(accepted, ctx.configText as string).catch((error: unknown) => {
      throw runtimeError(`--dns-proxy: cannot keep the configuration in ${accepted}: ${messageOf(error)}; nothing was loaded`);
    });
  }
  // Under --remove-on-exit the rules go only here, once the last worker has exited on the stop this process passed on.
  const stopped = async (signal: string) => {
    if (!(await removeOnExitNow(ctx, config, accepted))) return log.warn(failsClosed(signal, proxy.port));
    // The worker's marker, so a watch started meanwhile keeps its rules.
    const marker = await world.lock(WATCH_MARKER, "watch", 0);
    if (!marker.ok) return log.warn(`${signal}: the rules stay: another watch runs here now (${describeHolder(marker.holder)})`);
    try {
      await (await ctx.backend()).remove();
    } finally {
      marker.release();
    }
    if (readyFile !== undefined) await world.removeFile(readyFile);
    log.success(`${signal}: stopped and removed domainwall's rules (--remove-on-exit); DNS goes to the resolvers directly again`);
  };
  const env = accepted === undefined ? world.env : { ...world.env, [ACCEPTED_CONFIG_ENV]: accepted };
  try {
    return await supervise({
      port: proxy.port,
      gid: proxy.gid,
      command: selfCommand(),
      env,
      warn: (m) => log.warn(m),
      info: (m) => log.info(m),
      stopped,
    });
  } catch (error) {
    throw runtimeError(
      `--dns-proxy: cannot hold the DNS proxy's sockets on 127.0.0.1 and ::1 port ${proxy.port}: ${messageOf(error)}; nothing was loaded`,
    );
  }
}

/** --remove-on-exit as the last accepted configuration says (a reload may have changed it); the one at start when that cannot be read. */
async function removeOnExitNow(ctx: Context, config: ConfigOf<"watch">, accepted: string | undefined): Promise<boolean> {
  if (accepted === undefined || ctx.reread === undefined) return config.watch.removeOnExit;
  try {
    const text = await ctx.world.readFile(accepted);
    return text === undefined ? config.watch.removeOnExit : ((await ctx.reread(text)).config as ConfigOf<"watch">).watch.removeOnExit;
  } catch {
    return config.watch.removeOnExit;
  }
}

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
