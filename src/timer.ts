/**
 * The timer seam: call `fire` once after `ms` (on the injected clock) unless the returned `cancel`
 * is called first. Beside `now` and `sleep` in World, so deadlines run on the clock tests drive.
 */
export type SetTimer = (ms: number, fire: () => void) => () => void;

/** The real timer: `setTimeout`. */
export const realSetTimer: SetTimer = (ms, fire) => {
  const timer = setTimeout(fire, ms);
  return () => clearTimeout(timer);
};

/**
 * Many timers over one of `setTimer`'s at a time, armed for the earliest: a watch cycle starts its
 * lookups together, each with a deadline, and one timer each would be set and cancelled for every
 * lookup. Each still fires at its own time (on the clock `now` reads, the one `setTimer` runs on).
 */
export function coalescedTimer(setTimer: SetTimer, now: () => number): SetTimer {
  /** Pending timers, earliest first (ties in the order they were set). */
  const pending: { readonly at: number; readonly fire: () => void }[] = [];
  let armed: { readonly at: number; readonly cancel: () => void } | undefined;
  /** One underlying timer, due no later than the earliest pending; one due earlier stays (`due` arms again). */
  const arm = (): void => {
    const head = pending[0];
    if (armed !== undefined && head !== undefined && armed.at <= head.at) return;
    armed?.cancel();
    armed = head === undefined ? undefined : { at: head.at, cancel: setTimer(Math.max(0, head.at - now()), due) };
  };
  const due = (): void => {
    armed = undefined;
    const t = now();
    const ready: (() => void)[] = [];
    while (pending[0] !== undefined && pending[0].at <= t) ready.push(pending.shift()!.fire);
    arm();
    for (const fire of ready) fire();
  };
  return (ms, fire) => {
    const entry = { at: now() + Math.max(0, ms), fire };
    // Deadlines set together are mostly equal or increasing: search from the end.
    let i = pending.length;
    while (i > 0 && pending[i - 1]!.at > entry.at) i--;
    pending.splice(i, 0, entry);
    arm();
    return () => {
      const at = pending.indexOf(entry);
      if (at === -1) return;
      pending.splice(at, 1);
      arm();
    };
  };
}
