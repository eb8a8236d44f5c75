/**
 * `watch --dns-proxy` as two processes of the one binary, so a crash of the process that answers
 * is not a DNS outage: this supervisor switches to the proxy's group, binds the proxy's sockets
 * and holds them, and runs the watch itself as a worker that answers on them (handed over as
 * descriptors 3, 4, ...). When the worker dies, another starts at once on the same sockets;
 * meanwhile queries wait in the kernel's socket buffers and admitted elements stay in the kernel.
 * Killing the supervisor too closes the sockets: DNS then fails closed, as before.
 */
import { existsSync, readFileSync } from "node:fs";
import { describeError } from "./socket-errors.ts";
import {
  adoptListenSockets,
  inheritedLayout,
  keepAcrossExec,
  openListenSockets,
  parseInherited,
  renderInherited,
} from "./listen-sockets.ts";
import type { InheritedSockets } from "./server.ts";
import { switchGroup } from "./identity.ts";
import { execKeeping, ignoreSignal, openLibc } from "../libc.ts";
import { VERSION } from "../version.ts";

/** The worker's environment variable naming its inherited sockets (`127.0.0.1=3/4,::1=5/6`). */
export const INHERITED_ENV = "DOMAINWALL_PROXY_SOCKETS";
/**
 * A supervisor started again in place (SIGUSR1, see supervise): the sockets it holds across the
 * execve, at their own descriptors (`127.0.0.1=12/13,::1=14/15`).
 */
const HELD_ENV = "DOMAINWALL_PROXY_HELD";
/** Sent to the supervisor: start the binary again in this process (an upgrade), the sockets held across. */
const UPGRADE_SIGNAL = "SIGUSR1";
/**
 * Across the upgrade's execve these are ignored until the new image catches them: another upgrade
 * (coalesced), a worker's ready signal (no worker runs then), a reload (the new image starts from
 * the accepted text). A stop is caught early instead (catchEarly).
 */
const IGNORED_ACROSS_EXEC: readonly NodeJS.Signals[] = ["SIGUSR1", "SIGUSR2", "SIGHUP"];
const STOPS: readonly NodeJS.Signals[] = ["SIGTERM", "SIGINT"];
/** The stops a supervisor started again in place got before supervise() caught them. */
const early: NodeJS.Signals[] = [];
const earlyHandlers = STOPS.map((signal) => [signal, () => void early.push(signal)] as const);

/**
 * In a supervisor started again in place, the first thing its entry does: catch SIGTERM and SIGINT
 * until supervise() does, so that a stop sent while the new image starts is acted on, not fatal.
 */
export function catchEarly(env: Record<string, string | undefined>): void {
  if (env[HELD_ENV] === undefined) return;
  for (const [signal, handler] of earlyHandlers) process.on(signal, handler);
}
/** The worker's environment variable naming its supervisor's PID. */
const SUPERVISOR_ENV = "DOMAINWALL_PROXY_SUPERVISOR";
const PR_SET_PDEATHSIG = 1;
const SIGKILL = 9;

/** The worker tells the supervisor it is ready (its proxy answered) with this signal to its parent. */
const READY_SIGNAL = "SIGUSR2";

/** A worker that lived less than this before dying is restarted after a growing delay (100 ms doubling, at most 5 s). */
const STEADY_MS = 2000;
const MAX_DELAY_MS = 5000;
const CLEAN_STOP_DELAY_MS = 100;
const USAGE_EXIT = 2;

/**
 * JavaScriptCore options in the worker's environment (read when it starts), so that a flood's
 * garbage does not grow its heap: by default (Bun 1.4.5) the heap may reach 8 MiB before its first
 * collection and then 2 to 3 times what lived through the last one (3 on machines with 16 GB or
 * more). Here it collects past 1.5 times that, from 2 MiB on. The FTL tier is off: its compiler's code and
 * memory cost some 4 MiB, and the proxy's work is mostly in native code (docs/dns-proxy.md, limits).
 * A value already in the environment is kept.
 */
