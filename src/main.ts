#!/usr/bin/env bun
import type { Backend, Status } from "./backends/backend.ts";
import { FILE_BOOLEAN_KEYS, FILE_KEYS, helpText, parseCli, rawConfigFor, settingsFor, type Command, type Settings } from "./cli.ts";
import { parseConfig, type Config, type ListenAddress, type LogFormat } from "./config/config.ts";
import { parseConfigFile } from "./cli/config-file.ts";
import { sshServerPort, waitForConfirmation, type Outcome } from "./commands/confirm.ts";
import { parseDuration } from "./config/duration.ts";
import { applyError, configError, DomainwallError, EXIT, exitCode } from "./errors.ts";
import type { Cidr } from "./net/ip.ts";
import { createLogger, type Logger } from "./log.ts";
import { metricsHandler, type ProcessStats } from "./watch/metrics.ts";
import { parseBackendChoice, selectBackend } from "./backends/select.ts";
import { buildPolicy, type BuiltPolicy, type PolicySummary } from "./policy/policy.ts";
import { onlyLocalStub, parseResolvConf, RESOLVED_UPSTREAM_CONF } from "./dns/resolv-conf.ts";
import { resolveHosts, type HostResolution, type Lookup } from "./dns/resolve.ts";
import type { Run } from "./run.ts";
import { VERSION } from "./version.ts";
import { createWatcher, type Watcher, type WatchSnapshot } from "./watch/watcher.ts";
import { describeWatchState, parseWatchState, WATCH_STATE_FILE, watchStateOf, type WatchState } from "./watch/state.ts";

/** Everything the program touches in the world, injected so tests can replace any of it. */
export interface World {
  readonly argv: readonly string[];
  readonly env: Record<string, string | undefined>;
  /** Resolves once the text is written (a render can be megabytes and the process exits right after). */
  readonly stdout: (text: string) => Promise<unknown>;
  readonly stderr: NodeJS.WriteStream;
  readonly run: Run;
  readonly lookup: Lookup;
  readonly readFile: (path: string) => Promise<string | undefined>;
  readonly writeFile: (path: string, text: string) => Promise<void>;
  /** Removes a file; false when it did not exist. */
  readonly removeFile: (path: string) => Promise<boolean>;
  /** A monotonic clock (ms) for durations and schedules. */
  readonly now: () => number;
  /** The wall clock (ms since the epoch), for times shown to people. */
  readonly epochNow: () => number;
  readonly pid: number;
  /** Whether a process with this PID exists (signal 0). */
  readonly processAlive: (pid: number) => boolean;
  readonly sleep: (ms: number) => Promise<void>;
  /**
   * While an unconfirmed apply waits: settles with the operator's decision on the terminal, or
   * "revert" on SIGINT/SIGTERM; SIGHUP (the SSH session dropping) is ignored so the rollback still
   * happens. Call the returned `done` when the wait is over.
   */
  readonly awaitOperator: () => { decision: Promise<"keep" | "revert">; done: () => void };
  /** `watch`: settles with the signal's name on SIGTERM or SIGINT (which then no longer end the process); call `done` when stopped. */
  readonly untilStopped: () => { stopped: Promise<string>; done: () => void };
  /** `watch --metrics-addr`: serve HTTP until `stop`; throws when the address cannot be bound. */
  readonly serve: (address: ListenAddress, handle: (request: Request) => Promise<Response>) => { stop: () => void };
  readonly processStats: () => ProcessStats;
}

export const RESOLV_CONF = "/etc/resolv.conf";
const DEFAULT_RUN_DIR = "/run/domainwall";
const runDir = (env: World["env"]) => env.DOMAINWALL_RUN_DIR ?? DEFAULT_RUN_DIR;
const pendingFile = (env: World["env"]) => `${runDir(env)}/confirm.pending`;
const watchStateFile = (env: World["env"]) => `${runDir(env)}/${WATCH_STATE_FILE}`;

