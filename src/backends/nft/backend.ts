import type { Backend, Status } from "../backend.ts";
import { applyError } from "../../errors.ts";
import { NFT_FAMILY, NFT_TABLE, renderNft, renderNftRemove, renderNftSetUpdate } from "./render.ts";
import type { Run } from "../../run.ts";

const failed = (what: string, stderr: string) => applyError(`nft ${what} failed: ${stderr.trim() || "no error output"}`);

interface NftJson {
  readonly nftables?: readonly Record<string, { name?: string; elem?: unknown[]; packets?: number; bytes?: number }>[];
}

/** Reads the `nft -j list table` output of our own table only (never the whole ruleset). */
export function parseNftStatus(json: string): Status {
  const objects = (JSON.parse(json) as NftJson).nftables ?? [];
  return {
    loaded: true,
    sets: objects.flatMap((o) => (o.set ? [{ name: o.set.name ?? "", elements: o.set.elem?.length ?? 0 }] : [])),
    counters: objects.flatMap((o) =>
      o.counter ? [{ name: o.counter.name ?? "", packets: o.counter.packets ?? 0, bytes: o.counter.bytes ?? 0 }] : [],
    ),
  };
}

/** The nftables backend: one table, replaced with one `nft -f -` transaction. */
export function createNftBackend(run: Run): Backend {
  const load = async (what: string, args: string[], text: string) => {
    const result = await run("nft", args, text);
    if (result.code !== 0) throw failed(what, result.stderr);
  };
  /** `nft list table` of our table only; undefined when it does not exist. */
  const list = async (flags: string[]): Promise<string | undefined> => {
    const result = await run("nft", [...flags, "list", "table", NFT_FAMILY, NFT_TABLE]);
    if (result.code === 0) return result.stdout;
    if (/No such file or directory/.test(result.stderr)) return undefined;
    throw failed("list table", result.stderr);
  };
  return {
    name: "nft",
    render: renderNft,
    check: (policy) => load("--check", ["--check", "-f", "-"], renderNft(policy)),
    apply: (policy) => load("-f", ["-f", "-"], renderNft(policy)),
    updateSets: (policy) => load("-f (allow sets)", ["-f", "-"], renderNftSetUpdate(policy)),
    remove: () => load("delete table", ["-f", "-"], renderNftRemove()),
    async status() {
      const listed = await list(["-j"]);
      return listed === undefined ? { loaded: false } : parseNftStatus(listed);
    },
    snapshot: () => list([]),
    restore: (snapshot) => load("-f (restore)", ["-f", "-"], snapshot === undefined ? renderNftRemove() : `${renderNftRemove()}${snapshot}`),
  };
}