export const WORKER_JSC_OPTIONS: Readonly<Record<string, string>> = {
  BUN_JSC_largeHeapSize: String(2 * 1024 * 1024),
  BUN_JSC_heapGrowthMaxIncrease: "0.5",
  BUN_JSC_smallHeapGrowthFactor: "1.5",
  BUN_JSC_useFTLJIT: "0",
};

/** The worker's environment: the supervisor's, with its sockets, the supervisor's PID and WORKER_JSC_OPTIONS. */
export function workerEnv(
  env: Record<string, string | undefined>,
  sockets: string,
  supervisor: number,
): Record<string, string | undefined> {
  return { ...WORKER_JSC_OPTIONS, ...env, [INHERITED_ENV]: sockets, [SUPERVISOR_ENV]: String(supervisor) };
}

export interface SuperviseOptions {
  readonly port: number;
  readonly gid: number;
  /** The worker's command line (the binary and its arguments, this one's). */
  readonly command: readonly string[];
  readonly env: Record<string, string | undefined>;
  readonly warn: (message: string) => void;
  readonly info?: (message: string) => void;
  /**
   * Called when the whole watch stops (a SIGTERM or SIGINT the supervisor received, passed on),
   * after the last worker exited. A worker never removes the rules on its own signal: it may be
   * replaced in a moment, and the rules are what keeps DNS closed meanwhile.
   */
  readonly stopped?: (signal: NodeJS.Signals) => Promise<void>;
}

/**
 * In a worker: its inherited sockets; undefined in any other process. Throws when the variables
 * are malformed. A worker dies with its supervisor (PR_SET_PDEATHSIG): nothing may answer on the
 * sockets once the process holding them is gone.
 */
export function inheritedSockets(env: Record<string, string | undefined>): InheritedSockets[] | undefined {
  const text = env[INHERITED_ENV];
  if (text === undefined) return undefined;
  const sockets = parseInherited(text);
  if (sockets === undefined) throw new Error(`${INHERITED_ENV}=${JSON.stringify(text.slice(0, 100))} does not name sockets`);
  const supervisor = supervisorPid(env);
  if (supervisor === undefined) throw new Error(`${SUPERVISOR_ENV} does not name a process`);
  openLibc().prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (process.ppid !== supervisor) throw new Error(`its supervisor (pid ${supervisor}) is gone`);
  return sockets;
}

/**
 * The worker's environment variable naming the file (in the run directory) that holds the last
 * accepted text of `--config`: written by the supervisor at start, replaced by a worker on each
 * reload it accepted, and read by each new worker instead of the file itself.
 */
export const ACCEPTED_CONFIG_ENV = "DOMAINWALL_PROXY_CONFIG";

/**
 * In a worker, or a supervisor started again in place: the file of the last accepted `--config`
 * text, when the environment names `expected` (the run directory's ACCEPTED_CONFIG_FILE) and no
 * other; undefined in any other process.
 */
export function acceptedConfigPath(env: Record<string, string | undefined>, expected: string): string | undefined {
  const supervised = supervisorPid(env) !== undefined || env[HELD_ENV] !== undefined;
  return supervised && env[ACCEPTED_CONFIG_ENV] === expected ? expected : undefined;
}

/** In the run directory: the last accepted --config text of a supervised `watch --dns-proxy`. */
export const ACCEPTED_CONFIG_FILE = "proxy-config.accepted";

/** In a supervisor started again in place: the sockets it holds; undefined otherwise; throws when malformed. */
function heldSockets(env: Record<string, string | undefined>): InheritedSockets[] | undefined {
  const text = env[HELD_ENV];
  if (text === undefined) return undefined;
  const sockets = parseInherited(text);
  if (sockets === undefined) throw new Error(`${HELD_ENV}=${JSON.stringify(text.slice(0, 100))} does not name sockets`);
  return sockets;
}

