// main() against a fake world, for the command tests (test/commands/*-main.test.ts and others).
import { Writable } from "node:stream";
import { main } from "../../src/main.ts";
import { processExecutor } from "../../src/backends/nft/process-executor.ts";
import type { World } from "../../src/world.ts";
import type { Holder } from "../../src/backends/lock.ts";
import { fakeLocks } from "./fake-locks.ts";
import { fakeRuntime } from "./fake-runtime.ts";
import type { Runtime } from "../../src/runtime.ts";
import type { Lookup } from "../../src/dns/resolve.ts";
import { fakeRun, isBackendProbe, type RunCall } from "./fake-run.ts";
import type { RunResult } from "../../src/run.ts";

/** The fake wall clock starts here (2025-11-24T16:00:00Z); the fake monotonic clock at 0. */
export const EPOCH = 1_764_000_000_000;

export const records: Record<string, { 4: string[]; 6: string[] }> = {
  "api.example": { 4: ["203.0.113.10", "203.0.113.11"], 6: ["2001:db8:ff::10"] },
  "mirror.example": { 4: ["203.0.113.20"], 6: [] },
};

export const lookup: Lookup = async (host, family) => {
  const found = records[host]?.[family] ?? [];
  if (found.length === 0) throw Object.assign(new Error("not found"), { code: "DNS_ENOTFOUND" });
  return found.map((address) => ({ address, ttl: 30 }));
};

/** A pod's resolv.conf: the cluster's resolvers, ndots:5. */
export const POD_RESOLV_CONF = "search cluster.local\nnameserver 198.51.100.2\nnameserver 2001:db8:1::2\noptions ndots:5\n";

/** What a run of main() gets besides argv; every field has a default. */
export interface RunOptions {
  readonly env?: Record<string, string>;
  /** nft's answer to each call (`--backend auto`'s probe is answered apart). */
  readonly nft?: Partial<RunResult> | ((call: RunCall) => Partial<RunResult>);
  readonly files?: Record<string, string>;
  /** The operator's answer at `apply --confirm-within`'s prompt. */
  readonly operator?: Promise<"keep" | "revert">;
  readonly overrides?: (world: World) => Partial<World>;
  /** Locks held by other processes. */
  readonly held?: Map<string, Holder>;
  /** The iptables-legacy tools (the other backend, checked by apply, remove and status): empty tables unless told. */
  readonly iptables?: (call: RunCall) => Partial<RunResult>;
  /** How the process runs (JIT, group switch): a fake that records the calls unless told. */
  readonly runtime?: Runtime;
}

/** Run main() against a fake world; returns the exit code, both outputs and the processes it ran. */
export async function runMain(argv: string[], options: RunOptions = {}) {
  const {
    env = {},
    nft = {},
    files = { "/etc/resolv.conf": POD_RESOLV_CONF },
    operator = new Promise<"keep" | "revert">(() => {}),
    overrides = () => ({}),
    held = new Map<string, Holder>(),
    iptables = () => ({}),
    runtime = fakeRuntime(),
  } = options;
  let clock = 0;
  const locks = fakeLocks(4242, held);
  let stdout = "";
  let stderr = "";
  const sink = new Writable({ write: (chunk, _enc, done) => ((stderr += chunk.toString()), done()) }) as unknown as NodeJS.WriteStream;
  // `--backend auto` first asks the kernel (a read, see isBackendProbe): it succeeds here (nft works);
  // the backend selection has its own tests.
  const respond = typeof nft === "function" ? nft : () => nft;
  const isIptables = (call: RunCall) => /ip6?tables-legacy/.test(call.command);
  const { run, calls: allCalls } = fakeRun((call) => (isBackendProbe(call) ? {} : isIptables(call) ? iptables(call) : respond(call)));
  const world: World = {
    argv,
    env,
    stdout: async (text) => void (stdout += text),
    stderr: sink,
    writeStderr: (text) => void (stderr += text),
    run,
    nft: () => ({ executor: processExecutor(run), reason: "nft transactions run the nft binary: a fake" }),
    lookup,
    watchLookup: lookup,
    readFile: async (path) => files[path],
    writeFile: async (path, text) => void (files[path] = text),
    removeFile: async (path) => {
      const existed = path in files;
      delete files[path];
      return existed;
    },
    now: () => clock,
    sleep: async (ms) => void (clock += ms),
    // The fake lookups answer at once: no deadline ever falls due.
    setTimer: () => () => {},
    awaitOperator: () => ({ decision: operator, done: () => {} }),
    untilStopped: () => ({ stopped: new Promise(() => {}), done: () => {} }),
    configChanges: () => ({ stop: () => {} }),
    serve: () => ({ stop: () => {} }),
    processStats: () => ({ residentBytes: 0, cpuSeconds: 0, startTimeSeconds: 0 }),
    epochNow: () => EPOCH + clock,
    // The iptables-legacy tools decide, as where the kernel cannot be asked (kernel.ts has its own tests).
    legacyFilterEmpty: async () => false,
    tableEvents: () => ({ close: () => {} }),
    pid: 4242,
    processAlive: (pid) => pid === 4242, // this process; any other PID has gone
    ...locks,
  };
  const code = await main({ ...world, ...overrides(world) }, runtime);
  const calls = allCalls.filter((call) => !isBackendProbe(call) && !isIptables(call));
  const iptablesCalls = allCalls.filter(isIptables);
  return { code, stdout, stderr, calls, iptablesCalls, files, probes: allCalls.filter(isBackendProbe).length, locks };
}
