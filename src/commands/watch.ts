import type { Backend } from "../backends/backend.ts";
import type { ConfigOf } from "../config/config.ts";
import { runtimeError, usageError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { messageOf } from "../messages.ts";
import { metricsHandler } from "../watch/metrics.ts";
import { WATCH_STATE_FILE, watchStateOf } from "../watch/state.ts";
import { createWatcher, type Watcher, type WatchSnapshot } from "../watch/watcher.ts";
import type { World } from "../world.ts";
import { describeHolder, WATCH_MARKER } from "../backends/lock.ts";
import { loadPolicy } from "./apply.ts";
import { lockedBackend } from "./locking.ts";
import { watchStateFile, type Context } from "./context.ts";
import { preparePolicy } from "./prepare.ts";

/** `watch`: apply as `apply` does, then keep the allow sets true to DNS until SIGTERM or SIGINT. */
export async function watchCommand(ctx: Context, config: ConfigOf<"watch">): Promise<void> {
  const { world, log } = ctx;
  const options = config.watch;
  const marker = await world.lock(WATCH_MARKER, "watch", 0);
  if (!marker.ok) throw runtimeError(`another domainwall watch is running in this network namespace: ${describeHolder(marker.holder)}; nothing was changed`);
  const stop = world.untilStopped();
  let server: { stop: () => void } | undefined;
  try {
    const built = await preparePolicy(ctx, config.policy);
    let watcher: Watcher | undefined;
    let chosen: Backend | undefined;
    if (options.readyFile !== undefined) await checkWritable(world, options.readyFile, "--ready-file");
    if (options.metricsAddr !== undefined) {
      const { hostname, port } = options.metricsAddr;
      const lateMs = config.policy.resolveTimeoutMs + 30_000;
      const handle = metricsHandler({ snapshot: () => watcher?.snapshot(), status: async () => chosen?.status(), process: world.processStats, now: world.now, lateMs });
      try {
        server = world.serve(options.metricsAddr, handle);
      } catch (error) {
        throw runtimeError(`--metrics-addr: cannot listen on ${hostname}:${port}: ${messageOf(error)}`);
      }
      if (config.policy.ports.length > 0 && !config.policy.ports.includes(port) && hostname !== "localhost" && !hostname.startsWith("127.") && hostname !== "::1") {
        log.warn(`--ports does not include the --metrics-addr port ${port}: probes and scrapes from outside the pod will be dropped`);
      }
    }
    const unlocked = await ctx.backend();
    chosen = unlocked;
    await loadPolicy(ctx, unlocked, built, undefined, "watch"); // under the kernel lock
    const backend = lockedBackend(world, unlocked); // each update, and --remove-on-exit, too
    const saveState = stateSaver(world, log, backend.name);
    watcher = createWatcher(
      { config: config.policy, schedule: options, resolvers: built.resolvers, resolutions: built.resolutions, policy: built.policy, loadedAt: world.now() },
      { backend, lookup: world.lookup, log, now: world.now, sleep: world.sleep, random: Math.random, cycled: saveState },
    );
    await saveState(watcher.snapshot());
    if (options.readyFile !== undefined) await world.writeFile(options.readyFile, "loaded\n");
    log.info(`watching ${config.policy.hosts.length} names: looked up again as their TTLs run out (between ${options.minTtlMs / 1000}s and ${options.maxTtlMs / 1000}s); unseen addresses stay ${options.graceMs / 1000}s`);
    await watcher.run(stop.stopped);
    const signal = await stop.stopped;
    await world.removeFile(watchStateFile(world.env, WATCH_STATE_FILE));
    if (!options.removeOnExit) return log.success(`${signal}: stopped; the rules stay loaded`);
    await backend.remove();
    if (options.readyFile !== undefined) await world.removeFile(options.readyFile);
    log.success(`${signal}: stopped and removed domainwall's rules (--remove-on-exit)`);
  } finally {
    server?.stop();
    stop.done();
    marker.release();
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
