import type { Backend, Snapshot } from "../backends/backend.ts";
import type { ProxyCarryOver } from "../backends/backend.ts";
import type { ConfigOf } from "../config/config.ts";
import { runtimeError } from "../errors.ts";
import { messageOf } from "../messages.ts";
import { parseProcNetTcp, portWarnings, type TcpSocket } from "../net/listening.ts";
import type { World } from "../world.ts";
import { livePending, pendingText, waitForConfirmation } from "./confirm.ts";
import { checkRunDir, pendingFile, type Context } from "./context.ts";
import { withKernelLock } from "./locking.ts";
import { explainResolveFailure } from "./blocked-lookups.ts";
import { saveNames } from "./names.ts";
import { describeSummary, preparePolicy, type PreparedPolicy } from "./prepare.ts";

/** `apply`: resolve while the backends are probed, then load (with `--confirm-within`, only until confirmed). */
export async function applyCommand(ctx: Context, config: ConfigOf<"apply">): Promise<void> {
  await checkRunDir(ctx.world);
  // The other backends are probed too (read-only) while the names resolve; loadPolicy decides under the lock.
  const prepare = preparePolicy(ctx, config.policy).catch(async (error: unknown) => {
    throw await explainResolveFailure(ctx, ctx.backend, error);
  });
  const [backend, prepared] = await Promise.all([ctx.backend(), prepare, ctx.others().catch(() => undefined)]);
  await loadPolicy(ctx, backend, prepared, config.confirmWithinMs);
  // A skipped name (no addresses) is kept too, so `explain` can say it was skipped rather than unlisted.
  const names = prepared.resolutions.map((r) => ({ host: r.host, addresses: r.status === "empty" ? [] : r.addresses }));
  await saveNames(ctx.world, ctx.log, names, config.policy.hostPorts);
}

/** Said at the start of an audit-mode apply or watch, and by `status` while one is loaded. */
export const AUDIT_WARNING =
  "audit mode: the firewall is NOT enforcing; what the policy would refuse is let through and recorded (see 'domainwall status' and 'domainwall suggest')";

/**
 * Load a prepared policy the way `apply` does: warnings, the optional confirmation, the summary,
 * under the namespace's kernel lock (refused beside a running watch). Shared with `watch` (`command`).
 */
export async function loadPolicy(
  { world, log, others: othersHere }: Context,
  backend: Backend,
  built: PreparedPolicy,
  confirmWithinMs: number | undefined,
  command: "apply" | "watch" = "apply",
  carryOver?: ProxyCarryOver,
): Promise<void> {
  const lock = { command, besideWatch: command === "watch" ? "allow" : "refuse" } as const;
  if (built.config.ports.length === 0) log.info("no listening ports given: inbound traffic is left untouched");
  // Only when inbound is filtered: with no --ports there is nothing to warn about, and each read walks the kernel's socket tables.
  if (built.config.ports.length > 0)
    for (const warning of portWarnings(await namespaceSockets(world), built.config.ports))
      (warning.loud ? log.error : log.warn)(warning.text);
  const others = await othersHere();
  if (others.unseen !== undefined)
    log.warn(`cannot check ${others.unseen} for a domainwall policy loaded there: if one is, it stays loaded beside this one`);
  if (!built.config.forward) {
    const on = await forwardingOn(world.readFile);
    if (on.length > 0)
      log.warn(
        `${on.join(" and ")}: traffic forwarded through this machine (containers, VMs) is not filtered; --forward filters it with the same policy`,
      );
  }
  if (built.policy.verdict === "audit") log.warn(AUDIT_WARNING);
  const loadStarted = world.now();
  if (confirmWithinMs) {
    await withKernelLock(world, lock, () => applyWithConfirmation({ world, log }, backend, others.backends, built, confirmWithinMs));
    return log.success({
      message: `applied: ${describeSummary(built.summary, built.resolveMs)}`,
      summary: { ...built.summary, resolveMs: built.resolveMs, loadMs: Math.round(world.now() - loadStarted), backend: backend.name },
    });
  }
  // render: building the policy and its text; load: nft or iptables-restore (the backend's own measure).
  const loaded = await withKernelLock(world, lock, async () => {
    const times = await backend.apply(built.policy, carryOver);
    await removeOthers(log, backend, others.backends);
    return times;
  });
  const times = { renderMs: Math.round(built.buildMs + loaded.renderMs), loadMs: Math.round(loaded.loadMs) };
  log.success({
    message: `applied: ${describeSummary(built.summary, built.resolveMs, times)}`,
    summary: { ...built.summary, resolveMs: built.resolveMs, ...times, backend: backend.name },
  });
}

