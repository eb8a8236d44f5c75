import type { Policy } from "../policy/policy.ts";

/** What is loaded now, as `status` shows it. */
export type Status =
  | { readonly loaded: false }
  | {
      readonly loaded: true;
      readonly sets: readonly { readonly name: string; readonly elements: number }[];
      readonly counters: readonly { readonly name: string; readonly packets: number; readonly bytes: number }[];
    };

/**
 * A way to enforce a `Policy` in the kernel. `render` is the exact text `apply` loads, so a dry
 * run shows what would happen; `apply` replaces domainwall's previous rules atomically or fails
 * leaving them as they were.
 */
export interface Backend {
  readonly name: string;
  render(policy: Policy): string;
  /** Have the kernel validate the rendered text without changing anything. */
  check(policy: Policy): Promise<void>;
  apply(policy: Policy): Promise<void>;
  /**
   * `watch`: replace only the allow sets of the loaded rules, atomically, leaving everything else
   * (and established connections) as it is; fails when nothing is loaded. A backend without it
   * gets a full `apply` instead.
   */
  updateSets?(policy: Policy): Promise<void>;
  /** Delete everything domainwall loaded; succeeds when nothing is loaded. */
  remove(): Promise<void>;
  status(): Promise<Status>;
  /** What is loaded now, in a form `restore` takes back; undefined when nothing is loaded. */
  snapshot(): Promise<string | undefined>;
  /** Put a snapshot back exactly, in one transaction (undefined: remove everything). */
  restore(snapshot: string | undefined): Promise<void>;
}
