import { describe, expect, test } from "bun:test";
import type { Backend } from "../../src/backends/backend.ts";
import type { NftExecutor } from "../../src/backends/nft/executor.ts";
import { statusFollowCommand } from "../../src/commands/status-follow.ts";
import type { Context } from "../../src/commands/context.ts";
import { DomainwallError } from "../../src/errors.ts";
import { createLogger } from "../../src/log.ts";
import type { World } from "../../src/world.ts";

const EPOCH = 1_764_000_000_000;

/** `nft -j list set` of denied_out_v4 holding these (address, port, packets). */
const listing = (elements: readonly [string, number, number][]) =>
  JSON.stringify({
    nftables: [
      { metainfo: { version: "1.0.6" } },
      {
        set: {
          family: "inet",
          name: "denied_out_v4",
          table: "domainwall",
          timeout: 3600,
          elem: elements.map(([address, port, packets]) => ({
            elem: { val: { concat: [address, "tcp", port] }, expires: 3599, counter: { packets, bytes: packets * 60 } },
          })),
        },
      },
    ],
  });

/**
 * statusFollowCommand against a fake kernel: `reads` are the successive states of denied_out_v4
 * (the other sets are missing); each timer tick is one read; the stop signal comes after the last.
 */
async function follow(reads: (readonly [string, number, number][])[], options: { json?: boolean; backend?: Backend["name"] } = {}) {
  let out = "";
  let stop: (signal: string) => void = () => {};
  const timers: (() => void)[] = [];
  let state = reads.shift() ?? [];
  const executor: NftExecutor = {
    name: "libnftables",
    run: async (script) => {
      if (script === "list set inet domainwall denied_out_v4") return { code: 0, stdout: listing(state), stderr: "" };
      return { code: 1, stdout: "", stderr: "Error: No such file or directory" };
    },
  };
  const world = {
    env: { DOMAINWALL_RUN_DIR: "/nonexistent" },
    stdout: async (text: string) => void (out += text),
    nft: () => ({ executor, reason: "fake" }),
    untilStopped: () => ({ stopped: new Promise<string>((resolve) => (stop = resolve)), done: () => {} }),
    now: () => 0,
    epochNow: () => EPOCH,
    setTimer: (_ms: number, fire: () => void) => (timers.push(fire), () => {}),
    readFile: async () => undefined,
    processAlive: () => false,
  } as unknown as World;
  const ctx = {
    world,
    log: createLogger("text"),
    backend: async () => ({ name: options.backend ?? "nft" }) as Backend,
    others: async () => ({ backends: [] }),
  } as unknown as Context;
  // Settled at once into a value: a usage error must not be an unhandled rejection while the test waits.
  const done = statusFollowCommand(ctx, {
    command: "status",
    json: options.json ?? false,
    follow: true,
    backend: "auto",
    logFormat: "text",
  }).then(
    () => undefined,
    (error: unknown) => error,
  );
  for (const next of reads) {
    await Bun.sleep(5);
    state = next;
    timers.shift()?.();
  }
  await Bun.sleep(5);
  stop("SIGINT");
  const error = await done;
  if (error !== undefined) throw error;
  return out;
}

describe("status --follow", () => {
  test("what was recorded before is the starting point; a new destination is one timed line", async () => {
    const out = await follow([
      [["203.0.113.5", 443, 3]],
      [
        ["203.0.113.5", 443, 3],
        ["203.0.113.20", 80, 1],
      ],
    ]);
    expect(out).toBe(
      [
        "following the denied destinations as the kernel records them (1 recorded already: 'domainwall status' lists them; Ctrl-C stops)",
        "2025-11-24T16:00:00.000Z denied: outbound to 203.0.113.20 tcp/80, 1 packet",
        "",
      ].join("\n"),
    );
  });

  test("a destination still hit when it stops gets its summary", async () => {
    const out = await follow([[], [["203.0.113.20", 80, 1]], [["203.0.113.20", 80, 500]]]);
    expect(out).toContain(
      "2025-11-24T16:00:00.000Z still denied: outbound to 203.0.113.20 tcp/80, 499 more packets since the last line (500 in all)\n",
    );
  });

  test("--json: one object per line, the facts as fields", async () => {
    const out = await follow([[], [["203.0.113.20", 80, 2]]], { json: true });
    expect(
      out
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l)),
    ).toEqual([
      {
        time: "2025-11-24T16:00:00.000Z",
        event: "denied",
        direction: "out",
        address: "203.0.113.20",
        protocol: "tcp",
        port: 80,
        packets: 2,
        totalPackets: 2,
        msg: "denied: outbound to 203.0.113.20 tcp/80, 2 packets",
      },
    ]);
  });

  test("iptables-legacy records no destinations: a usage error saying so", async () => {
    const error = await follow([], { backend: "iptables-legacy" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DomainwallError);
    expect((error as Error).message).toContain("status --follow needs the nft backend");
  });
});
