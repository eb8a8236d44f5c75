/** Which TCP connection makes room for a new one when every slot is taken (RFC 7766, section 6.2.3). */

export interface ConnectionLoad {
  /** Queries taken off the connection and not yet answered. */
  readonly pending: number;
  /** When a whole message last came in or its last answer went out (or it opened), ms. */
  readonly lastActive: number;
}

/**
 * A connection's claim to be closed when it is not idle: a pipelining client (2 or more pending)
 * by how many it has pending; then one with nothing pending (it loses no query); last one with a
 * single query pending (another app's long-lived query must not be reset for a newcomer).
 */
const weightOf = (pending: number): number => (pending >= 2 ? pending : pending === 0 ? 1.5 : 1);

/**
 * The one idle longest, if idle for `idleFirstMs` (a client holding a slot with nothing to ask);
 * else the one with the highest weight (above), the last of those in `connections`' order (the
 * newest: a client opening connections fast loses its own). Undefined when there is none.
 */
export function evictable<T>(connections: Iterable<T>, load: (c: T) => ConnectionLoad, now: number, idleFirstMs: number): T | undefined {
  let idle: { c: T; lastActive: number } | undefined;
  let busiest: { c: T; weight: number } | undefined;
  for (const c of connections) {
    const { pending, lastActive } = load(c);
    if (pending === 0 && now - lastActive >= idleFirstMs && (idle === undefined || lastActive < idle.lastActive)) idle = { c, lastActive };
    const weight = weightOf(pending);
    if (busiest === undefined || weight >= busiest.weight) busiest = { c, weight };
  }
  return (idle ?? busiest)?.c;
}
