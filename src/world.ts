import { readFileSync, realpathSync, watch, writeSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { createNftExecutor, type ChosenExecutor } from "./backends/nft/choose-executor.ts";
import type { ListenAddress } from "./config/values.ts";
import { acquireLock, holderOf, type Acquired, type Holder } from "./backends/lock.ts";
import { filterInfo, legacyFilterEmpty } from "./backends/iptables/kernel.ts";
import { bunLookup, chainChecked, guardedLookup, libcLookup } from "./dns/lookup.ts";
import { askResolver, type AskResolver } from "./dns/ask-resolver.ts";
import type { Lookup } from "./dns/resolve.ts";
import { runProcess, type Run } from "./run.ts";
import { readRegularFile, runDirProblem, writeReplacing } from "./files.ts";
import type { ProcessStats } from "./watch/metrics.ts";
import { realSetTimer, type SetTimer } from "./timer.ts";
import { openTableEvents, type TableEventListener, type TableEventSource } from "./backends/nft/events.ts";
import { legacyTableChanges } from "./backends/iptables/changes.ts";

/**
 * Everything the program touches in the world (process, files, DNS, the kernel's tools, clocks),
 * injected so tests can replace any of it. How the process runs (JIT, GC, group, supervision) is
 * the Runtime's (runtime.ts).
 */
export interface World {
  readonly argv: readonly string[];
  readonly env: Record<string, string | undefined>;
  /** Resolves once the text is written (a render can be megabytes and the process exits right after). */
  readonly stdout: (text: string) => Promise<unknown>;
  /** The stderr stream, for the text logger; made on first use (see writeStderr). */
  readonly stderr: NodeJS.WriteStream;
  /**
   * Writes text to stderr at once and in order, without the process.stderr stream: making that
   * stream costs every run several ms in the compiled binary (~19 ms for an empty program) and
   * makes fd 2 non-blocking. JSON logs and the usage message go here; nothing written here throws.
   */
  readonly writeStderr: (text: string) => void;
  readonly run: Run;
  /**
   * This process's one nft executor (libnftables in process, else the `nft` binary through `run`)
   * and why that one; made on the first call, the same one after.
   */
  readonly nft: () => ChosenExecutor;
  /** DNS for apply (and render, check, explain): only the addresses on the CNAME chain (dns/lookup.ts chainChecked). */
  readonly lookup: Lookup;
  /** One DNS query straight to a resolver, to say why lookups failed (dns/diagnose.ts); absent in unit tests: no diagnosis. */
  readonly askResolver?: AskResolver;
  /**
   * DNS for watch, at start and in its loop: c-ares alone, which has the TTLs; one lookup per name
   * and family keeps the loop within its CPU budget, at the cost of the chain check (docs/watch.md).
   */
  readonly watchLookup: Lookup;
  /**
   * A regular file's text; undefined when it does not exist; throws at once when it is not a regular
   * file (a FIFO, a device, a directory) or holds more than `maxBytes` (CONFIG_FILE_CAP by default).
   */
  readonly readFile: (path: string, maxBytes?: number) => Promise<string | undefined>;
  /** Writes through a new file renamed into place: a symlink at `path` is replaced, never followed (files.ts). */
  readonly writeFile: (path: string, text: string) => Promise<void>;
  /**
   * The run directory's problem (files.ts runDirProblem), after creating it when missing; undefined
   * when it is safe to use. Absent in test worlds.
   */
  readonly runDirProblem?: (dir: string) => Promise<string | undefined>;
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
  /** Calls `fire` after `ms` on the same clock as `now`, unless cancelled first: deadlines that race I/O. */
  readonly setTimer: SetTimer;
  /**
   * While an unconfirmed apply waits: settles with the operator's decision on the terminal, or
   * "revert" on SIGINT/SIGTERM; SIGHUP (the SSH session dropping) is ignored so the rollback still
   * happens. Call the returned `done` when the wait is over.
   */
  readonly awaitOperator: () => { decision: Promise<"keep" | "revert">; done: () => void };
  /** `watch`: settles with the signal's name on SIGTERM or SIGINT (which then no longer end the process); call `done` when stopped. */
  readonly untilStopped: () => { stopped: Promise<string>; done: () => void };
  /**
   * `watch --config FILE`: calls `notify` on SIGHUP (which then no longer ends the process) and
   * whenever something changes in the file's directory (an edit, or the kubelet swapping a
   * ConfigMap's `..data` symlink), until `stop`. Calls may come in bursts: the caller re-reads.
   */
  readonly configChanges: (path: string, notify: (reason: "SIGHUP" | "changed") => void) => { stop: () => void };
  /** `watch --metrics-addr`: serve HTTP until `stop`; throws when the address cannot be bound. */
  readonly serve: (address: ListenAddress, handle: (request: Request) => Promise<Response>) => { stop: () => void };
  readonly processStats: () => ProcessStats;
  /**
   * Take a lock scoped to the network namespace (src/backends/lock.ts) as `command`, waiting up to
   * `waitMs` while another process holds it; released by `release` or by this process ending.
   */
  readonly lock: (name: string, command: string, waitMs: number) => Promise<Acquired>;
  /** Who holds a namespace lock now; undefined when nobody does. */
  readonly lockHolder: (name: string) => Promise<Holder | "unknown" | undefined>;
  /**
   * True when the kernel says both families' iptables-legacy filter tables are absent or empty
   * (src/backends/iptables/kernel.ts): nothing of ours is there. False when it cannot tell.
   */
  readonly legacyFilterEmpty: () => Promise<boolean>;
  /**
   * `watch`: changes to our rules as the kernel tells them: nft announces them (backends/nft/events.ts);
   * for iptables-legacy the filter tables' entry counts are asked every second (iptables/changes.ts).
   * Throws when neither can be done.
   */
  readonly tableEvents: (backend: "nft" | "iptables-legacy", listener: TableEventListener) => TableEventSource;
}

/** Keys on the terminal that keep or revert an unconfirmed apply. */
const KEEP = new Set(["y", "Y", "\r", "\n"]);
const REVERT = new Set(["n", "N", "\u0003"]);

/** While an apply waits for confirmation: the terminal's answer and signals (see World.awaitOperator). */
function awaitOperator(): ReturnType<World["awaitOperator"]> {
  let settle: (d: "keep" | "revert") => void = () => {};
  const decision = new Promise<"keep" | "revert">((resolve) => (settle = resolve));
  const onKey = (data: Buffer) => {
    const key = data.toString();
    if (KEEP.has(key)) settle("keep");
    else if (REVERT.has(key)) settle("revert");
  };
  const revert = () => settle("revert");
  const ignoreHangup = () => {};
  const tty = process.stdin.isTTY === true;
  if (tty) {
    process.stdin.setRawMode(true);
    process.stdin.on("data", onKey);
  }
  process.on("SIGINT", revert);
  process.on("SIGTERM", revert);
  process.on("SIGHUP", ignoreHangup);
  return {
    decision,
    done() {
      if (tty) {
        process.stdin.off("data", onKey);
        process.stdin.setRawMode(false);
        process.stdin.pause();
      }
      process.off("SIGINT", revert);
      process.off("SIGTERM", revert);
      // SIGHUP stays ignored: the rollback or the confirmation message must not be cut short.
    },
  };
}

/** `watch`: SIGTERM (Kubernetes stopping the container) or SIGINT ends the loop instead of the process. */
function untilStopped(): ReturnType<World["untilStopped"]> {
  let settle: (signal: string) => void = () => {};
  const stopped = new Promise<string>((resolve) => (settle = resolve));
  const onTerm = () => settle("SIGTERM");
  const onInt = () => settle("SIGINT");
  process.on("SIGTERM", onTerm);
  process.on("SIGINT", onInt);
  return {
    stopped,
    done() {
      process.off("SIGTERM", onTerm);
      process.off("SIGINT", onInt);
    },
  };
}

const configChanges: World["configChanges"] = (path, notify) => {
  const onHangup = () => notify("SIGHUP");
  process.on("SIGHUP", onHangup);
  // The directory, not the file: an editor's rename or a swapped symlink replaces the file a watch on it would follow.
  const directories = new Set([dirname(path)]);
  try {
    directories.add(dirname(realpathSync(path)));
  } catch {
    // a missing file: its directory is watched, and it is read when it appears
  }
  const watchers = [...directories].flatMap((directory) => {
    try {
      return [watch(directory, () => notify("changed"))];
    } catch {
      return [];
    }
  });
  return {
    stop() {
      process.off("SIGHUP", onHangup);
      for (const watcher of watchers) watcher.close();
    },
  };
};

const serve: World["serve"] = ({ hostname, port }, handle) => {
  const server = Bun.serve({ hostname, port, fetch: handle, idleTimeout: 30 });
  return { stop: () => void server.stop(true) };
};

const processStats: World["processStats"] = () => {
  const cpu = process.cpuUsage();
  return {
    residentBytes: process.memoryUsage.rss(),
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    startTimeSeconds: Math.round(Date.now() / 1000 - process.uptime()),
  };
};

/**
 * World.writeStderr: blocking writes to fd 2 until all of it is out. Where fd 2 is non-blocking
 * anyway (shared with a process that made it so: EAGAIN), the rest goes through the stream, and so
 * does all text after it: the stream writes later, when fd 2 has room, so a direct write meanwhile
 * would land inside a line still queued there. Any other failure (a closed pipe) loses the text, as
 * a stream would, and never ends the command. `write` is writeSync on fd 2 (a seam for tests).
 */
export function stderrWriter(
  write: (bytes: Uint8Array, offset: number) => number,
  stream: () => { write(bytes: Uint8Array): unknown },
): (text: string) => void {
  let queued = false;
  return (text) => {
    const bytes = Buffer.from(text, "utf8");
    if (queued) return void stream().write(bytes);
    let written = 0;
    try {
      while (written < bytes.length) written += write(bytes, written);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EAGAIN") return;
      queued = true;
      stream().write(bytes.subarray(written));
    }
  };
}

const writeStderr = stderrWriter(
  (bytes, offset) => writeSync(2, bytes, offset),
  () => process.stderr,
);

/** The real world: process, files, DNS, child processes. The only module that touches them (main's entry passes it in). */
export function realWorld(): World {
  let nft: ChosenExecutor | undefined;
  /** One nft executor per process: commands, the DNS proxy's admissions and the other-backend checks share it. */
  const nftOnce = () => (nft ??= createNftExecutor({ run: runProcess, env: process.env }));
  const setTimer = realSetTimer;
  const world: World = {
    argv: process.argv.slice(2),
    env: process.env,
    stdout: (text) => Bun.write(Bun.stdout, text),
    get stderr() {
      return process.stderr;
    },
    writeStderr,
    run: runProcess,
    nft: nftOnce,
    lookup: guardedLookup({ setTimer, primary: chainChecked(bunLookup, libcLookup) }),
    watchLookup: guardedLookup({ setTimer }),
    askResolver,
    readFile: (path, maxBytes) => readRegularFile(path, maxBytes),
    writeFile: async (path, text) => {
      await mkdir(dirname(path), { recursive: true });
      await writeReplacing(path, text);
    },
    runDirProblem: (dir) => runDirProblem(dir, process.geteuid?.() ?? 0),
    removeFile: async (path) => {
      const existed = await Bun.file(path).exists();
      await rm(path, { force: true });
      return existed;
    },
    now: () => performance.now(),
    epochNow: () => Date.now(),
    pid: process.pid,
    processAlive: (pid) => {
      try {
        process.kill(pid, 0);
      } catch (error) {
        // EPERM: it exists but belongs to someone else.
        return (error as NodeJS.ErrnoException).code === "EPERM";
      }
      // A zombie (killed, not yet reaped: a supervised worker whose supervisor was killed) is gone.
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
      } catch {
        return false;
      }
    },
    sleep: (ms) => Bun.sleep(ms),
    setTimer,
    awaitOperator,
    untilStopped,
    configChanges,
    serve,
    processStats,
    lock: (name, command, waitMs) =>
      acquireLock(name, { pid: process.pid, command }, { waitMs, now: () => performance.now(), sleep: (ms) => Bun.sleep(ms) }),
    lockHolder: (name) => holderOf(name),
    legacyFilterEmpty: () => legacyFilterEmpty({ readFile: world.readFile, filterInfo }),
    tableEvents: (backend, listener) =>
      backend === "nft" ? openTableEvents(listener) : legacyTableChanges(filterInfo, realSetTimer, listener),
  };
  return world;
}
