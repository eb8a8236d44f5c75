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

export async function statusCommand({ world, backend: backendFor }: Context): Promise<void> {
  const backend = await backendFor();
  const status = await backend.status();
  await world.stdout(renderStatus(status, backend.name, await runningWatch(world), world.epochNow()));
  if (status.loaded && status.problems !== undefined) {
    throw notEnforcingError("domainwall's rules are loaded but not enforced (exit 3): run apply again, which restores the hooks and puts its jumps first");
  }
}
