import type { Run } from "../../run.ts";
import type { NftExecutor } from "./executor.ts";
import { LIBNFTABLES, loadLibnftables, probeNetlink } from "./libnftables.ts";
import { processExecutor } from "./process-executor.ts";

/**
 * Test-only: where to load libnftables from instead of `libnftables.so.1`. A path that does not
 * load (`DOMAINWALL_LIBNFTABLES=/nonexistent`) makes domainwall fall back to the `nft` binary.
 */
export const LIBNFTABLES_ENV = "DOMAINWALL_LIBNFTABLES";

/**
 * Scripts of this many characters or more go to the nft binary when it runs (a 100,000-element
 * allow set is about 5 MB): nft's work costs more CPU in a threaded process, and the binary's memory
 * is gone when it exits (docs/performance.md). Below this, starting a process costs more than the transaction.
 */
export const BINARY_FROM_CHARS = 1 << 20;

/**
 * `library` for scripts shorter than `fromChars`, `binary` for longer ones; when the binary cannot
 * be run (not installed), the library runs it instead, and every later script too. One transaction
 * either way: both take the whole script as one.
 */
export function routeBySize(library: NftExecutor, binary: NftExecutor, fromChars: number = BINARY_FROM_CHARS): NftExecutor {
  let binaryRuns = true;
  return {
    name: library.name,
    async run(script, options) {
      if (script.length < fromChars || !binaryRuns) return library.run(script, options);
      try {
        return await binary.run(script, options);
      } catch {
        // It threw before nft ran (Bun.spawn: no such executable): nothing was loaded.
        binaryRuns = false;
        return library.run(script, options);
      }
    },
  };
}

export interface ChosenExecutor {
  readonly executor: NftExecutor;
  /** Which executor runs and why, for the log. */
  readonly reason: string;
}

/**
 * libnftables in this process when the library loads and this process can open a netfilter netlink
 * socket (`probe`, undefined when it can: libnftables would exit() the process otherwise), with
 * scripts of BINARY_FROM_CHARS or more through the `nft` binary (see routeBySize); else the `nft`
 * binary through `run`.
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
    ? {
        executor: routeBySize(loaded.executor, processExecutor(run)),
        reason: `nft transactions run in process through ${path} (scripts of ${BINARY_FROM_CHARS / 2 ** 20} MiB or more through the nft binary when it runs)`,
      }
    : { executor: processExecutor(run), reason: `nft transactions run the nft binary: ${refused}` };
}