function logFormatOf(settings: Settings): LogFormat {
  const setting = settings.get("log-format");
  const value = setting?.value ?? "text";
  if (value === "text" || value === "json") return value;
  throw configError(`${setting?.from}: ${JSON.stringify(value)} must be "text" or "json"`);
}

async function resolversFor(config: Config, world: World, log: Logger): Promise<Cidr[]> {
  if (config.dnsServers.kind === "any") return [];
  if (config.dnsServers.kind === "list") return [...config.dnsServers.servers];
  const read = async (path: string) => {
    const { servers, ignored } = parseResolvConf((await world.readFile(path)) ?? "");
    for (const entry of ignored) log.warn(`${path}: ignoring nameserver ${JSON.stringify(entry)}: not an IP address`);
    return servers;
  };
  const servers = await read(RESOLV_CONF);
  if (servers.length === 0) log.warn(`${RESOLV_CONF} lists no nameserver: DNS is allowed only over loopback; use --dns-servers`);
  if (!onlyLocalStub(servers)) return servers;
  const upstream = (await read(RESOLVED_UPSTREAM_CONF)).filter((server) => !onlyLocalStub([server]));
  if (upstream.length > 0) {
    log.info(`${RESOLV_CONF} points at a local stub resolver; allowing DNS to its upstream servers ${upstream.map((s) => s.text).join(", ")} (from ${RESOLVED_UPSTREAM_CONF})`);
  }
  return [...servers, ...upstream];
}

const describeSummary = (s: PolicySummary, resolveMs: number, times?: { renderMs: number; loadMs: number }): string =>
  [
    `${s.namesResolved} names resolved, ${s.namesSkipped} skipped${s.namesFailed > 0 ? `, ${s.namesFailed} failed` : ""}`,
    `${s.ipv4} IPv4 and ${s.ipv6} IPv6 allowed`,
    s.ports.length > 0 ? `inbound TCP ${s.ports.join(",")}` : "inbound untouched",
    `resolve ${resolveMs} ms${times === undefined ? "" : `, render ${times.renderMs} ms, load ${times.loadMs} ms`}`,
  ].join("; ");

/** `status`: the kernel's view, then each name's addresses when a watch is running here. */
function renderStatus(status: Status, backend: string, watch: WatchState | undefined, epochNow: number): string {
  if (!status.loaded) return `nothing loaded: domainwall has no rules here (${backend})\n`;
  const lines = [
    `domainwall is loaded (${backend})`,
    ...status.sets.map((s) => `  set ${s.name}: ${s.elements} ${s.elements === 1 ? "entry" : "entries"} (adjacent addresses merge into ranges)`),
    ...status.counters.map((c) => `  counter ${c.name}: ${c.packets} packets, ${c.bytes} bytes`),
    ...(watch === undefined ? ["no domainwall watch is running here: the sets hold what the last apply resolved"] : describeWatchState(watch, epochNow)),
  ];
  return `${lines.join("\n")}\n`;
}

/** The state a live `watch` keeps in the run directory; undefined when none is running. */
async function runningWatch(world: World): Promise<WatchState | undefined> {
  const text = await world.readFile(watchStateFile(world.env));
  const state = text === undefined ? undefined : parseWatchState(text);
  return state !== undefined && world.processAlive(state.pid) ? state : undefined;
}

/** config → resolution → policy: everything before the kernel, shared by apply, render, check and watch. */
type PreparedPolicy = BuiltPolicy & { config: Config; resolveMs: number; buildMs: number; resolutions: HostResolution[]; resolvers: Cidr[] };

async function preparePolicy(world: World, log: Logger, command: Command, settings: Settings, configValid?: () => void): Promise<PreparedPolicy> {
  const raw = rawConfigFor(command, settings);
  const { config, warnings } = parseConfig({ ...raw, allowFileText: raw.allowFile?.value.trim() ? await world.readFile(raw.allowFile.value) : undefined });
  for (const warning of warnings) log.warn(warning);
  configValid?.();
  const resolvers = await resolversFor(config, world, log);
  const started = world.now();
  const resolutions = await resolveHosts(config.hosts, { lookup: world.lookup, deadlineMs: config.resolveTimeoutMs });
  const resolveMs = Math.round(world.now() - started);
  const built = buildPolicy(config, resolutions, resolvers);
  const buildMs = world.now() - started - resolveMs;
  for (const warning of built.warnings) log.warn(warning);
  return { ...built, config, resolveMs, buildMs, resolutions, resolvers };
}

