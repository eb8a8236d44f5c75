import type { AllowedEntry, DeniedDestination, Status } from "../status.ts";
import { formatPortRange } from "../net/port-range.ts";
import { DENIED_RECORD } from "../policy/rules.ts";
import { deniedFullMessage } from "../policy/denied-full.ts";
import type { ConfigOf } from "../config/config.ts";
import { notEnforcingError } from "../errors.ts";
import { describeWatchState } from "../watch/state.ts";
import { AUDIT_WARNING } from "./apply.ts";
import type { Context } from "./context.ts";
import { knownNames, namesOf, type KnownNames } from "./names.ts";
import { allowedJson, dnsProxyJson, portedOnly, proxyLines } from "../visibility/status-view.ts";
import { statusFollowCommand } from "./status-follow.ts";

/** Denied destinations (and allowed entries with ports) listed one by one in the text; `--json` lists them all. */
const DENIED_SHOWN = 50;

/**
 * The loaded entries listed with ports, each with its ports (entries without ports are counted in
 * the sets above); one that an every-port entry also holds is open on every port and left out.
 */
function portLines(allowed: readonly AllowedEntry[]): string[] {
  const ported = portedOnly(allowed).flatMap((e) =>
    e.ports === "all" ? [] : [{ network: e.network, ports: e.ports.map(formatPortRange).join(", ") }],
  );
  if (ported.length === 0) return [];
  const more = ported.length > DENIED_SHOWN ? [`  and ${ported.length - DENIED_SHOWN} more ('status --json' lists them all)`] : [];
  return ["allowed on some ports only:", ...ported.slice(0, DENIED_SHOWN).map((e) => `  ${e.network}: ${e.ports}`), ...more];
}

/** A denied destination with the names that held its address, as `status --json` prints it. */
export type NamedDenied = DeniedDestination & { readonly names: readonly string[] };

const ago = (seconds: number): string =>
  seconds < 60 ? `${seconds}s` : seconds < 3600 ? `${Math.round(seconds / 60)}m` : `${Math.round(seconds / 360) / 10}h`;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** `203.0.113.20 tcp/80`, `[2001:db8::1]:443`-style: what the destination is, protocol and port. */
export const describeDestination = (d: Pick<DeniedDestination, "address" | "protocol" | "port">): string =>
  `${d.address} ${d.protocol}${d.port === 0 ? "" : `/${d.port}`}`;

/** The lines about denied destinations: most packets first, with the names domainwall knows for them. */
function deniedLines(denied: readonly NamedDenied[] | undefined, enforcing: boolean): string[] {
  if (denied === undefined) return ["denied destinations: not recorded by this backend (iptables-legacy keeps only the counters above)"];
  const what = enforcing ? "denied" : "would be denied (audit mode)";
  if (denied.length === 0) return [`${what}: nothing recorded`];
  const lines = denied.slice(0, DENIED_SHOWN).map((d) => {
    const seen = d.lastSeenSecondsAgo === undefined ? "" : `, last ${ago(d.lastSeenSecondsAgo)} ago`;
    const names = d.names.length > 0 ? ` (${d.names.join(", ")})` : "";
    return `  ${describeDestination(d)} ${d.direction}: ${plural(d.packets, "packet")}${seen}${names}`;
  });
  const more = denied.length > DENIED_SHOWN ? [`  and ${denied.length - DENIED_SHOWN} more ('status --json' lists them all)`] : [];
  return [
    `${what}, most packets first (each kept ${DENIED_RECORD.timeoutSeconds / 3600}h after its last packet, up to ${DENIED_RECORD.size} per direction and family):`,
    ...lines,
    ...more,
  ];
}

/** `status`: the kernel's view, the denied destinations, then each name's addresses when a watch is running here. */
export function renderStatus(status: Status, backend: string, known: KnownNames, epochNow: number): string {
  if (!status.loaded) return `nothing loaded: domainwall has no rules here (${backend})\n`;
  const lines = [
    ...(status.problems === undefined
      ? [`domainwall is loaded (${backend})`]
      : [`domainwall is loaded but NOT ENFORCING (${backend}):`, ...status.problems.map((p) => `  ${p}`)]),
    ...(status.enforcing ? [] : [`WARNING: ${AUDIT_WARNING}`]),
    ...status.sets.map((s) => `  set ${s.name}: ${s.elements} ${s.elements === 1 ? "entry" : "entries"}`),
    ...status.counters.map((c) => `  counter ${c.name}: ${c.packets} packets, ${c.bytes} bytes`),
    ...portLines(status.allowed),
    ...proxyLines(status, known.watch?.proxy?.addresses ?? [], DENIED_SHOWN),
    // Above the list: what the list cannot show.
    ...(status.deniedFull?.length ? [`WARNING: ${deniedFullMessage(status.deniedFull, { audit: !status.enforcing })}`] : []),
    ...deniedLines(namedDenied(status.denied, known), status.enforcing),
    ...(known.watch === undefined
      ? ["no domainwall watch is running here: the sets hold what the last apply resolved"]
      : describeWatchState(known.watch, epochNow)),
  ];
  return `${lines.join("\n")}\n`;
}

