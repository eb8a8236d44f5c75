import type { ConfigOf } from "../config/config.ts";
import { resolversFor } from "../dns/resolvers.ts";

import { messageOf } from "../messages.ts";
import type { ReloadStats } from "../watch/metrics.ts";
import type { Watcher } from "../watch/watcher.ts";

import { AUDIT_WARNING } from "./apply.ts";
import type { Context } from "./context.ts";

/** Bursts of change events (an editor's several writes, the kubelet's symlink swap) settle this long before the file is read. */
const SETTLE_MS = 100;

export const sha256 = (text: string): string => new Bun.CryptoHasher("sha256").update(text).digest("hex");

/** Options that cannot change while watch runs: a file that changes one is refused as a whole. */
function refusedChanges(loaded: ConfigOf<"watch">, next: ConfigOf<"watch">): string[] {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  return [
    ...(loaded.backend !== next.backend ? ["backend"] : []),
    ...(!same(loaded.watch.metricsAddr, next.watch.metricsAddr) ? ["metrics-addr"] : []),
    ...(loaded.watch.readyFile !== next.watch.readyFile ? ["ready-file"] : []),
    ...(loaded.logFormat !== next.logFormat ? ["log-format"] : []),
    // The proxy switched the process's group and owns its port before the rules that name both were loaded.
    ...((loaded.policy.dnsProxy === undefined) !== (next.policy.dnsProxy === undefined) ? ["dns-proxy"] : []),
    ...(loaded.policy.dnsProxy && next.policy.dnsProxy && loaded.policy.dnsProxy.port !== next.policy.dnsProxy.port
      ? ["dns-proxy-port"]
      : []),
    ...(loaded.policy.dnsProxy && next.policy.dnsProxy && loaded.policy.dnsProxy.gid !== next.policy.dnsProxy.gid ? ["dns-proxy-gid"] : []),
  ];
}

const names = (hosts: readonly string[]) => (hosts.length === 0 ? "none" : hosts.join(", "));

/**
 * `watch --config FILE`: re-read the file on SIGHUP and when it changes, validate it, and hand the
 * new policy to the running loop, which loads the difference in one transaction. A file that does
 * not parse, or that changes an option that cannot change at run time, is refused as a whole: the
 * loaded policy stays, the problems are logged and a failed reload is counted.
 */
export function reloadOnChange(
  ctx: Context,
  path: string,
  initial: ConfigOf<"watch">,
  initialText: string | undefined,
  watcher: Pick<Watcher, "reconfigure">,
  /** A reload accepted: its configuration, and the text of the file it was parsed from. */
  onOptions: (next: ConfigOf<"watch">, text: string | undefined) => void,
) {
  const { world, log } = ctx;
  let loaded = initial;
  let stats: ReloadStats = { ok: 0, failed: 0, lastOk: true, sha256: initialText === undefined ? undefined : sha256(initialText) };
  /** The hash of the text read last, good or bad, so a burst of events about one edit counts once. */
  let lastRead = stats.sha256;
  let running: Promise<void> | undefined;
  let again: "SIGHUP" | "changed" | undefined;

  const fail = (message: string) => {
    stats = { ...stats, failed: stats.failed + 1, lastOk: false };
    log.error(`${path}: not reloaded; the loaded policy stays: ${message}`);
  };

  async function reload(reason: "SIGHUP" | "changed"): Promise<void> {
    const text = await world.readFile(path).catch(() => undefined);
    const hash = text === undefined ? undefined : sha256(text);
    if (reason === "changed" && hash === lastRead) return;
    lastRead = hash;
    try {
      // The text read above, so what is accepted is exactly what was hashed (and kept for a new DNS proxy worker).
      const parsed = await ctx.reread!(text);
      const next = parsed.config as ConfigOf<"watch">;
      const refused = refusedChanges(loaded, next);
      if (refused.length > 0)
        return fail(`${refused.join(", ")} cannot change while watch runs (restart it to change ${refused.length === 1 ? "it" : "them"})`);
      const resolvers = await resolversFor(next.policy.dnsServers, {
        readFile: world.readFile,
        warn: (m) => log.warn(m),
        info: (m) => log.info(m),
      });
      const added = next.policy.hosts.filter((h) => !loaded.policy.hosts.includes(h));
      const removed = loaded.policy.hosts.filter((h) => !next.policy.hosts.includes(h));
      // Throws, changing nothing, when the running watch cannot take it (the DNS proxy's declared port sets).
      watcher.reconfigure({ config: next.policy, schedule: next.watch, resolvers });
      for (const warning of parsed.warnings) log.warn(warning);
      if (next.policy.audit) log.warn(AUDIT_WARNING);
      onOptions(next, text);
      loaded = next;
      stats = { ok: stats.ok + 1, failed: stats.failed, lastOk: true, sha256: hash };
      log.info({
        message: `${path}: reloaded (${reason}): names added: ${names(added)}; removed: ${names(removed)}; loading the difference`,
        added: added.length,
        removed: removed.length,
      });
    } catch (error) {
      fail(messageOf(error));
    }
  }

  const settleAndReload = async (reason: "SIGHUP" | "changed") => {
    let next: typeof again = reason;
    while (next !== undefined) {
      again = undefined;
      await world.sleep(SETTLE_MS);
      await reload(next);
      next = again;
    }
    running = undefined;
  };

  const changes = world.configChanges(path, (reason) => {
    if (running !== undefined) {
      again = again === "SIGHUP" ? again : reason;
      return;
    }
    running = settleAndReload(reason);
  });
  log.info(`${path}: will be reloaded on SIGHUP and when it changes`);
  return {
    stats: () => stats,
    async stop() {
      changes.stop();
      await running;
    },
  };
}

export type Reloader = ReturnType<typeof reloadOnChange>;
