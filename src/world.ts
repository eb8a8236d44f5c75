import { mkdir, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { guardedLookup } from "./dns/lookup.ts";
import type { World } from "./main.ts";
import { runProcess } from "./run.ts";

/** Keys on the terminal that keep or revert an unconfirmed apply. */
const KEEP = new Set(["y", "Y", "\r", "\n"]);
const REVERT = new Set(["n", "N", "\u0003"]);

/** While an apply waits for confirmation: the terminal's answer and signals (see World.awaitOperator). */
function awaitOperator(): ReturnType<World["awaitOperator"]> {
  let settle: (d: "keep" | "revert") => void = () => {};
  const decision = new Promise<"keep" | "revert">((resolve) => (settle = resolve));
  const onKey = (data: Buffer) => {
    const key = data.toString();
    if (KEEP.has(key)) settle("keep");
    else if (REVERT.has(key)) settle("revert");
  };
  const revert = () => settle("revert");
  const ignoreHangup = () => {};
  const tty = process.stdin.isTTY === true;
  if (tty) {
    process.stdin.setRawMode(true);
    process.stdin.on("data", onKey);
  }
  process.on("SIGINT", revert);
  process.on("SIGTERM", revert);
  process.on("SIGHUP", ignoreHangup);
  return {
    decision,
    done() {
      if (tty) {
        process.stdin.off("data", onKey);
        process.stdin.setRawMode(false);
        process.stdin.pause();
      }
      process.off("SIGINT", revert);
      process.off("SIGTERM", revert);
      // SIGHUP stays ignored: the rollback or the confirmation message must not be cut short.
    },
  };
}

/** `watch`: SIGTERM (Kubernetes stopping the container) or SIGINT ends the loop instead of the process. */
function untilStopped(): ReturnType<World["untilStopped"]> {
  let settle: (signal: string) => void = () => {};
  const stopped = new Promise<string>((resolve) => (settle = resolve));
  const onTerm = () => settle("SIGTERM");
  const onInt = () => settle("SIGINT");
  process.on("SIGTERM", onTerm);
  process.on("SIGINT", onInt);
  return {
    stopped,
    done() {
      process.off("SIGTERM", onTerm);
      process.off("SIGINT", onInt);
    },
  };
}

const serve: World["serve"] = ({ hostname, port }, handle) => {
  const server = Bun.serve({ hostname, port, fetch: handle, idleTimeout: 30 });
  return { stop: () => void server.stop(true) };
};

const processStats: World["processStats"] = () => {
  const cpu = process.cpuUsage();
  return {
    residentBytes: process.memoryUsage.rss(),
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    startTimeSeconds: Math.round(Date.now() / 1000 - process.uptime()),
  };
};

/** The real world: process, files, DNS, child processes. The only module besides main's entry that touches them. */
export function realWorld(): World {
  return {
    argv: process.argv.slice(2),
    env: process.env,
    stdout: (text) => Bun.write(Bun.stdout, text),
    stderr: process.stderr,
    run: runProcess,
    lookup: guardedLookup(),
    readFile: async (path) => {
      const file = Bun.file(path);
      return (await file.exists()) ? file.text() : undefined;
    },
    writeFile: async (path, text) => {
      await mkdir(dirname(path), { recursive: true });
      await Bun.write(path, text);
    },
    removeFile: async (path) => {
      const existed = await Bun.file(path).exists();
      await rm(path, { force: true });
      return existed;
    },
    now: () => performance.now(),
    epochNow: () => Date.now(),
    pid: process.pid,
    processAlive: (pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch (error) {
        // EPERM: it exists but belongs to someone else.
        return (error as NodeJS.ErrnoException).code === "EPERM";
      }
    },
    sleep: (ms) => Bun.sleep(ms),
    awaitOperator,
    untilStopped,
    serve,
    processStats,
  };
}
