import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { KERNEL_LOCK, WATCH_MARKER, acquireLock, describeHolder, holderOf } from "../../src/backends/lock.ts";
import { describeNetns } from "../lab/lab.ts";

setDefaultTimeout(30_000);

const HOLDER = `${import.meta.dir}/../support/hold-lock.ts`;
let counter = 0;
/** A name no other test run on this machine uses (the root namespace is shared). */
const uniqueName = () => `domainwall-test-${process.pid}-${counter++}`;
const children: Bun.Subprocess[] = [];
afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
});

/** Starts a process holding `name`; resolves once it says "held". */
async function holder(name: string, command: string, prefix: string[] = []) {
  const child = Bun.spawn([...prefix, process.execPath, HOLDER, name, command, "0"], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  children.push(child);
  const reader = child.stdout.getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  reader.releaseLock();
  expect(first.trim()).toBe("held");
  return child;
}

describe("acquireLock (an abstract unix socket: scoped to the network namespace, freed when its process dies)", () => {
  const self = { pid: process.pid, command: "apply" };

  test("a free lock is taken at once; released, it is free again; the same names are what the commands use", async () => {
    expect([KERNEL_LOCK, WATCH_MARKER]).toEqual(["domainwall-lock", "domainwall-watch"]);
    const name = uniqueName();
    expect(await holderOf(name)).toBeUndefined();
    const first = await acquireLock(name, self, { waitMs: 0 });
    if (!first.ok) throw new Error("not acquired");
    expect(await holderOf(name)).toEqual(self);
    first.release();
    expect(await holderOf(name)).toBeUndefined();
    const again = await acquireLock(name, self, { waitMs: 0 });
    expect(again.ok).toBe(true);
    if (again.ok) again.release();
  });

  test("held by another process: a bounded wait, then the holder's pid and command", async () => {
    const name = uniqueName();
    const child = await holder(name, "watch");
    const result = await acquireLock(name, self, { waitMs: 300, pollMs: 50 });
    expect(result).toEqual({ ok: false, holder: { pid: child.pid, command: "watch" } });
    expect(await holderOf(name)).toEqual({ pid: child.pid, command: "watch" });
  });

  test("a waiting process gets the lock once the holder releases it and exits", async () => {
    const name = uniqueName();
    const child = await holder(name, "apply");
    const waiting = acquireLock(name, self, { waitMs: 20_000, pollMs: 20 });
    let settled = false;
    void waiting.then(() => (settled = true));
    await Bun.sleep(200);
    expect(settled).toBe(false); // the holder is alive: still waiting
    child.stdin.end();
    await child.exited;
    const result = await waiting;
    expect(result.ok).toBe(true);
    if (result.ok) result.release();
  });

  test("SIGKILL of the holder frees the lock: nothing stale survives", async () => {
    const name = uniqueName();
    const child = await holder(name, "apply");
    child.kill("SIGKILL");
    await child.exited;
    const result = await acquireLock(name, self, { waitMs: 5_000, pollMs: 20 });
    expect(result.ok).toBe(true);
    if (result.ok) result.release();
  });

  test("in one process a second acquire of a held name waits and fails (not re-entrant), a different name is independent", async () => {
    const name = uniqueName();
    const first = await acquireLock(name, self, { waitMs: 0 });
    if (!first.ok) throw new Error("not acquired");
    expect(await acquireLock(name, { pid: process.pid, command: "remove" }, { waitMs: 50, pollMs: 10 })).toEqual({
      ok: false,
      holder: self,
    });
    const other = await acquireLock(uniqueName(), self, { waitMs: 0 });
    expect(other.ok).toBe(true);
    if (other.ok) other.release();
    first.release();
  });

  test("an asker that holds a lock itself (apply, checking for a watch) sees the holder in another process every time", async () => {
    const name = uniqueName();
    const child = await holder(name, "watch");
    const own = await acquireLock(uniqueName(), self, { waitMs: 0 });
    if (!own.ok) throw new Error("not acquired");
    try {
      const seen = new Set<string>();
      for (let i = 0; i < 100; i++) seen.add(JSON.stringify(await holderOf(name)));
      expect([...seen]).toEqual([JSON.stringify({ pid: child.pid, command: "watch" })]);
    } finally {
      own.release();
    }
  });

  test("a holder that answers and closes at once (an older domainwall, node:net) is never taken for nobody", async () => {
    const name = uniqueName();
    const { createServer } = await import("node:net");
    const older = createServer((socket) => {
      socket.on("error", () => {});
      socket.end(`${JSON.stringify({ pid: 4321, command: "watch" })}\n`);
    });
    await new Promise<void>((resolve) => older.listen(`\0${name}`, resolve));
    try {
      const answers = await Promise.all(Array.from({ length: 50 }, () => holderOf(name)));
      expect(answers.filter((a) => a === undefined)).toEqual([]);
    } finally {
      older.close();
    }
  });

  test("a holder that does not say who it is (another program on the name) is reported as unknown", async () => {
    const name = uniqueName();
    const { createServer } = await import("node:net");
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(`\0${name}`, resolve));
    try {
      expect(await holderOf(name, 100)).toBe("unknown");
      expect(await acquireLock(name, self, { waitMs: 0 })).toEqual({ ok: false, holder: "unknown" });
    } finally {
      silent.close();
    }
  });
});

test.each([
  { holder: { pid: 42, command: "watch" }, text: "pid 42 (watch)" },
  { holder: "unknown" as const, text: "a process that does not say who it is" },
  { holder: undefined, text: "a process that has just exited" },
])("describeHolder → $text", ({ holder, text }) => {
  expect(describeHolder(holder)).toBe(text);
});

describeNetns("acquireLock across network namespaces", () => {
  const namespaces = [`dwlock${process.pid % 100000}a`, `dwlock${process.pid % 100000}b`];
  const inNs = (ns: string) => ["ip", "netns", "exec", ns];
  afterAll(() => {
    for (const child of children) child.kill("SIGKILL");
    for (const ns of namespaces) Bun.spawnSync(["ip", "netns", "delete", ns], { stderr: "ignore" });
  });

  test("two namespaces do not contend for the lock; two processes in one namespace do", async () => {
    for (const ns of namespaces) expect(Bun.spawnSync(["ip", "netns", "add", ns]).exitCode).toBe(0);
    const [a = "", b = ""] = namespaces;
    const inA = await holder(KERNEL_LOCK, "apply", inNs(a));
    const inB = await holder(KERNEL_LOCK, "apply", inNs(b)); // would say "busy" if namespaces shared it
    const second = Bun.spawnSync([...inNs(a), process.execPath, HOLDER, KERNEL_LOCK, "remove", "200"], { stdout: "pipe" });
    // `ip netns exec` execs the command: the holder's pid is the one spawned.
    expect(second.stdout.toString().trim()).toBe(`busy ${JSON.stringify({ pid: inA.pid, command: "apply" })}`);
    expect(second.exitCode).toBe(1);
    // The root namespace (this test) does not see either.
    expect(
      await holderOf(KERNEL_LOCK).then((h) => h === undefined || (typeof h === "object" && h.pid !== inA.pid && h.pid !== inB.pid)),
    ).toBe(true);
    inA.kill("SIGKILL");
    await inA.exited;
    const after = Bun.spawnSync([...inNs(a), process.execPath, HOLDER, KERNEL_LOCK, "remove", "5000"], { stdout: "pipe", stdin: "ignore" });
    expect(after.stdout.toString().trim()).toBe("held");
    inB.stdin.end();
    expect(await inB.exited).toBe(0);
  });
});
