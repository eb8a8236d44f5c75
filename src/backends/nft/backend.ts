import { lacksPrivilege, privilegeError, runtimeError } from "../../errors.ts";
import { messageOf } from "../../messages.ts";
import type { Backend } from "../backend.ts";
import type { NftExecutor } from "./executor.ts";
import { NFT_FAMILY, NFT_TABLE, renderNft, renderNftRemove, renderNftSetUpdate } from "./render.ts";
import { parseNftStatus } from "./state.ts";

const failed = (what: string, stderr: string) =>
  lacksPrivilege(stderr)
    ? privilegeError("nft", `nft ${what}: ${stderr.trim()}`)
    : runtimeError(`nft ${what} failed: ${stderr.trim() || "no error output"}`);

/** The nftables backend: one table, replaced with one nft transaction through `executor`. */
export function createNftBackend(executor: NftExecutor, now: () => number = () => performance.now()): Backend {
  const load = async (what: string, script: string, check = false) => {
    const result = await executor.run(script, { check });
    if (result.code !== 0) throw failed(what, result.stderr);
  };
  const LIST = `list table ${NFT_FAMILY} ${NFT_TABLE}`;
  /** `nft list table` of our table only; undefined when it does not exist. */
  const list = async (json: boolean): Promise<string | undefined> => {
    const result = await executor.run(LIST, { json });
    if (result.code === 0) return result.stdout;
    if (/No such file or directory/.test(result.stderr)) return undefined;
    throw failed("list table", result.stderr);
  };
  return {
    name: "nft",
    render: renderNft,
    check: (policy) => load("--check", renderNft(policy), true),
    async apply(policy, carryOver) {
      const started = now();
      const text = renderNft(policy, carryOver);
      const rendered = now();
      await load("-f", text);
      return { renderMs: rendered - started, loadMs: now() - rendered };
    },
    updateSets: (policy) => load("-f (allow sets)", renderNftSetUpdate(policy)),
    remove: () => load("delete table", renderNftRemove()),
    async status() {
      const listed = await list(true);
      if (listed === undefined) return { loaded: false };
      try {
        return parseNftStatus(listed);
      } catch (error) {
        throw runtimeError(messageOf(error));
      }
    },
    async snapshot() {
      const table = await list(false);
      return table === undefined ? undefined : { backend: "nft", table };
    },
    async restore(snapshot) {
      if (snapshot !== undefined && snapshot.backend !== "nft")
        throw runtimeError(`cannot restore a ${snapshot.backend} snapshot with nft`);
      await load("-f (restore)", snapshot === undefined ? renderNftRemove() : `${renderNftRemove()}${snapshot.table}`);
    },
  };
}
