import type { Backend } from "../backends/backend.ts";
import type { ConfigOf } from "../config/config.ts";
import { runtimeError, usageError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { messageOf } from "../messages.ts";
import { metricsHandler } from "../watch/metrics.ts";
import { WATCH_STATE_FILE, watchStateOf } from "../watch/state.ts";
import { createWatcher, type Watcher, type WatchSnapshot } from "../watch/watcher.ts";
import type { World } from "../world.ts";
import { loadPolicy } from "./apply.ts";
import { watchStateFile, type Context } from "./context.ts";
import { preparePolicy } from "./prepare.ts";
import { saveNames } from "./names.ts";
import { reloadOnChange, type Reloader } from "./reload.ts";
import { addressesByName } from "../watch/refresh.ts";

/** `watch`: apply as `apply` does, then keep the allow sets true to DNS until SIGTERM or SIGINT. */
export async function watchCommand(ctx: Context, config: ConfigOf<"watch">): Promise<void> {
  const { world, log } = ctx;
  const options = config.watch;
  const stop = world.untilStopped();
  let server: { stop: () => void } | undefined;
  let reloader: Reloader | undefined;
  let removeOnExit = options.removeOnExit;
  try {
    const built = await preparePolicy(ctx, config.policy);
    let watcher: Watcher | undefined;
    let chosen: Backend | undefined;
    if (options.readyFile !== undefined) await checkWritable(world, options.readyFile, "--ready-file");
    if (options.metricsAddr !== undefined) {
      const { hostname, port } = options.metricsAddr;
      const lateMs = config.policy.resolveTimeoutMs + 30_000;
      const handle = metricsHandler({ snapshot: () => watcher?.snapshot(), status: async () => chosen?.status(), process: world.processStats, now: world.now, lateMs, reloads: () => reloader?.stats() });
      try {
        server = world.serve(options.metricsAddr, handle);
      } catch (error) {
        throw runtimeError(`--metrics-addr: cannot listen on ${hostname}:${port}: ${messageOf(error)}`);
      }
      if (config.policy.ports.length > 0 && !config.policy.ports.includes(port) && hostname !== "localhost" && !hostname.startsWith("127.") && hostname !== "::1") {
        log.warn(`--ports does not include the --metrics-addr port ${port}: probes and scrapes from outside the pod will be dropped`);
      }
    }
    const backend = await ctx.backend();
    chosen = backend;
    await loadPolicy(ctx, backend, built, undefined);
    const saveState = stateSaver(world, log, backend.name);
    watcher = createWatcher(
      { config: config.policy, schedule: options, resolvers: built.resolvers, resolutions: built.resolutions, policy: built.policy, loadedAt: world.now() },
      { backend, lookup: world.lookup, log, now: world.now, sleep: world.sleep, random: Math.random, cycled: saveState },
    );
    await saveState(watcher.snapshot());
    if (options.configFile !== undefined && ctx.reread !== undefined) {
      const text = await world.readFile(options.configFile).catch(() => undefined);
      reloader = reloadOnChange(ctx, options.configFile, config, text, watcher, (next) => void (removeOnExit = next.watch.removeOnExit));
    }
    if (options.readyFile !== undefined) await world.writeFile(options.readyFile, "loaded\n");
    log.info(`watching ${config.policy.hosts.length} names: looked up again as their TTLs run out (between ${options.minTtlMs / 1000}s and ${options.maxTtlMs / 1000}s); unseen addresses stay ${options.graceMs / 1000}s`);
    await watcher.run(stop.stopped);
    const signal = await stop.stopped;
    // What the rules hold now, named, for status after this process has gone.
    await saveNames(world, log, addressesByName(watcher.snapshot().state));
    await world.removeFile(watchStateFile(world.env, WATCH_STATE_FILE));
    await reloader?.stop();
    if (!removeOnExit) return log.success(`${signal}: stopped; the rules stay loaded`);
    await backend.remove();
    if (options.readyFile !== undefined) await world.removeFile(options.readyFile);
    log.success(`${signal}: stopped and removed domainwall's rules (--remove-on-exit)`);
  } finally {
    await reloader?.stop();
    server?.stop();
    stop.done();
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

/** Writes the watch state for `status`; a run directory that cannot be written is warned about once, never fatal. */
function stateSaver(world: World, log: Logger, backend: string): (snapshot: WatchSnapshot) => Promise<void> {
  const path = watchStateFile(world.env, WATCH_STATE_FILE);
  let warned = false;
  return async (snapshot) => {
    try {
      await world.writeFile(path, JSON.stringify(watchStateOf(snapshot, { monotonicMs: world.now(), epochMs: world.epochNow() }, world.pid, backend)));
    } catch (error) {
      if (!warned) log.warn(`cannot write ${path} (status will not show per-name addresses): ${messageOf(error)}`);
      warned = true;
    }
  };
}