/**
 * `apply --confirm-within`: load, wait for a confirmation, otherwise restore the previous rules.
 * From before the snapshot until the rollback is done, SIGHUP is ignored and SIGINT/SIGTERM mean
 * "revert", so a dropped SSH session or a Ctrl-C at any point cannot leave unconfirmed rules behind.
 * Only a confirmation keeps them: a timeout, a revert or any failure after the load restores the
 * previous rules.
 */
async function applyWithConfirmation(world: World, log: Logger, backend: Backend, built: BuiltPolicy, withinMs: number): Promise<void> {
  const pending = pendingFile(world.env);
  if ((await world.readFile(pending)) !== undefined) {
    throw applyError(`another apply is waiting for confirmation (${pending}): confirm it, or let it roll back, first; nothing was changed`);
  }
  const operator = world.awaitOperator();
  try {
    await world.writeFile(pending, `an apply is waiting for confirmation (pid ${world.pid})\n`).catch((error: unknown) => {
      throw applyError(`cannot write ${pending}: ${error instanceof Error ? error.message : String(error)}; nothing was changed`);
    });
    const previous = await backend.snapshot();
    await backend.apply(built.policy); // a failed load leaves the previous rules: nothing to undo
    let outcome: Outcome | undefined;
    try {
      log.warn(`new rules loaded: run 'domainwall confirm' (or press y here) within ${withinMs / 1000}s to keep them; otherwise the previous rules come back`);
      outcome = await waitForConfirmation(withinMs, { pendingExists: async () => (await world.readFile(pending)) !== undefined, sleep: world.sleep, now: world.now, decision: operator.decision });
    } finally {
      if (outcome !== "confirmed") {
        await world.removeFile(pending).catch(() => false); // a late 'confirm' now says nothing is waiting
        await backend.restore(previous);
      }
    }
    if (outcome === "confirmed") return log.success("confirmed: the new rules stay");
    throw applyError(`not confirmed: the previous rules are back (${previous === undefined ? "none were loaded" : "restored in one transaction"})`);
  } finally {
    operator.done();
    await world.removeFile(pending).catch(() => false);
  }
}

/** Picks the backend; called only once the configuration is known to be valid. */
type BackendFor = () => Promise<Backend>;

/** Milliseconds spent so far waiting for nft/iptables processes: `load` in the apply summary. */
type ProcessMs = () => number;

/** The process seam, adding up the time its processes take. */
function timedRun(run: Run, now: () => number): { run: Run; processMs: ProcessMs } {
  let spent = 0;
  const timed: Run = async (command, args, stdin) => {
    const started = now();
    try {
      return await run(command, args, stdin);
    } finally {
      spent += now() - started;
    }
  };
  return { run: timed, processMs: () => spent };
}

