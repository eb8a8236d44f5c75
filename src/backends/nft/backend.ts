import { lacksPrivilege, privilegeError, runtimeError } from "../../errors.ts";
import { messageOf } from "../../messages.ts";
import type { Backend } from "../backend.ts";
import type { NftExecutor } from "./executor.ts";
import { NFT_FAMILY, NFT_TABLE, renderNft, renderNftRemove, renderNftSetDelta, renderNftSetUpdate } from "./render.ts";
import { parseNftStatus } from "./state.ts";
import { expectedNftParts, heldNftParts, missingNftParts, missingWithoutPolicy, nftRuleTexts, type NftParts } from "./parts.ts";
import type { Policy } from "../../policy/policy.ts";

/** Problems state.ts reports itself (the output chain, the base chains' hooks): not listed twice. */
const REPORTED = /^chain output$|^chain (output|input)'s hook$/;

const failed = (what: string, stderr: string) =>
  lacksPrivilege(stderr)
    ? privilegeError("nft", `nft ${what}: ${stderr.trim()}`)
    : runtimeError(`nft ${what} failed: ${stderr.trim() || "no error output"}`);

/**
 * The parts a policy needs the kernel to hold (parts.ts), rendered without the allow sets' elements:
 * they make no part, and they are all that a watch's set update changes (thousands of lines to render
 * and scan for each update's check otherwise).
 */
export const partsOfPolicy = (policy: Policy): NftParts =>
  expectedNftParts(
    renderNft({ ...policy, allowV4: [], allowV6: [], ...(policy.allowPorts !== undefined && { allowPorts: { v4: [], v6: [] } }) }),
  );

/** The nftables backend: one table, replaced with one nft transaction through `executor`. */
export function createNftBackend(executor: NftExecutor, now: () => number = () => performance.now()): Backend {
  const load = async (what: string, script: string, check = false) => {
    const result = await executor.run(script, { check });
    if (result.code !== 0) throw failed(what, result.stderr);
  };
  const LIST = `list table ${NFT_FAMILY} ${NFT_TABLE}`;
  /** `nft list table` of our table only; undefined when it does not exist. */
  const list = async (json: boolean, terse = false): Promise<string | undefined> => {
    const result = await executor.run(LIST, { json, terse });
    if (result.code === 0) return result.stdout;
    if (/No such file or directory/.test(result.stderr)) return undefined;
    throw failed("list table", result.stderr);
  };
  /** A policy's parts, rendered once per policy (a watch asks again for the same one on every check). */
  const expected = new WeakMap<Policy, NftParts>();
  const partsOf = (policy: Policy): NftParts => {
    let parts = expected.get(policy);
    if (parts === undefined) expected.set(policy, (parts = partsOfPolicy(policy)));
    return parts;
  };
  const held = async (): Promise<NftParts | undefined> => {
    const listed = await list(true, true);
    try {
      return listed === undefined ? undefined : heldNftParts(listed);
    } catch (error) {
      throw runtimeError(messageOf(error));
    }
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
    async updateSets(policy, loaded) {
      if (loaded === undefined) return void (await load("-f (allow sets)", renderNftSetUpdate(policy)));
      const delta = renderNftSetDelta(loaded, policy);
      if (delta === undefined) return undefined;
      const result = await executor.run(delta, {});
      if (result.code === 0) return undefined;
      await load("-f (allow sets)", renderNftSetUpdate(policy));
      return result.stderr.trim().split("\n")[0] || "no error output";
    },
    remove: () => load("delete table", renderNftRemove()),
    async status() {
      const listed = await list(true);
      if (listed === undefined) return { loaded: false };
      try {
        const status = parseNftStatus(listed);
        const missing = missingWithoutPolicy(heldNftParts(listed)).filter((m) => !REPORTED.test(m));
        if (missing.length === 0) return status;
        return {
          ...status,
          problems: [...(status.problems ?? []), `nft: missing from table ${NFT_FAMILY} ${NFT_TABLE}: ${missing.join(", ")}`],
        };
      } catch (error) {
        throw runtimeError(messageOf(error));
      }
    },
    missing: async (policy) => missingNftParts(partsOf(policy), await held()),
    async rules() {
      const listed = await list(true, true);
      try {
        return listed === undefined ? undefined : nftRuleTexts(listed);
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
