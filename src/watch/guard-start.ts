import type { Backend } from "../backends/backend.ts";
import type { Logger } from "../log.ts";
import { messageOf } from "../messages.ts";
import type { Policy } from "../policy/policy.ts";
import type { World } from "../world.ts";
import { startRulesetGuard, type RulesetGuard } from "./guard.ts";

/**
 * The guard of a running watch over `backend` (the one its loop loads through: under the kernel
 * lock, with the proxy's admissions carried over): nft announces changes to our table, which the
 * guard subscribes to; iptables-legacy announces nothing and is checked every second.
 */
export function startWatchGuard(
  backend: Backend,
  loaded: () => Policy,
  log: Logger,
  world: Pick<World, "now" | "setTimer" | "tableEvents">,
): RulesetGuard {
  if (backend.name !== "nft") log.info("iptables-legacy announces no changes: domainwall's rules are checked every second instead");
  return startRulesetGuard({
    missing: () => backend.missing(loaded()),
    restore: async () => void (await backend.apply(loaded())),
    ...(backend.name === "nft" && { subscribe: world.tableEvents }),
    log,
    now: world.now,
    setTimer: world.setTimer,
  });
}

/** On SIGTERM: undefined when the kernel holds all of the loaded policy; otherwise what is missing (or why it cannot tell). */
export async function stateOnStop(backend: Backend, loaded: Policy): Promise<string | undefined> {
  try {
    const missing = await backend.missing(loaded);
    return missing.length === 0 ? undefined : `missing ${missing.join(", ")}; run 'domainwall apply' (or watch again) to load them`;
  } catch (error) {
    return `cannot read them from the kernel: ${messageOf(error)}`;
  }
}