/** In a worker: its supervisor's PID; undefined when not supervised. */
export function supervisorPid(env: Record<string, string | undefined>): number | undefined {
  const pid = Number(env[SUPERVISOR_ENV]);
  return env[INHERITED_ENV] !== undefined && Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** In a worker, once its proxy answers: tells the supervisor (a restart after a crash is then immediate). */
export function notifyReady(env: Record<string, string | undefined>): void {
  const supervisor = supervisorPid(env);
  if (supervisor === undefined) return;
  try {
    process.kill(supervisor, READY_SIGNAL);
  } catch {
    // the supervisor is gone: nothing to tell
  }
}

/** This program's command line, to start it again as the worker (compiled: the program is embedded, argv[1] names it). */
export function selfCommand(): string[] {
  const compiled = import.meta.path.startsWith("/$bunfs/");
  return compiled ? [invokedPath(), ...process.argv.slice(2)] : [process.execPath, process.argv[1] ?? "", ...process.argv.slice(2)];
}

/**
 * The path this binary was started by, as given (through PATH when it names no directory), not
 * process.execPath, which resolves symlinks: an upgrade that switches a symlink to a new version
 * starts the new one.
 */
function invokedPath(): string {
  try {
    const first = readFileSync("/proc/self/cmdline", "utf8").split("\0")[0] ?? "";
    if (first === "") return process.execPath;
    if (first.includes("/")) return first;
    for (const dir of (process.env.PATH ?? "").split(":")) if (dir !== "" && existsSync(`${dir}/${first}`)) return `${dir}/${first}`;
  } catch {
    // no /proc: the resolved path
  }
  return process.execPath;
}

const exitCodeOf = (child: Bun.Subprocess): number => child.exitCode ?? 128 + (child.signalCode === "SIGKILL" ? 9 : 15);

/**
 * Runs the worker until the supervisor is told to stop (SIGTERM, SIGINT: passed on; SIGHUP passed
 * on too) and resolves to the worker's exit code then. A worker that exits with a usage error (2),
 * at any time, ends the supervisor with it: starting another would fail the same way, forever,
 * while DNS got no answer; the kubelet or systemd must see it. A worker that ends before any was ready
 * (a configuration error, a failed first load) ends the supervisor with its exit code.
 *
 * SIGUSR1 is an upgrade in place: the worker stops, then this process starts the binary at its path
 * again (execve: the same PID, the sockets held across, their queries waiting in the kernel), and
 * that one runs a new worker, from the last accepted configuration.
 */
export async function supervise(options: SuperviseOptions): Promise<number> {
  const switched = switchGroup(options.gid);
  if (!switched.ok) throw new Error(switched.reason);
  const held = heldSockets(options.env);
  const { port, sockets } =
    held === undefined
      ? openListenSockets(["127.0.0.1", "::1"], options.port)
      : { port: options.port, sockets: adoptListenSockets(held, options.port) };
  const { [HELD_ENV]: _held, ...own } = options.env;
  delete process.env[HELD_ENV];
  const env = workerEnv(own, renderInherited(inheritedLayout(sockets)), process.pid);
  const descriptors = sockets.flatMap((s) => [s.udp, s.tcp]);
  let worker: Bun.Subprocess | undefined;
  let stopping: NodeJS.Signals | undefined;
  /** Whether the current worker, and whether any worker, told it was ready. */
  let ready = false;
  let everReady = false;
  const pass = (signal: NodeJS.Signals) => () => {
    if (signal !== "SIGHUP") stopping = signal;
    worker?.kill(signal);
  };
  /** An upgrade asked for (SIGUSR1): done once the running worker is ready, so repeated signals coalesce into one. */
  let upgrade = false;
  const onUpgrade = () => {
    if (stopping !== undefined) return;
    upgrade = true;
    if (ready) worker?.kill("SIGTERM");
  };
  const handlers = [
    ...(["SIGTERM", "SIGINT", "SIGHUP"] as const).map((signal) => [signal, pass(signal)] as const),
    [UPGRADE_SIGNAL, onUpgrade] as const,
  ];
  for (const [signal, handler] of handlers) process.on(signal, handler);
  const onReady = () => {
    ready = everReady = true;
    if (upgrade) worker?.kill("SIGTERM");
  };
  const stopWith = async (signal: NodeJS.Signals, code: number) => {
    await options.stopped?.(signal);
    return code;
  };
  process.on(READY_SIGNAL, onReady);
  for (const [signal, handler] of earlyHandlers) process.off(signal, handler);
  if (held !== undefined) {
    (options.info ?? options.warn)(
      `domainwall ${VERSION} started again in place (pid ${process.pid}), holding the DNS proxy's sockets (port ${port})`,
    );
    for (const signal of early.splice(0)) pass(signal)();
  }
  try {
    let delay = 0;
    for (;;) {
      if (stopping !== undefined) return await stopWith(stopping, 0);
      const started = performance.now();
      ready = false;
      worker = Bun.spawn([...options.command], {
        env,
        stdio: ["inherit", "inherit", "inherit", ...descriptors],
      });
      const code = await worker.exited;
      const pid = worker.pid;
      const how = worker.signalCode === null ? `exit ${code}` : worker.signalCode;
      if (stopping !== undefined) return await stopWith(stopping, exitCodeOf(worker));
      if (upgrade) {
        upgrade = false;
        startAgainInPlace(options, own, sockets, port);
        continue; // execve failed (said): a worker of this binary instead
      }
      if (!everReady) return exitCodeOf(worker);
      if (code === USAGE_EXIT && worker.signalCode === null) {
        options.warn(
          `the DNS proxy's worker (pid ${pid}) ended with a usage error (exit 2)${ready ? "" : " before it was ready"}: the supervisor stops; the rules stay loaded, DNS here fails closed`,
        );
        return code;
      }
      delay = performance.now() - started < STEADY_MS ? Math.min(MAX_DELAY_MS, Math.max(100, delay * 2)) : 0;
      // A clean stop of the worker alone is a planned restart, unless our own SIGTERM is on its way (systemd signals the whole group).
      if (code === 0 && worker.signalCode === null) delay = Math.max(delay, CLEAN_STOP_DELAY_MS);
      options.warn(
        `the DNS proxy's worker (pid ${pid}) ended (${how}); starting another on the same sockets (port ${port})${delay > 0 ? ` in ${delay} ms` : ""}: queries wait meanwhile`,
      );
      if (delay > 0) await Bun.sleep(delay);
      if (stopping !== undefined) return await stopWith(stopping, exitCodeOf(worker));
    }
  } catch (error) {
    options.warn(`the DNS proxy's supervisor: ${describeError(error)}`);
    return 1;
  } finally {
    for (const [signal, handler] of handlers) process.off(signal, handler);
    process.off(READY_SIGNAL, onReady);
  }
}

/**
 * The upgrade: this process becomes the binary at its path again (execve), keeping the listening
 * sockets (close-on-exec cleared) and naming them in HELD_ENV. Returns only when it cannot; the
 * sockets are then close-on-exec again and this process goes on.
 */
function startAgainInPlace(options: SuperviseOptions, env: Record<string, string | undefined>, sockets: InheritedSockets[], port: number) {
  const [path = process.execPath] = options.command;
  const fds = sockets.flatMap((s) => [s.udp, s.tcp]);
  (options.info ?? options.warn)(
    `${UPGRADE_SIGNAL}: starting domainwall again in place (pid ${process.pid}) from ${path}; the DNS proxy's sockets (port ${port}) stay open, queries wait meanwhile`,
  );
  for (const signal of IGNORED_ACROSS_EXEC) ignoreSignal(signal);
  try {
    if (!keepAcrossExec(fds)) throw new Error("cannot keep the sockets open across it");
    const failed = execKeeping(path, options.command, { ...env, [HELD_ENV]: renderInherited(sockets) });
    throw new Error(`execve: ${failed}`);
  } catch (error) {
    // Caught again: each listener registered anew installs the runtime's handler again.
    for (const signal of IGNORED_ACROSS_EXEC)
      for (const listener of process.listeners(signal) as (() => void)[]) process.off(signal, listener).on(signal, listener);
    adoptListenSockets(sockets, port);
    options.warn(
      `${UPGRADE_SIGNAL}: cannot start ${path} again in place: ${describeError(error)}; a new worker of this process answers instead`,
    );
  }
}
