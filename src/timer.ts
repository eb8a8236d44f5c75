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
