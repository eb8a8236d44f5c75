import { describe, expect, test } from "bun:test";
import type { Backend } from "../../src/backends/backend.ts";
import type { NftExecutor } from "../../src/backends/nft/executor.ts";
import type { Context } from "../../src/commands/context.ts";
import { statusFollowCommand } from "../../src/commands/status-follow.ts";
import { createLogger } from "../../src/log.ts";
import type { World } from "../../src/world.ts";
import { runMain } from "../support/run-main.ts";

const MESSAGE =
  "the record of denied destinations is full (4096): later destinations are dropped but not recorded until entries expire (1h after their last packet); see output_dropped (full: denied_out_v4)";

/** denied_out_v4 holding `count` UDP ports of one address, as `nft -j` lists it. */
const deniedSet = (count: number) => ({
  set: {
    family: "inet",
    name: "denied_out_v4",
    table: "domainwall",
    size: 4096,
    flags: ["timeout", "dynamic"],
    timeout: 3600,
    elem: Array.from({ length: count }, (_, i) => ({
      elem: { val: { concat: ["198.51.100.7", "udp", 1 + i] }, expires: 3590, counter: { packets: 1, bytes: 29 } },
    })),
  },
});

const table = (count: number) =>
  JSON.stringify({
    nftables: [
      { table: { family: "inet", name: "domainwall" } },
      { chain: { family: "inet", table: "domainwall", name: "output", hook: "output" } },
      { rule: { family: "inet", table: "domainwall", chain: "output", expr: [] } },
      { counter: { name: "output_dropped", packets: 4200, bytes: 121800 } },
      deniedSet(count),
    ],
  });

describe("status: a full record of denied destinations", () => {
  test("the text says so plainly", async () => {
    const { code, stdout } = await runMain(["status"], { nft: { stdout: table(4096) } });
    expect(code).toBe(0);
    expect(stdout).toContain(`\nWARNING: ${MESSAGE}\n`);
  });

  test("not full: not a word about it", async () => {
    const { stdout } = await runMain(["status"], { nft: { stdout: table(4000) } });
    expect(stdout).not.toContain("is full");
  });

  test("--json: deniedFull names the full sets, [] when none is", async () => {
    const full = await runMain(["status", "--json"], { nft: { stdout: table(4093) } });
    expect(JSON.parse(full.stdout).deniedFull).toEqual(["denied_out_v4"]);
    const notFull = await runMain(["status", "--json"], { nft: { stdout: table(12) } });
    expect(JSON.parse(notFull.stdout).deniedFull).toEqual([]);
  });
});

test("status --follow: says so when it starts on a full record, as a timed line", async () => {
  let out = "";
  let stop: (signal: string) => void = () => {};
  const executor: NftExecutor = {
    name: "libnftables",
    run: async (script) =>
      script === "list set inet domainwall denied_out_v4"
        ? { code: 0, stdout: JSON.stringify({ nftables: [deniedSet(4096)] }), stderr: "" }
        : { code: 1, stdout: "", stderr: "Error: No such file or directory" },
  };
  const world = {
    env: { DOMAINWALL_RUN_DIR: "/nonexistent" },
    stdout: async (text: string) => void (out += text),
    nft: () => ({ executor, reason: "fake" }),
    untilStopped: () => ({ stopped: new Promise<string>((resolve) => (stop = resolve)), done: () => {} }),
    now: () => 0,
    epochNow: () => 1_764_000_000_000,
    setTimer: () => () => {},
    readFile: async () => undefined,
    processAlive: () => false,
  } as unknown as World;
  const ctx = {
    world,
    log: createLogger("text"),
    backend: async () => ({ name: "nft" }) as Backend,
    others: async () => ({ backends: [] }),
  } as unknown as Context;
  const done = statusFollowCommand(ctx, { command: "status", json: false, follow: true, backend: "auto", logFormat: "text" });
  await Bun.sleep(20);
  stop("SIGINT");
  await done;
  expect(out).toContain(`\n2025-11-24T16:00:00.000Z ${MESSAGE}\n`);
});
