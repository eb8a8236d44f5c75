/**
 * When a `denied_*` set is full: the kernel records no new destination until an entry expires
 * (`update` finds no room; the packet is still dropped and counted). An app can fill it on
 * purpose to blind the record, so every reader of the record says so plainly.
 */
import { DENIED_RECORD } from "./rules.ts";

/** A denied set's fill as the kernel reports it: its elements, its size and its timeout. */
export interface DeniedSetFill {
  readonly name: string;
  readonly elements: number;
  readonly size: number;
  readonly timeoutSeconds?: number;
}

/**
 * Within this many elements of its size a set counts as full: entries expire and are made again
 * between a packet and a read, so a set under attack hovers just below its size.
 */
export const FULL_MARGIN = 8;

export const isDeniedSetFull = (set: DeniedSetFill): boolean => set.elements >= set.size - FULL_MARGIN;

const DENIED_SET = /^denied_(out|in)_v[46]$/;
const hours = (seconds: number) => (seconds % 3600 === 0 ? `${seconds / 3600}h` : `${seconds}s`);

/**
 * The line `status`, `status --follow` and the watch's stream print for full sets (non-empty): the
 * size, how long until room comes back, and the counter that still counts what is not recorded.
 */
export function deniedFullMessage(full: readonly DeniedSetFill[], options: { audit: boolean; timeoutSeconds?: number }): string {
  const size = Math.max(...full.map((s) => s.size));
  const timeout =
    options.timeoutSeconds ?? full.find((s) => s.timeoutSeconds !== undefined)?.timeoutSeconds ?? DENIED_RECORD.timeoutSeconds;
  const hooks = [...new Set(full.map((s) => (DENIED_SET.exec(s.name)?.[1] === "in" ? "input" : "output")))];
  const counters = hooks.map((hook) => `${hook}_${options.audit ? "audited" : "dropped"}`).join(", ");
  const what = options.audit
    ? "later destinations that would be denied are not recorded"
    : "later destinations are dropped but not recorded";
  return `the record of denied destinations is full (${size}): ${what} until entries expire (${hours(timeout)} after their last packet); see ${counters} (full: ${full.map((s) => s.name).join(", ")})`;
}
