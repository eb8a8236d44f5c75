/**
 * The group id that marks domainwall's own DNS traffic. The ruleset redirects the pod's port-53
 * traffic to the proxy except for sockets whose owner group is G (`meta skgid != G`): domainwall
 * switches its whole process to G before it opens any socket, so its upstream queries (and its own
 * lookups) go out, while the apps' — even root's — are redirected, unless an app can itself switch
 * to G (root with CAP_SETGID: the examples drop it).
 */
import { readdirSync, readFileSync } from "node:fs";

/** The operating system, as the switch needs it (a fake in tests). */
export interface GroupSystem {
  setgid(gid: number): void;
  /** The `Gid:` line (real, effective, saved, filesystem) of every thread of this process. */
  threadGids(): readonly (readonly number[])[];
}

export const realGroupSystem: GroupSystem = {
  setgid: (gid) => process.setgid?.(gid),
  threadGids: () =>
    readdirSync("/proc/self/task").map((task) => {
      const line = /^Gid:\s+(.*)$/m.exec(readFileSync(`/proc/self/task/${task}/status`, "utf8"))?.[1] ?? "";
      return line.trim().split(/\s+/).map(Number);
    }),
};

export type GroupSwitch = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/**
 * Switch the process (every thread: glibc's setgid applies to all) to group `gid` for real,
 * effective, saved and filesystem ids — the filesystem id is the owner group nft's `meta skgid`
 * sees on new sockets — and check that every thread did.
 */
export function switchGroup(gid: number, system: GroupSystem = realGroupSystem): GroupSwitch {
  try {
    system.setgid(gid);
  } catch (error) {
    return {
      ok: false,
      reason: `cannot switch to group ${gid} (root or CAP_SETGID is needed): ${error instanceof Error ? error.message : String(error)}`,
    };
  }
  const threads = system.threadGids();
  const wrong = threads.find((ids) => ids.length !== 4 || ids.some((id) => id !== gid));
  if (threads.length === 0 || wrong !== undefined) {
    return { ok: false, reason: `switched to group ${gid}, but a thread still has group ids ${wrong?.join(" ") ?? "unknown"}` };
  }
  return { ok: true };
}
