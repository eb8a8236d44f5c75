import type { Backend } from "../../backends/backend.ts";
import type { Cidr } from "../../net/ip.ts";
import type { ProxyReport } from "../../watch/dns-proxy.ts";
import type { Reconfiguration } from "../../watch/watcher.ts";
import type { PreparedPolicy } from "../prepare.ts";

/**
 * One way `watch` keeps the loaded policy true to DNS: looking the names up again as their TTLs run
 * out (resolve-mode.ts), or answering the apps' DNS and admitting each answer (proxy-mode.ts). The
 * command picks one and runs it: `check`, then `start` with the prepared policy, `reconfigure` on
 * each reload, `report` for metrics and status, `stop` at the end.
 */
export interface WatchMode {
  /** Whether the loop looks the names up itself (not under the proxy: the apps' queries do). */
  readonly looksUpNames: boolean;
  /** How often the state for `status` is written besides the loop's own cycles (the proxy's sets change with no cycle). */
  readonly stateIntervalMs?: number;
  /**
   * Before anything is loaded: throws (exit 2, nothing changed) when this mode cannot run here, and
   * resolves to the resolvers the policy allows DNS to when the mode had to know them first.
   */
  check(): Promise<readonly Cidr[] | undefined>;
  /**
   * Load the prepared policy through `backend` (under the kernel lock) and start; resolves to the
   * backend the loop updates the kernel through (under the lock, carrying the proxy's admissions).
   */
  start(built: PreparedPolicy, backend: Backend): Promise<Backend>;
  /** A reloaded configuration's part for this mode; throws, changing nothing, when it cannot take it. */
  reconfigure(next: Reconfiguration): void;
  report(): ProxyReport | undefined;
  /** Once the policy is loaded and the ready file written (a supervised proxy tells its supervisor). */
  ready(): void;
  /** What runs, for the log line once ready. */
  describe(): string;
  /** Stop; what the log should add about it (`removed`: the rules were removed, --remove-on-exit). */
  stop(signal: string, removed: boolean): string | undefined;
}
