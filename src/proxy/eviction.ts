/** Which TCP connection makes room for a new one when every slot is taken (RFC 7766, section 6.2.3). */

export interface ConnectionLoad {
  /** Queries taken off the connection and not yet answered. */
  readonly pending: number;
  /** When a whole message last came in or its last answer went out (or it opened), ms. */
  readonly lastActive: number;
}

/**
 * The one idle longest, if idle for `idleFirstMs` (a client holding a slot with nothing to ask);
 * else the one with the most queries pending (a client pipelining; one just opened counts as one),
 * the first of those in `connections`' order (the oldest). Undefined when there is none.
 */
export function evictable<T>(connections: Iterable<T>, load: (c: T) => ConnectionLoad, now: number, idleFirstMs: number): T | undefined {
  let idle: { c: T; lastActive: number } | undefined;
  let busiest: { c: T; weight: number } | undefined;
  for (const c of connections) {
    const { pending, lastActive } = load(c);
    if (pending === 0 && now - lastActive >= idleFirstMs && (idle === undefined || lastActive < idle.lastActive)) idle = { c, lastActive };
    const weight = Math.max(1, pending);
    if (busiest === undefined || weight > busiest.weight) busiest = { c, weight };
  }
  return (idle ?? busiest)?.c;
}
