import type { Run } from "../../run.ts";
import type { NftExecutor } from "./executor.ts";

/**
 * The `nft` binary as an executor: the script on stdin (`nft -f -`). With `json`, the script is one
 * command passed as arguments (`nft -j list table inet domainwall`): `nft -j -f -` first reads stdin
 * as JSON and then has nothing left for its own syntax.
 */
export function processExecutor(run: Run): NftExecutor {
  return {
    name: "nft",
    run: (script, options = {}) =>
      options.json
        ? run("nft", ["-j", ...(options.terse ? ["-t"] : []), ...(options.check ? ["--check"] : []), ...script.trim().split(/\s+/)])
        : run("nft", [...(options.check ? ["--check"] : []), "-f", "-"], script),
  };
}
