/**
 * A rate limit per key (a refused name): the first time, and then at most once per `intervalMs`;
 * returns how many were held back for that key since its last pass, or undefined to hold this one.
 * At most `maxKeys` are remembered: past that (a flood of random names) a key is not limited by
 * name, only by the caller's overall limit.
 */
export function keyedLimiter(intervalMs: number, maxKeys: number, now: () => number): (key: string) => number | undefined {
  const seen = new Map<string, { at: number; held: number }>();
  return (key) => {
    const t = now();
    const entry = seen.get(key);
    if (entry !== undefined && t - entry.at < intervalMs) return (entry.held++, undefined);
    if (entry === undefined && seen.size >= maxKeys) {
      for (const [k, e] of seen) if (t - e.at >= intervalMs) seen.delete(k);
      if (seen.size >= maxKeys) return 0;
    }
    seen.set(key, { at: t, held: 0 });
    return entry?.held ?? 0;
  };
}
