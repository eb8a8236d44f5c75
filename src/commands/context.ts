import type { Backend } from "../backends/backend.ts";
import type { ParsedConfig } from "../config/config.ts";
import type { OtherBackends } from "../backends/select.ts";
import type { Logger } from "../log.ts";
import type { Runtime } from "../runtime.ts";
import type { World } from "../world.ts";
import { usageError } from "../errors.ts";
import { show } from "../messages.ts";

/** What every command runs with: the world, the runtime, the logger, and the backend (chosen, and probed, on first call). */
export interface Context {
  readonly world: World;
  readonly runtime: Runtime;
  readonly log: Logger;
  readonly backend: () => Promise<Backend>;
  /** Read and validate the command's configuration again, as at the start (`watch` reloading `--config`); throws a usage error. */
  readonly reread?: (configText?: string) => Promise<ParsedConfig>;
  /** The text of `--config` the configuration was parsed from (undefined without one): `configText` to `reread` reads it as that. */
  readonly configText?: string;
  /** The other backends that work here (after choosing `backend`): where a second policy could be loaded. */
  readonly others: () => Promise<OtherBackends>;
}

const DEFAULT_RUN_DIR = "/run/domainwall";
/** Where `apply --confirm-within` and `confirm` meet, and where `watch` leaves its state for `status`. */
const runDir = (env: World["env"]) => env.DOMAINWALL_RUN_DIR ?? DEFAULT_RUN_DIR;
export const pendingFile = (env: World["env"]) => `${runDir(env)}/confirm.pending`;
export const watchStateFile = (env: World["env"], name: string) => `${runDir(env)}/${name}`;

/**
 * Before a command writes to the run directory (and before it touches the kernel): refuse one that
 * someone else could plant or swap files in (World.runDirProblem), naming it; exit 2.
 */
export async function checkRunDir(world: Pick<World, "env" | "runDirProblem">): Promise<void> {
  const dir = runDir(world.env);
  const problem = await world.runDirProblem?.(dir);
  if (problem !== undefined)
    throw usageError(
      `run directory ${show(dir)} (DOMAINWALL_RUN_DIR) ${problem}: refusing to keep state there; nothing was changed (give one only root can write to, or a path inside this one for domainwall to create 0755, e.g. ${show(`${dir}/state`)}: a Kubernetes emptyDir is 0777)`,
    );
}