/** The kernel settings that forward traffic (per network namespace), read through /proc/sys. */
const FORWARDING = [
  { path: "/proc/sys/net/ipv4/ip_forward", name: "net.ipv4.ip_forward" },
  { path: "/proc/sys/net/ipv6/conf/all/forwarding", name: "net.ipv6.conf.all.forwarding" },
] as const;

/** `net.ipv4.ip_forward=1` and the IPv6 one when they are on; a setting that cannot be read counts as off. */
async function forwardingOn(readFile: Context["world"]["readFile"]): Promise<string[]> {
  const values = await Promise.all(FORWARDING.map((f) => readFile(f.path).catch(() => undefined)));
  return FORWARDING.flatMap((f, i) => (values[i]?.trim() === "1" ? [`${f.name}=1`] : []));
}

/**
 * After `loaded`'s policy is in: remove domainwall's rules from the other backends, so two policies
 * are never left loaded. New first, then old: both drop by default, so for a moment the firewall
 * is the stricter intersection of the two, never open. Returns what was there, for a rollback.
 */
async function removeOthers(
  log: Context["log"],
  loaded: Backend,
  others: readonly Backend[],
): Promise<{ backend: Backend; snapshot: Snapshot }[]> {
  const removed: { backend: Backend; snapshot: Snapshot }[] = [];
  for (const other of others) {
    const snapshot = await other.snapshot();
    if (snapshot === undefined) continue;
    await other.remove();
    removed.push({ backend: other, snapshot });
    log.warn(`removed the ${other.name} policy loaded before: ${loaded.name} now holds domainwall's only policy (two would both filter)`);
  }
  return removed;
}

/**
 * This network namespace's TCP sockets (`/proc/net/tcp{,6}`): what an inbound policy would close.
 * Not `SSH_CONNECTION`, which `sudo` removes. A file that is missing (no IPv6) holds no sockets.
 */
async function namespaceSockets(world: Pick<World, "readFile">): Promise<TcpSocket[]> {
  const [v4, v6] = await Promise.all([world.readFile("/proc/net/tcp"), world.readFile("/proc/net/tcp6")]);
  return [...parseProcNetTcp(v4 ?? "", 4), ...parseProcNetTcp(v6 ?? "", 6)];
}

/**
 * `apply --confirm-within`: load, wait for a confirmation, otherwise restore the previous rules.
 * From before the snapshot until the rollback is done, SIGHUP is ignored and SIGINT/SIGTERM mean
 * "revert", so a dropped SSH session or a Ctrl-C at any point cannot leave unconfirmed rules behind.
 * Only a confirmation keeps them: a timeout, a revert or any failure after the load restores the
 * previous rules.
 */
async function applyWithConfirmation(
  { world, log }: Pick<Context, "world" | "log">,
  backend: Backend,
  others: readonly Backend[],
  built: PreparedPolicy,
  withinMs: number,
): Promise<void> {
  const pending = pendingFile(world.env);
  if ((await livePending({ world, log })) !== undefined) {
    throw runtimeError(
      `another apply is waiting for confirmation (${pending}): confirm it, or let it roll back, first; nothing was changed`,
    );
  }
  const operator = world.awaitOperator();
  try {
    await world.writeFile(pending, pendingText(world.pid)).catch((error: unknown) => {
      throw runtimeError(`cannot write ${pending}: ${messageOf(error)}; nothing was changed`);
    });
    const previous = await backend.snapshot();
    await backend.apply(built.policy); // a failed load leaves the previous rules: nothing to undo
    let outcome: Awaited<ReturnType<typeof waitForConfirmation>> | undefined;
    let removed: Awaited<ReturnType<typeof removeOthers>> = [];
    try {
      removed = await removeOthers(log, backend, others);
      log.warn(
        `new rules loaded: run 'domainwall confirm' (or press y here) within ${withinMs / 1000}s to keep them; otherwise the previous rules come back`,
      );
      outcome = await waitForConfirmation(withinMs, {
        pendingExists: async () => (await world.readFile(pending)) !== undefined,
        sleep: world.sleep,
        now: world.now,
        decision: operator.decision,
      });
    } finally {
      if (outcome !== "confirmed") {
        await world.removeFile(pending).catch(() => false); // a late 'confirm' now says nothing is waiting
        for (const other of removed) await other.backend.restore(other.snapshot); // the other policy back first: never open
        await backend.restore(previous);
      }
    }
    if (outcome === "confirmed") return log.success("confirmed: the new rules stay");
    throw runtimeError(
      `not confirmed: the previous rules are back (${previous === undefined ? "none were loaded" : "restored in one transaction"})`,
    );
  } finally {
    operator.done();
    await world.removeFile(pending).catch(() => false);
  }
}
