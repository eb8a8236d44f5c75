import type { Run } from "../../run.ts";
import type { NftExecutor } from "./executor.ts";
import { LIBNFTABLES, loadLibnftables, probeNetlink } from "./libnftables.ts";
import { processExecutor } from "./process-executor.ts";

/**
 * Test-only: where to load libnftables from instead of `libnftables.so.1`. A path that does not
 * load (`DOMAINWALL_LIBNFTABLES=/nonexistent`) makes domainwall fall back to the `nft` binary.
 */
export const LIBNFTABLES_ENV = "DOMAINWALL_LIBNFTABLES";

export interface ChosenExecutor {
  readonly executor: NftExecutor;
  /** Which executor runs and why, for the log. */
  readonly reason: string;
}

/**
 * libnftables in this process when the library loads and this process can open a netfilter netlink
 * socket (`probe`, undefined when it can: libnftables would exit() the process otherwise), else
 * the `nft` binary through `run`.
 */
export function createNftExecutor({
  run,
  env,
  probe = () => probeNetlink(),
}: {
  readonly run: Run;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly probe?: () => string | undefined;
}): ChosenExecutor {
  const path = env[LIBNFTABLES_ENV] || LIBNFTABLES;
  const loaded = loadLibnftables(path);
  const probed = loaded.ok ? probe() : undefined;
  const refused = loaded.ok ? probed && `${path} loads, but ${probed}` : loaded.reason;
  return loaded.ok && refused === undefined
    ? { executor: loaded.executor, reason: `nft transactions run in process through ${path}` }
    : { executor: processExecutor(run), reason: `nft transactions run the nft binary: ${refused}` };
}
