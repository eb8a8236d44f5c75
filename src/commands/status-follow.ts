import { deniedReader } from "../backends/nft/denied.ts";
import type { ConfigOf } from "../config/config.ts";
import { usageError } from "../errors.ts";
import { startDenialStream } from "../watch/denial-stream.ts";
import { denialEntry, isDestinationEvent, type DenialEvent } from "../watch/denials.ts";
import type { Context } from "./context.ts";
import { knownNames, namesOf } from "./names.ts";

/**
 * `status --follow`: the denial stream a watch logs, printed on stdout as the kernel records it,
 * with no watch needed (a shell on a VM, an ephemeral debug container after an apply-only
 * initContainer). What is recorded already is the starting point; SIGINT or SIGTERM ends it (exit 0).
 * Each line is the time and the event; with --json one object per line, the facts as fields.
 */
export async function statusFollowCommand({ world, log, backend }: Context, config: ConfigOf<"status">): Promise<void> {
  const chosen = await backend();
  if (chosen.name !== "nft")
    throw usageError("status --follow needs the nft backend: iptables-legacy keeps counters, not the destinations it denied");
  const read = deniedReader(world.nft().executor);
  const first = await read();
  if (!config.json) {
    await world.stdout(
      first === undefined
        ? "nothing loaded: domainwall has no rules here yet; waiting for them (Ctrl-C stops)\n"
        : `following the denied destinations as the kernel records them (${first.denied.length} recorded already: 'domainwall status' lists them; Ctrl-C stops)\n`,
    );
  }
  const print = async (event: DenialEvent, audit: boolean) => {
    const names = isDestinationEvent(event) ? namesOf(await knownNames(world), event.address) : [];
    const { message, ...fields } = denialEntry(event, names, audit);
    const time = new Date(world.epochNow()).toISOString();
    await world.stdout(config.json ? `${JSON.stringify({ time, ...fields, msg: message })}\n` : `${time} ${message}\n`);
  };
  const stop = world.untilStopped();
  let given = false;
  const stream = startDenialStream({
    read: async () => (given ? read() : ((given = true), first)),
    emit: print,
    failed: (message) => log.warn(`cannot read the denied destinations: ${message}`),
    now: world.now,
    setTimer: world.setTimer,
    baseline: true,
  });
  try {
    await stop.stopped;
    await stream.stop();
  } finally {
    stop.done();
  }
}
