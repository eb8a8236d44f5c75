import type { ConfigOf } from "../../config/config.ts";
import { loadPolicy } from "../apply.ts";
import type { Context } from "../context.ts";
import { lockedBackend } from "../locking.ts";
import type { WatchMode } from "./mode.ts";

/** `watch`: the loop looks each name up again as its TTL runs out and loads what changed. */
export function resolveMode(ctx: Context, config: ConfigOf<"watch">): WatchMode {
  const options = config.watch;
  return {
    looksUpNames: true,
    check: async () => undefined,
    async start(built, backend) {
      await loadPolicy(ctx, backend, built, undefined, "watch");
      return lockedBackend(ctx.world, backend);
    },
    reconfigure: () => {},
    report: () => undefined,
    ready: () => {},
    describe: () =>
      `watching ${config.policy.hosts.length} ${config.policy.hosts.length === 1 ? "name" : "names"}: looked up again as their TTLs run out (between ${options.minTtlMs / 1000}s and ${options.maxTtlMs / 1000}s); unseen addresses stay ${options.graceMs / 1000}s`,
    stop: () => undefined,
  };
}
