import { runtimeError } from "../../errors.ts";
import { messageOf } from "../../messages.ts";
import type { DeniedDestination } from "../../status.ts";
import type { DeniedSetFill } from "../../policy/denied-full.ts";
import type { NftExecutor } from "./executor.ts";
import { deniedSetName, NFT_FAMILY, NFT_TABLE } from "./render.ts";
import { byPackets, parseNftStatus } from "./state.ts";

/** What the kernel recorded, and whether the rules only record (audit mode: "would be denied"). */
export interface DeniedRecord {
  readonly denied: readonly DeniedDestination[];
  readonly audit: boolean;
  /** The sets that are full: later destinations go unrecorded until entries expire. */
  readonly full?: readonly DeniedSetFill[];
}

const DENIED_SETS = (["out", "in"] as const).flatMap((direction) => [4, 6].map((family) => deniedSetName(direction, family as 4 | 6)));
const MISSING = /No such file or directory/;

/** Sets found missing, and whether the rules audit, are asked again only every this many reads. */
const RECHECK_EVERY = 10;

/**
 * A reader of the kernel's record of denied destinations alone, set by set (the live denial stream
 * reads it every second; listing the whole table would also print every allowed address). nft
 * 1.0.6 cannot list several sets in one command, so each is one run (in process with libnftables).
 * Each read returns undefined when our table is not loaded. A set the rules lack (`denied_in_*`
 * without --ports) and the audit counter are asked again only every RECHECK_EVERY reads: an idle
 * read is then two runs.
 */
export function deniedReader(executor: NftExecutor): () => Promise<DeniedRecord | undefined> {
  let reads = 0;
  let missing = new Set<string>();
  let audit = false;
  return async () => {
    const recheck = reads++ % RECHECK_EVERY === 0;
    const denied: DeniedDestination[] = [];
    const full: DeniedSetFill[] = [];
    const nowMissing = new Set<string>();
    for (const set of DENIED_SETS) {
      if (!recheck && missing.has(set)) {
        nowMissing.add(set);
        continue;
      }
      const result = await executor.run(`list set ${NFT_FAMILY} ${NFT_TABLE} ${set}`, { json: true });
      if (result.code !== 0) {
        if (MISSING.test(result.stderr)) {
          nowMissing.add(set);
          continue;
        }
        throw runtimeError(`nft list set ${set} failed: ${result.stderr.trim() || "no error output"}`);
      }
      try {
        const status = parseNftStatus(result.stdout);
        denied.push(...(status.denied ?? []));
        full.push(...(status.deniedFull ?? []));
      } catch (error) {
        throw runtimeError(messageOf(error));
      }
    }
    missing = nowMissing;
    if (missing.size === DENIED_SETS.length) {
      reads = 0; // not loaded: ask everything again next time
      return undefined;
    }
    // Audit mode's rules count what they would refuse in this counter (render.ts); enforcing ones have none.
    if (recheck) audit = (await executor.run(`list counter ${NFT_FAMILY} ${NFT_TABLE} output_audited`)).code === 0;
    return { denied: denied.sort(byPackets), audit, full };
  };
}
