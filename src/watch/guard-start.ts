import type { Backend } from "../backends/backend.ts";
import type { Logger } from "../log.ts";
import { messageOf } from "../messages.ts";
import type { Policy } from "../policy/policy.ts";
import { startRulesetGuard, type RulesetGuard } from "./guard.ts";
import type { TableEventListener, TableEventSource } from "../backends/nft/events.ts";
import type { SetTimer } from "../timer.ts";

/**
 * The watch's backend with its loads in one queue, and the policy the kernel was last given. The
 * guard's checks and restores join the same queue and compare with that policy: a check never
 * runs during the loop's own load, nor against a policy older than the one just loaded (which it
 * would otherwise "restore").
 */
export interface GuardedBackend {
  /** For the loop: the same backend, each change queued and remembered once it succeeds. */
  readonly backend: Backend;
  /** What of the policy loaded last the kernel does not hold now (read now, in the queue). */
  missing(): Promise<readonly string[]>;
  /**
   * The same, read at once, not behind a load under way (a restore may wait 10 s for the kernel
   * lock): for /healthz and SIGTERM, which must answer now. During the loop's own reload it may
   * see the new rules against the old policy for as long as that load takes to return.
   */
  missingNow(): Promise<readonly string[]>;
  /** Load the policy loaded last again, whole (in the queue). */
  restore(): Promise<void>;
}

export function guardBackend(backend: Backend, loaded: Policy): GuardedBackend {
  let current = loaded;
  /** Each chain's rules as read right after our last load: a rule replaced since then is a change too. */
  let baseline: ReadonlyMap<string, string> | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  const queued = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn);
    queue = run.catch(() => undefined);
    return run;
  };
  const loadedNow = async (policy: Policy): Promise<void> => {
    current = policy;
    baseline = await backend.rules().catch(() => undefined);
  };
  const missing = async (): Promise<readonly string[]> => {
    const parts = await backend.missing(current);
    if (parts.length > 0 || baseline === undefined) return parts;
    const now = await backend.rules();
    return [...baseline].flatMap(([chain, text]) =>
      now?.get(chain) === text ? [] : [`rules of chain ${chain} as loaded (one was replaced)`],
    );
  };
  const first = queued(() => loadedNow(loaded));
  void first;
  return {
    backend: {
      ...backend,
      apply: (policy, carryOver) =>
        queued(async () => {
          const times = await backend.apply(policy, carryOver);
          await loadedNow(policy);
          return times;
        }),
      updateSets: (policy, loaded) =>
        queued(async () => {
          const refused = await backend.updateSets(policy, loaded);
          current = policy;
          return refused;
        }),
      remove: () => queued(() => backend.remove()),
      restore: (snapshot) => queued(() => backend.restore(snapshot)),
    },
    missing: () => queued(missing),
    missingNow: missing,
    restore: () =>
      queued(async () => {
        await backend.apply(current);
        await loadedNow(current);
      }),
  };
}

/**
 * The guard of a running watch: nft announces changes to our table, which the guard subscribes
 * to; for iptables-legacy the filter tables' entry counts are watched every second instead.
 */
export function startWatchGuard(
  guarded: GuardedBackend,
  backendName: Backend["name"],
  log: Logger,
  world: {
    readonly now: () => number;
    readonly setTimer: SetTimer;
    /** The kernel's announcements of changes to our table (World.tableEvents). */
    readonly tableEvents: (backend: "nft" | "iptables-legacy", listener: TableEventListener) => TableEventSource;
  },
): RulesetGuard {
  if (backendName !== "nft")
    log.info(
      "iptables-legacy announces no changes: the filter tables' entry counts are asked every second, and domainwall's rules checked when they move",
    );
  return startRulesetGuard({
    missing: guarded.missing,
    restore: guarded.restore,
    subscribe: (listener) => world.tableEvents(backendName, listener),
    log,
    now: world.now,
    setTimer: world.setTimer,
  });
}

/** On SIGTERM: undefined when the kernel holds all of the loaded policy; otherwise what is missing (or why it cannot tell). */
export async function stateOnStop(guarded: GuardedBackend): Promise<string | undefined> {
  try {
    const missing = await guarded.missingNow();
    return missing.length === 0 ? undefined : `missing ${missing.join(", ")}; run 'domainwall apply' (or watch again) to load them`;
  } catch (error) {
    return `cannot read them from the kernel: ${messageOf(error)}`;
  }
}
