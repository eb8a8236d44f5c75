import type { SetTimer } from "../../src/timer.ts";

/**
 * A clock that moves only when a test moves it: `now`, `sleep` and `setTimer` for the code under
 * test, and `advance`/`run` to fire what falls due, earliest first. No real time passes.
 */
export function fakeClock(start = 0) {
  let clock = start;
  let nextId = 0;
  const timers = new Map<number, { readonly at: number; readonly fire: () => void }>();
  const setTimer: SetTimer = (ms, fire) => {
    const id = nextId++;
    timers.set(id, { at: clock + Math.max(0, ms), fire });
    return () => void timers.delete(id);
  };
  const earliest = () => [...timers.entries()].sort(([a, x], [b, y]) => x.at - y.at || a - b)[0];
  /** Let every callback already queued run; no time passes. */
  const settle = () => new Promise<void>((resume) => setImmediate(resume));
  const fireNext = (limit: number): boolean => {
    const next = earliest();
    if (next === undefined || next[1].at > limit) return false;
    timers.delete(next[0]);
    clock = next[1].at;
    next[1].fire();
    return true;
  };
  return {
    now: () => clock,
    sleep: (ms: number) => new Promise<void>((resolve) => void setTimer(ms, resolve)),
    setTimer,
    /** Timers set and neither fired nor cancelled. */
    pending: () => timers.size,
    /** Move the clock `ms` on, firing each timer that falls due on the way. */
    async advance(ms: number): Promise<void> {
      const target = clock + ms;
      do await settle();
      while (fireNext(target));
      clock = target;
    },
    /** Fire timers, earliest first, until `promise` settles; fails if it waits on nothing this clock runs. */
    async run<T>(promise: Promise<T>): Promise<T> {
      let settled = false;
      const watched = promise.finally(() => void (settled = true));
      watched.catch(() => {});
      for (;;) {
        await settle();
        if (settled) return watched;
        if (!fireNext(Infinity)) throw new Error(`stuck at ${clock} ms: the promise waits on no timer of this clock`);
      }
    },
  };
}
