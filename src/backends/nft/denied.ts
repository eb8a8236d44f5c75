import { runtimeError } from "../../errors.ts";
import { messageOf } from "../../messages.ts";
import type { DeniedDestination } from "../backend.ts";
import type { NftExecutor } from "./executor.ts";
import { deniedSetName, NFT_FAMILY, NFT_TABLE } from "./render.ts";
import { byPackets, parseNftStatus } from "./state.ts";

/** What the kernel recorded, and whether the rules only record (audit mode: "would be denied"). */
export interface DeniedRecord {
  readonly denied: readonly DeniedDestination[];
  readonly audit: boolean;
}

const DENIED_SETS = (["out", "in"] as const).flatMap((direction) => [4, 6].map((family) => deniedSetName(direction, family as 4 | 6)));
const MISSING = /No such file or directory/;

/**
 * The kernel's record of denied destinations alone, read set by set (the live denial stream reads
 * it every second; listing the whole table would also print every allowed address). nft 1.0.6
 * cannot list several sets in one command, so each is one run: cheap in process (libnftables).
 * Undefined when our table is not loaded; a set the rules lack (`denied_in_*` without --ports) is
 * passed over.
 */
export async function listDenied(executor: NftExecutor): Promise<DeniedRecord | undefined> {
  const denied: DeniedDestination[] = [];
  let found = false;
  for (const set of DENIED_SETS) {
    const result = await executor.run(`list set ${NFT_FAMILY} ${NFT_TABLE} ${set}`, { json: true });
    if (result.code !== 0) {
      if (MISSING.test(result.stderr)) continue;
      throw runtimeError(`nft list set ${set} failed: ${result.stderr.trim() || "no error output"}`);
    }
    found = true;
    try {
      denied.push(...(parseNftStatus(result.stdout).denied ?? []));
    } catch (error) {
      throw runtimeError(messageOf(error));
    }
  }
  if (!found) return undefined;
  // Audit mode's rules count what they would refuse in this counter (render.ts); enforcing ones have none.
  const audited = await executor.run(`list counter ${NFT_FAMILY} ${NFT_TABLE} output_audited`);
  return { denied: denied.sort(byPackets), audit: audited.code === 0 };
}
