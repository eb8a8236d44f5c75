import type { Backend } from "./backend.ts";
import type { BackendChoice } from "../config/options.ts";
import { lacksPrivilege, privilegeError, runtimeError } from "../errors.ts";
import { messageOf } from "../messages.ts";
import { createIptablesBackend } from "./iptables/backend.ts";
import { createNftBackend } from "./nft/backend.ts";
import type { NftExecutor } from "./nft/executor.ts";
import { processExecutor } from "./nft/process-executor.ts";
import type { Run } from "../run.ts";

/** A transaction the kernel checks and never commits: does nf_tables work in this namespace? */
const NFT_PROBE = "table inet domainwall_probe\n";
/**
 * The same question, read-only: nfnetlink answers any nf_tables message only with CAP_NET_ADMIN
 * in this namespace, and only when nf_tables is there. Asked first because it is cheap: the kernel
 * ends a checked transaction by aborting it, and an abort waits for an RCU grace period (10–20 ms
 * measured here, blocking this process when libnftables runs in it), a read does not (0.2 ms).
 */
const NFT_READ_PROBE = "list tables\n";

type Probe = { ok: true } | { ok: false; why: string };

async function probe(run: Run, command: string, args: string[], stdin?: string): Promise<Probe> {
  try {
    const result = await run(command, args, stdin);
    return result.code === 0
      ? { ok: true }
      : { ok: false, why: `${command} ${args.join(" ")}: ${result.stderr.trim() || `exit ${result.code}`}` };
  } catch (error) {
    return { ok: false, why: messageOf(error) };
  }
}

/**
 * The probe through the executor nft transactions will use (libnftables in process, or the nft
 * binary): the read first; when it fails, the checked transaction decides and its refusal is the
 * one named.
 */
async function probeNft(executor: NftExecutor): Promise<Probe> {
  try {
    if ((await executor.run(NFT_READ_PROBE)).code === 0) return { ok: true };
  } catch {
    // the checked transaction below says why
  }
  try {
    const result = await executor.run(NFT_PROBE, { check: true });
    return result.code === 0
      ? { ok: true }
      : {
          ok: false,
          why: `${executor.name === "nft" ? "nft --check -f -" : "libnftables --check"}: ${result.stderr.trim() || `exit ${result.code}`}`,
        };
  } catch (error) {
    return { ok: false, why: messageOf(error) };
  }
}
async function probeIptables(run: Run): Promise<Probe> {
  const v4 = await probe(run, "iptables-legacy-save", ["-t", "filter"]);
  return v4.ok ? probe(run, "ip6tables-legacy-save", ["-t", "filter"]) : v4;
}

/**
 * Pick the backend. `auto`: nft when its executor (`tools.nft`: libnftables in process, or the nft
 * binary) runs and the kernel accepts a probe transaction here,
 * else iptables-legacy when its tools work, else an error naming what was tried. An explicit
 * choice that does not work is an error, never a silent switch. Without `probe` (render, which
 * needs neither root nor the tools) `auto` means nft.
 */
export async function selectBackend(
  choice: BackendChoice,
  tools: { readonly run: Run; readonly nft: () => NftExecutor; readonly filterEmpty?: () => Promise<boolean> },
  options: { probe: boolean; now?: () => number },
): Promise<{ backend: Backend; reason: string }> {
  const { run } = tools;
  // The nft executor is made (libnftables loaded) only when nft is probed or chosen.
  const nft = (reason: string) => ({ backend: createNftBackend(tools.nft(), options.now), reason });
  const iptables = (reason: string) => ({ backend: createIptablesBackend(run, options.now, tools.filterEmpty), reason });
  if (!options.probe)
    return choice === "iptables-legacy"
      ? iptables("requested")
      : nft(choice === "nft" ? "requested" : "render shows nft unless --backend says otherwise");
  if (choice === "nft") {
    const result = await probeNft(tools.nft());
    if (!result.ok && lacksPrivilege(result.why)) throw privilegeError("nft", result.why);
    if (!result.ok) throw runtimeError(`--backend nft does not work here: ${result.why}`);
    return nft("requested");
  }
  if (choice === "iptables-legacy") {
    const result = await probeIptables(run);
    if (!result.ok && lacksPrivilege(result.why)) throw privilegeError("iptables-legacy", result.why);
    if (!result.ok) throw runtimeError(`--backend iptables-legacy does not work here: ${result.why}`);
    return iptables("requested");
  }
  const nftProbe = await probeNft(tools.nft());
  if (nftProbe.ok) return nft("auto: nft works in this network namespace");
  const iptablesProbe = await probeIptables(run);
  if (iptablesProbe.ok) return iptables(`auto: nft is not usable (${nftProbe.why}); iptables-legacy works`);
  const tried = `tried nft (${nftProbe.why}) and iptables-legacy (${iptablesProbe.why})`;
  if (lacksPrivilege(nftProbe.why)) throw privilegeError("nft", tried);
  throw runtimeError(`no backend works here: ${tried}`);
}

/** The backends besides the chosen one that work here, and what could not be checked. */
export interface OtherBackends {
  readonly backends: readonly Backend[];
  /** Why a backend that might hold domainwall's rules cannot be seen here; undefined when all were checked. */
  readonly unseen?: string;
}

/**
 * Every backend besides `chosen` whose tools work in this namespace: `remove` and `status` handle
 * domainwall's rules in each, and `apply` removes the others' after loading its own, so two
 * policies are never left loaded. nft is asked through the `nft` binary first (beside iptables-legacy
 * this process need not load libnftables), then through this process's one executor (`nft`:
 * libnftables in process when it loads), so a table is still seen without the binary.
 *
 * Beside nft, when the kernel says iptables-legacy's filter tables are empty or absent
 * (`filterEmpty`, src/backends/iptables/kernel.ts), nothing of ours is there and its tools are not
 * run; it is listed all the same, and its snapshot, status and remove ask the kernel again (under
 * the caller's lock), so rules loaded meanwhile are still found.
 */
export async function otherBackends(
  chosen: Backend["name"],
  run: Run,
  options: { nft: () => NftExecutor; now?: () => number; filterEmpty?: () => Promise<boolean> },
): Promise<OtherBackends> {
  if (chosen === "nft") {
    const iptables = () => createIptablesBackend(run, options.now, options.filterEmpty);
    if (options.filterEmpty !== undefined && (await options.filterEmpty())) return { backends: [iptables()] };
    return (await probeIptables(run)).ok ? { backends: [iptables()] } : { backends: [] };
  }
  const binary = processExecutor(run);
  const binaryProbe = await probeNft(binary);
  if (binaryProbe.ok) return { backends: [createNftBackend(binary, options.now)] };
  const executor = options.nft();
  if (executor.name === binary.name) return { backends: [], unseen: `nft (${binaryProbe.why})` };
  const probe = await probeNft(executor);
  if (probe.ok) return { backends: [createNftBackend(executor, options.now)] };
  return { backends: [], unseen: `nft (${binaryProbe.why}; ${probe.why})` };
}