async function execute(world: World, log: Logger, command: Command, backendFor: BackendFor, settings: Settings, processMs: ProcessMs): Promise<void> {
  switch (command) {
    case "remove":
      await (await backendFor()).remove();
      return log.success("removed domainwall's rules (if any were loaded)");
    case "status": {
      const backend = await backendFor();
      return void (await world.stdout(renderStatus(await backend.status(), backend.name, await runningWatch(world), world.epochNow())));
    }
    case "confirm":
      if (!(await world.removeFile(pendingFile(world.env)))) throw applyError("no apply is waiting for confirmation");
      return log.success("confirmed");
    case "watch":
      return watchCommand(world, log, backendFor, settings, processMs);
  }
  const confirmSetting = settings.get("confirm-within");
  const confirmWithinMs = confirmSetting && parseDuration(confirmSetting.value);
  if (confirmSetting && !confirmWithinMs) throw configError(`${confirmSetting.from}: ${JSON.stringify(confirmSetting.value)} is not a duration (e.g. 60s)`);
  // The backend's probe (an nft process) runs while the names resolve, once the configuration is valid.
  let selecting: Promise<Backend> | undefined;
  const built = await preparePolicy(world, log, command, settings, () => {
    selecting = backendFor();
    selecting.catch(() => {}); // awaited below; a failure must not count as unhandled while names resolve
  });
  const backend = await (selecting ?? backendFor());
  if (command === "render") return void (await world.stdout(backend.render(built.policy)));
  if (command === "check") {
    await backend.check(built.policy);
    return log.success({ message: `the kernel accepts the ruleset: ${describeSummary(built.summary, built.resolveMs)}`, summary: built.summary });
  }
  await loadPolicy(world, log, backend, built, confirmWithinMs, processMs);
}

/** Load a prepared policy the way `apply` does: warnings, the optional confirmation, the summary. Shared with `watch`. */
async function loadPolicy(world: World, log: Logger, backend: Backend, built: PreparedPolicy, confirmWithinMs: number | undefined, processMs: ProcessMs): Promise<void> {
  if (built.config.ports.length === 0) log.info("no listening ports given: inbound traffic is left untouched");
  const sshPort = sshServerPort(world.env.SSH_CONNECTION);
  if (sshPort !== undefined && built.config.ports.length > 0 && !built.config.ports.includes(sshPort)) {
    log.warn(`this SSH session came in on port ${sshPort}, which --ports does not allow: new SSH connections will be dropped${confirmWithinMs ? "" : " (consider --confirm-within)"}`);
  }
  const loadStarted = world.now();
  const processesBefore = processMs();
  if (confirmWithinMs) await applyWithConfirmation(world, log, backend, built, confirmWithinMs);
  else await backend.apply(built.policy);
  // render: building the policy and its text (everything but the processes); load: nft or iptables-restore.
  const inProcesses = processMs() - processesBefore;
  const times = { renderMs: Math.round(built.buildMs + world.now() - loadStarted - inProcesses), loadMs: Math.round(inProcesses) };
  log.success({
    message: `applied: ${describeSummary(built.summary, built.resolveMs, confirmWithinMs ? undefined : times)}`,
    summary: { ...built.summary, resolveMs: built.resolveMs, ...(confirmWithinMs ? { loadMs: Math.round(world.now() - loadStarted) } : times), backend: backend.name },
  });
}

