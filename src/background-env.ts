/**
 * The environment `watch` without the DNS proxy starts itself again with (Runtime.backgroundLoop in runtime.ts): both
 * settings take effect only at start-up, and both suit a loop that wakes about once a second
 * (docs/watch.md, "The background loop").
 */

/** JavaScriptCore's optimising compiler off; its presence also marks the program as started again. */
export const NO_DFG = "BUN_JSC_useDFGJIT";
/**
 * mimalloc's scavenger thread wakes every 100 ms by default to hand freed holes in its pages back;
 * at this loop's allocation rate it frees as much when it wakes every few seconds.
 */
const PURGE_HOLES_INTERVAL = "MIMALLOC_PURGE_HOLES_MIN_INTERVAL";
const PURGE_HOLES_INTERVAL_MS = "5000";

/** `env` plus the background loop's settings; an operator's own mimalloc setting wins. */
export function backgroundExecEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string | undefined> {
  return { ...env, [NO_DFG]: "0", [PURGE_HOLES_INTERVAL]: env[PURGE_HOLES_INTERVAL] ?? PURGE_HOLES_INTERVAL_MS };
}
