import { expect, test } from "bun:test";
import { acquireLock, holderOf, MAX_ANSWERING } from "../../src/backends/lock.ts";

// Real abstract sockets in this process's network namespace, under names no domainwall uses.
const unique = () => `domainwall-test-lock-${process.pid}-${Math.random().toString(36).slice(2)}`;

/** A connection that reads nothing back and never closes, as any process in the namespace may open; resolves when the holder closes it. */
async function squat(name: string): Promise<{ closed: Promise<void>; isClosed: () => boolean; close: () => void }> {
  let isClosed = false;
  let done = () => {};
  const closed = new Promise<void>((resolve) => (done = resolve));
  const socket = await Bun.connect({
    unix: `\0${name}`,
    socket: {
      data: () => {},
      error: () => {},
      close: () => ((isClosed = true), done()),
    },
  });
  return { closed, isClosed: () => isClosed, close: () => socket.terminate() };
}

test("the holder closes a connection that never closes itself once it has answered (no half-open connection left for good)", async () => {
  const name = unique();
  const held = await acquireLock(name, { pid: 1, command: "watch" }, { waitMs: 0, answerOpenMs: 100 });
  expect(held.ok).toBe(true);
  const quiet = await squat(name);
  const outcome = await Promise.race([quiet.closed.then(() => "closed"), Bun.sleep(2000).then(() => "still open")]);
  quiet.close();
  if (held.ok) held.release();
  expect(outcome).toBe("closed");
});

test("connections that never close cannot pile up in the holder: a new one closes the oldest, and the holder still answers", async () => {
  const name = unique();
  const held = await acquireLock(name, { pid: 1, command: "watch" }, { waitMs: 0, answerOpenMs: 60_000 });
  expect(held.ok).toBe(true);
  const squatters = [];
  for (let i = 0; i < 3 * MAX_ANSWERING; i++) squatters.push(await squat(name));
  expect(await holderOf(name)).toEqual({ pid: 1, command: "watch" });
  await Bun.sleep(100);
  const open = squatters.filter((s) => !s.isClosed()).length;
  for (const s of squatters) s.close();
  if (held.ok) held.release();
  expect(open).toBeLessThanOrEqual(MAX_ANSWERING);
});
