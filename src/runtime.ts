import { backgroundExecEnv, NO_DFG } from "./background-env.ts";
import { switchGroup, type GroupSwitch } from "./proxy/identity.ts";
import { supervise, type SuperviseOptions } from "./proxy/supervisor.ts";

/**
 * How this process runs, as opposed to what it touches (World): the JIT and GC policy a command
 * asks for, the group the DNS proxy switches to, and the supervisor that runs it. main's entry
 * passes the real one; tests pass one that records the calls.
 */
export interface Runtime {
  /**
   * Give JavaScriptCore its normal tier-up policy. The compiled binary starts with a reluctant one
   * (scripts/build.ts) that suits one-shot commands; `watch --dns-proxy` answers queries at the
   * apps' pace, and a long allow file is parsed in loops over every entry.
   */
  readonly normalJit: () => void;
  /**
   * `watch` without the DNS proxy, after its configuration is valid and before it logs, locks or
   * opens anything: set the runtime up for a loop that wakes about once a second. The compiled
   * binary starts itself again (execve, same PID) with JavaScriptCore's optimising tiers off
   * (`BUN_JSC_useDFGJIT=0`) and mimalloc's hole purging every 5 s (background-env.ts); from source the tier-up thresholds are raised instead. A full GC runs
   * every BACKGROUND_GC_INTERVAL_MS. Why, with the figures: docs/watch.md, "The background loop".
   */
  readonly backgroundLoop: () => void;
  /** `watch --dns-proxy`: switch the whole process to this group (proxy/identity.ts). */
  readonly switchGroup: (gid: number) => GroupSwitch;
  /**
   * `watch --dns-proxy`: hold the proxy's sockets in this process and run the watch as a worker on
   * them, started again when it dies (proxy/supervisor.ts); resolves to the exit code. Absent in
   * tests: the watch then answers in its own process.
   */
  readonly superviseProxy?: (options: SuperviseOptions) => Promise<number>;
}

/** backgroundLoop's tier-up threshold scale when it cannot start again: high enough that the loop's code never reaches DFG. */
const BACKGROUND_JIT_POLICY = 1e6;
/** backgroundLoop: how often a full garbage collection runs. */
const BACKGROUND_GC_INTERVAL_MS = 10_000;

function backgroundLoop(): void {
  // Compiled, the program is embedded at /$bunfs/ and argv[1] names it; the arguments follow.
  const compiled = import.meta.path.startsWith("/$bunfs/");
  if (compiled && process.env[NO_DFG] === undefined) {
    try {
      process.execve!(process.execPath, [process.execPath, ...process.argv.slice(2)], backgroundExecEnv(process.env));
    } catch {
      // execve failed (the binary is gone or not executable): go on in this process.
    }
  }
  // With DFG off, the normal thresholds: raised ones would hold the code back from the baseline JIT too (docs/watch.md).
  Bun.unsafe.setJITPolicy(process.env[NO_DFG] === "0" ? 1 : BACKGROUND_JIT_POLICY);
  setInterval(() => Bun.gc(true), BACKGROUND_GC_INTERVAL_MS).unref();
}

/** The real runtime of this process. */
export function realRuntime(): Runtime {
  return {
    normalJit: () => Bun.unsafe.setJITPolicy(1),
    backgroundLoop,
    switchGroup: (gid) => switchGroup(gid),
    superviseProxy: supervise,
  };
}