const namedDenied = (denied: readonly DeniedDestination[] | undefined, known: KnownNames): NamedDenied[] | undefined =>
  denied?.map((d) => ({ ...d, names: namesOf(known, d.address) }));

/**
 * `status --json`: one object, documented in docs/visibility.md ("status --json"). `denied`
 * is null where the backend does not record destinations; `watch` is null unless one runs here;
 * `refusedNames` is null unless that watch runs the DNS proxy.
 */
export function statusJson(status: Status, backend: string, known: KnownNames) {
  if (!status.loaded) return { version: 1, loaded: false, backend };
  return {
    version: 1,
    loaded: true,
    backend,
    enforcing: status.enforcing,
    problems: status.problems ?? [],
    sets: status.sets,
    counters: status.counters,
    allowed: allowedJson(status, known.watch?.proxy?.addresses ?? []),
    dns: status.dns,
    denied: namedDenied(status.denied, known) ?? null,
    // The denied sets with no room left (later destinations go unrecorded); null where none are recorded.
    deniedFull: status.deniedFull?.map((s) => s.name) ?? null,
    names: { from: known.from, names: known.names.map((n) => ({ name: n.name, addresses: n.addresses })) },
    watch: known.watch === undefined ? null : { pid: known.watch.pid, writtenAt: known.watch.writtenAt, names: known.watch.names },
    // `watch --dns-proxy`: the names it answered NXDOMAIN for (in audit mode: would have), most asked first; null without it.
    refusedNames: known.watch?.proxy?.refused ?? null,
    refusedNamesOther: known.watch?.proxy?.refusedOther ?? null,
    dnsProxy: dnsProxyJson(status, {
      running: known.watch?.proxy !== undefined,
      admitted: known.watch?.proxy?.addresses ?? [],
      ...(known.watch?.proxy?.workerPid !== undefined && { workerPid: known.watch.proxy.workerPid }),
      ...(known.watch?.proxy?.supervisorPid !== undefined && { supervisorPid: known.watch.proxy.supervisorPid }),
    }),
  };
}

/**
 * `status`: every backend that works here, whatever --backend says (a policy the other one loaded
 * filters too): the one that holds rules, or each of two, naming them. `--json` describes the
 * first that holds rules (the chosen backend first) and names the others in `alsoLoaded`.
 */
export async function statusCommand(ctx: Context, config: ConfigOf<"status">): Promise<void> {
  if (config.follow) return statusFollowCommand(ctx, config);
  const { world, log, backend: backendFor, others } = ctx;
  const [chosen, other, known] = await Promise.all([backendFor(), others(), knownNames(world)]);
  if (other.unseen !== undefined) log.warn(`cannot check ${other.unseen} for a domainwall policy`);
  const all = [chosen, ...other.backends];
  const statuses = await Promise.all(all.map(async (backend) => ({ name: backend.name, status: await backend.status() })));
  const loaded = statuses.filter((s) => s.status.loaded);
  const shown = loaded[0] ?? { name: all.map((b) => b.name).join(", "), status: { loaded: false } as Status };
  if (config.json) {
    const alsoLoaded = loaded.slice(1).map((s) => s.name);
    await world.stdout(
      `${JSON.stringify({ ...statusJson(shown.status, loaded.length > 0 ? shown.name : chosen.name, known), ...(alsoLoaded.length > 0 && { alsoLoaded }) }, null, 2)}\n`,
    );
  } else {
    const two =
      loaded.length > 1
        ? `TWO domainwall policies are loaded (${loaded.map((s) => s.name).join(" and ")}): both filter, so only what both allow passes; run apply (which keeps one) or remove\n`
        : "";
    const shownAll = loaded.length > 0 ? loaded : [shown];
    await world.stdout(two + shownAll.map((s) => renderStatus(s.status, s.name, known, world.epochNow())).join(""));
  }
  if (loaded.length === 0) {
    throw notEnforcingError(`nothing of domainwall's is loaded here (exit 3): table inet domainwall and our iptables chains are missing`);
  }
  if (loaded.some((s) => s.status.loaded && s.status.problems !== undefined)) {
    throw notEnforcingError(
      "domainwall's rules are loaded but not enforced (exit 3): run apply again, which restores the hooks and puts its jumps first",
    );
  }
}
