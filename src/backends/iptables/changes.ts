import type { Family } from "../../net/ip.ts";
import type { SetTimer } from "../../timer.ts";
import type { FilterInfo } from "./kernel.ts";

/** How often the filter tables' entry counts are asked for (each ask: one socket and getsockopt per family). */
export const LEGACY_POLL_MS = 1000;

/**
 * iptables-legacy announces no changes. Instead the kernel is asked every LEGACY_POLL_MS how many
 * entries each family's filter table holds (IPT_SO_GET_INFO: microseconds, no process), and the
 * listener is told when either count moves: a deleted jump, a flushed chain, a table flushed.
 * Throws when the kernel cannot be asked (no CAP_NET_RAW): the caller then checks with the tools.
 */
export function legacyTableChanges(
  filterInfo: (family: Family) => FilterInfo | undefined,
  setTimer: SetTimer,
  listener: (events: readonly string[]) => void,
): { close(): void } {
  const counts = () => [filterInfo(4)?.entries, filterInfo(6)?.entries].join("/");
  let last = counts();
  if (last === "/") throw new Error("the kernel cannot be asked about the iptables-legacy filter tables (IPT_SO_GET_INFO)");
  let cancel: () => void = () => {};
  let closed = false;
  const tick = (): void => {
    cancel = setTimer(LEGACY_POLL_MS, () => {
      if (closed) return;
      const now = counts();
      if (now !== last) listener([`filter table entries ${last} -> ${now} (IPv4/IPv6)`]);
      last = now;
      tick();
    });
  };
  tick();
  return {
    close() {
      closed = true;
      cancel();
    },
  };
}
