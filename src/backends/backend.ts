import type { Family } from "../net/ip.ts";
import type { Policy } from "../policy/policy.ts";
import type { Status } from "../status.ts";

/** How long a load took: turning the policy into text, and the kernel (nft, *-restore, *-save) taking it. */
export interface LoadTimes {
  readonly renderMs: number;
  readonly loadMs: number;
}

/**
 * What a backend had loaded, to be put back by the same backend's `restore`; callers only hand it
 * back. nft: our table as `nft list table` prints it; iptables-legacy: each family's part of the
 * filter table (our chains, rules with counters, jumps).
 */
export type Snapshot =
  | { readonly backend: "nft"; readonly table: string }
  | { readonly backend: "iptables-legacy"; readonly parts: Readonly<Record<Family, string>> };

/**
 * A way to enforce a `Policy` in the kernel. `apply` replaces domainwall's previous rules
 * atomically or fails leaving them as they were.
 */
export interface Backend {
  readonly name: Snapshot["backend"];
  /**
   * The text `render` prints. nft: exactly what `apply` loads. iptables-legacy: both families'
   * restore input for a namespace where nothing of ours is loaded yet (`apply` renders against
   * what it finds loaded, so its jumps may differ).
   */
  render(policy: Policy): string;
  /** Have the kernel validate the rendered text without changing anything. */
  check(policy: Policy): Promise<void>;
  /**
   * `carryOver`: the DNS proxy's admitted elements, put into the new table's timeout sets in the
   * same transaction (nft only; a policy with a proxy never reaches iptables-legacy).
   */
  apply(policy: Policy, carryOver?: ProxyCarryOver): Promise<LoadTimes>;
  /**
   * `watch`: replace only the allow sets of the loaded rules, atomically, leaving everything else
   * (and established connections) as it is; fails when nothing is loaded. `loaded`: the policy
   * whose sets the kernel holds now, when known, so that only what changed is sent. Resolves to why
   * the kernel refused the change alone, when it did and the sets were flushed and refilled instead.
   */
  updateSets(policy: Policy, loaded?: Policy): Promise<string | undefined>;
  /** Delete everything domainwall loaded; succeeds when nothing is loaded. */
  remove(): Promise<void>;
  status(): Promise<Status>;
  /**
   * What of `policy`'s rules the kernel does not hold now (read when asked, never cached): one
   * phrase per part (`table inet domainwall`, `chain dns_redirect`); empty when all is loaded.
   */
  missing(policy: Policy): Promise<readonly string[]>;
  /**
   * Each chain of ours with its rules' text as the kernel holds them now (no counters, no handles);
   * undefined when nothing is loaded. A watch compares it with the reading right after its own load.
   */
  rules(): Promise<ReadonlyMap<string, string> | undefined>;
  /** What is loaded now, in a form `restore` takes back; undefined when nothing is loaded. */
  snapshot(): Promise<Snapshot | undefined>;
  /** Put a snapshot back exactly, in one transaction (undefined: remove everything). */
  restore(snapshot: Snapshot | undefined): Promise<void>;
}

/** What the DNS proxy admitted, to carry over a table replace (nft: `elements = { ... }` lines, see backends/nft/render.ts). */
export interface ProxyCarryOver {
  /** proxy_v4 and proxy_v6. */
  readonly v4: string;
  readonly v6: string;
  /** The port sets' (`ProxyPortSet`), by set name; a set missing here starts empty. */
  readonly ports?: ReadonlyMap<string, string>;
}
