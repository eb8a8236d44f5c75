import type { Status } from "../backends/backend.ts";
import { notEnforcingError } from "../errors.ts";
import { describeWatchState, parseWatchState, WATCH_STATE_FILE, type WatchState } from "../watch/state.ts";
import type { World } from "../world.ts";
import { watchStateFile, type Context } from "./context.ts";

/** `status`: the kernel's view, then each name's addresses when a watch is running here. */
function renderStatus(status: Status, backend: string, watch: WatchState | undefined, epochNow: number): string {
  if (!status.loaded) return `nothing loaded: domainwall has no rules here (${backend})\n`;
  const lines = [
    ...(status.problems === undefined ? [`domainwall is loaded (${backend})`] : [`domainwall is loaded but NOT ENFORCING (${backend}):`, ...status.problems.map((p) => `  ${p}`)]),
    ...status.sets.map((s) => `  set ${s.name}: ${s.elements} ${s.elements === 1 ? "entry" : "entries"} (adjacent addresses merge into ranges)`),
    ...status.counters.map((c) => `  counter ${c.name}: ${c.packets} packets, ${c.bytes} bytes`),
    ...(watch === undefined ? ["no domainwall watch is running here: the sets hold what the last apply resolved"] : describeWatchState(watch, epochNow)),
  ];
  return `${lines.join("\n")}\n`;
}

/** The state a live `watch` keeps in the run directory; undefined when none is running. */
async function runningWatch(world: World): Promise<WatchState | undefined> {
  const text = await world.readFile(watchStateFile(world.env, WATCH_STATE_FILE));
  const state = text === undefined ? undefined : parseWatchState(text);
  return state !== undefined && world.processAlive(state.pid) ? state : undefined;
}

/**
 * `status`: every backend that works here, whatever --backend says (a policy the other one loaded
 * filters too): the one that holds rules, or each of two, naming them.
 */
export async function statusCommand({ world, log, backend: backendFor, others }: Context): Promise<void> {
  const [chosen, other] = await Promise.all([backendFor(), others()]);
  if (other.unseen !== undefined) log.warn(`cannot check ${other.unseen} for a domainwall policy`);
  const all = [chosen, ...other.backends];
  const statuses = await Promise.all(all.map(async (backend) => ({ name: backend.name, status: await backend.status() })));
  const loaded = statuses.filter((s) => s.status.loaded);
  const watch = await runningWatch(world);
  if (loaded.length === 0) return void (await world.stdout(renderStatus({ loaded: false }, all.map((b) => b.name).join(", "), watch, world.epochNow())));
  const two = loaded.length > 1 ? `TWO domainwall policies are loaded (${loaded.map((s) => s.name).join(" and ")}): both filter, so only what both allow passes; run apply (which keeps one) or remove\n` : "";
  await world.stdout(two + loaded.map((s) => renderStatus(s.status, s.name, watch, world.epochNow())).join(""));
  if (loaded.some((s) => s.status.loaded && s.status.problems !== undefined)) {
    throw notEnforcingError("domainwall's rules are loaded but not enforced (exit 3): run apply again, which restores the hooks and puts its jumps first");
  }
}