/** `watch`: apply as `apply` does, then keep the allow sets true to DNS until SIGTERM or SIGINT. */
async function watchCommand(world: World, log: Logger, backendFor: BackendFor, settings: Settings, processMs: ProcessMs): Promise<void> {
  const stop = world.untilStopped();
  let server: { stop: () => void } | undefined;
  try {
    const built = await preparePolicy(world, log, "watch", settings);
    const options = built.config.watch;
    if (options === undefined) throw new Error("watch options were not parsed");
    let watcher: Watcher | undefined;
    let chosen: Backend | undefined;
    if (options.readyFile !== undefined) await checkWritable(world, options.readyFile, "--ready-file");
    if (options.metricsAddr !== undefined) {
      const { hostname, port } = options.metricsAddr;
      const lateMs = built.config.resolveTimeoutMs + 30_000;
      const handle = metricsHandler({ snapshot: () => watcher?.snapshot(), status: async () => chosen?.status(), process: world.processStats, now: world.now, lateMs });
      try {
        server = world.serve(options.metricsAddr, handle);
      } catch (error) {
        throw applyError(`--metrics-addr: cannot listen on ${hostname}:${port}: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (built.config.ports.length > 0 && !built.config.ports.includes(port) && hostname !== "localhost" && !hostname.startsWith("127.") && hostname !== "::1") {
        log.warn(`--ports does not include the --metrics-addr port ${port}: probes and scrapes from outside the pod will be dropped`);
      }
    }
    const backend = await backendFor();
    chosen = backend;
    await loadPolicy(world, log, backend, built, undefined, processMs);
    const saveState = stateSaver(world, log, backend.name);
    watcher = createWatcher(
      { config: built.config, schedule: options, resolvers: built.resolvers, resolutions: built.resolutions, policy: built.policy, loadedAt: world.now() },
      { backend, lookup: world.lookup, log, now: world.now, sleep: world.sleep, random: Math.random, cycled: saveState },
    );
    await saveState(watcher.snapshot());
    if (options.readyFile !== undefined) await world.writeFile(options.readyFile, "loaded\n");
    log.info(`watching ${built.config.hosts.length} names: looked up again as their TTLs run out (between ${options.minTtlMs / 1000}s and ${options.maxTtlMs / 1000}s); unseen addresses stay ${options.graceMs / 1000}s`);
    await watcher.run(stop.stopped);
    const signal = await stop.stopped;
    await world.removeFile(watchStateFile(world.env));
    if (!options.removeOnExit) return log.success(`${signal}: stopped; the rules stay loaded`);
    await backend.remove();
    if (options.readyFile !== undefined) await world.removeFile(options.readyFile);
    log.success(`${signal}: stopped and removed domainwall's rules (--remove-on-exit)`);
  } finally {
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
    throw configError(`${flag}: cannot write ${JSON.stringify(path)}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Writes the watch state for `status`; a run directory that cannot be written is warned about once, never fatal. */
function stateSaver(world: World, log: Logger, backend: string): (snapshot: WatchSnapshot) => Promise<void> {
  const path = watchStateFile(world.env);
  let warned = false;
  return async (snapshot) => {
    try {
      await world.writeFile(path, JSON.stringify(watchStateOf(snapshot, { monotonicMs: world.now(), epochMs: world.epochNow() }, world.pid, backend)));
    } catch (error) {
      if (!warned) log.warn(`cannot write ${path} (status will not show per-name addresses): ${error instanceof Error ? error.message : String(error)}`);
      warned = true;
    }
  };
}

async function readSettings(world: World, flags: Settings, configFile: string | undefined): Promise<Settings> {
  if (configFile === undefined) return settingsFor(flags, new Map(), "", world.env);
  const text = await world.readFile(configFile);
  if (text === undefined) throw configError(`--config: ${JSON.stringify(configFile)} does not exist`);
  return settingsFor(flags, parseConfigFile(text, configFile, FILE_KEYS, FILE_BOOLEAN_KEYS), configFile, world.env);
}

/** The whole program: parse, run one command, map the outcome to an exit code. */
export async function main(world: World): Promise<number> {
  let log: Logger | undefined;
  try {
    const invocation = parseCli(world.argv);
    if (invocation.kind === "version") {
      await world.stdout(`domainwall ${VERSION}\n`);
      return EXIT.ok;
    }
    if (invocation.kind === "help") {
      await world.stdout(`${helpText(invocation.command)}\n`);
      return EXIT.ok;
    }
    const settings = await readSettings(world, invocation.flags, invocation.configFile);
    const logger = createLogger(logFormatOf(settings), world.stderr);
    log = logger;
    const choice = parseBackendChoice(settings.get("backend"));
    const probe = invocation.command !== "render";
    const processes = timedRun(world.run, world.now);
    const backendFor = async () => {
      const { backend, reason } = await selectBackend(choice, processes.run, { probe });
      if (probe) logger.info(`backend ${backend.name} (${reason})`);
      return backend;
    };
    await execute(world, logger, invocation.command, backendFor, settings, processes.processMs);
    return EXIT.ok;
  } catch (error) {
    log ??= createLogger("text", world.stderr);
    if (error instanceof DomainwallError) log.error(error.message);
    else log.error(`unexpected failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return exitCode(error);
  }
}

if (import.meta.main) {
  const { realWorld } = await import("./world.ts");
  process.exit(await main(realWorld()));
}
