import { type Backend, type LoadTimes } from "../backend.ts";
import { allowedEntriesOf, notEnforcing, type Status } from "../../status.ts";
import { runtimeError, usageError } from "../../errors.ts";
import { messageOf } from "../../messages.ts";
import type { Family } from "../../net/ip.ts";
import type { Policy } from "../../policy/policy.ts";
import { renderIptables, renderIptablesRestore } from "./render.ts";
import {
  acceptsLoopback,
  allowedEntries,
  allowedNetworks,
  dnsDestinations,
  enforcementProblems,
  jumpsBehind,
  portEntries,
  portNetworks,
  verdictCounters,
  FORWARD_CHAIN,
  INPUT_CHAIN,
  OUTPUT_CHAIN,
  familyProblems,
  missingRules,
  ruleTexts,
  ourPart,
  parseIptablesState,
} from "./save.ts";
import type { Run } from "../../run.ts";

const TOOLS = {
  4: { save: "iptables-legacy-save", restore: "iptables-legacy-restore", label: "IPv4" },
  6: { save: "ip6tables-legacy-save", restore: "ip6tables-legacy-restore", label: "IPv6" },
} as const;
const FAMILIES: readonly Family[] = [4, 6];

/** Both families' restore inputs, as `render` prints them (for a namespace where nothing is loaded yet). */
export function renderIptablesBoth(policy: Policy): string {
  return FAMILIES.map(
    (family) => `# ---- ${TOOLS[family].restore} --noflush (${TOOLS[family].label}) ----\n${renderIptables(policy, family)}`,
  ).join("\n");
}

/**
 * At most this many allowed entries (addresses and CIDRs) per family: each is one rule, matched in
 * order by the first packet of every new connection (the cost: docs/performance.md). Beyond this
 * the nft backend (sets matched by lookup) is the answer.
 */
export const IPTABLES_MAX_ENTRIES = 10_000;

/** Refuse a policy too big for one-rule-per-entry before anything is rendered or loaded. */
function checkSize(policy: Policy): Policy {
  for (const family of FAMILIES) {
    const entries = (family === 4 ? policy.allowV4 : policy.allowV6).length + (policy.allowPorts?.[family === 4 ? "v4" : "v6"].length ?? 0);
    if (entries > IPTABLES_MAX_ENTRIES) {
      throw usageError(
        `the iptables-legacy backend allows at most ${IPTABLES_MAX_ENTRIES} ${TOOLS[family].label} entries (one rule each); this policy has ${entries}: use --backend nft, or fewer or wider CIDRs`,
      );
    }
  }
  return policy;
}

/** Both families' filter tables, as `*-save -c` printed them. */
type Saved = Record<Family, string>;

/**
 * The iptables-legacy backend: the same policy through two restore calls (IPv4, then IPv6), each one
 * atomic commit that rewrites only domainwall's chains. When the IPv6 commit fails, IPv4's chains
 * are put back to what they were, so a failure leaves both families as they were. Rollbacks (this
 * one and `restore`) also write only our chains and jumps: whatever other tools changed in the
 * table meanwhile stays.
 *
 * `filterEmpty`: true when the kernel says both families' filter tables are absent or empty
 * (kernel.ts); snapshot, status and remove then know nothing of ours is loaded without a tool.
 */
export function createIptablesBackend(
  run: Run,
  now: () => number = () => performance.now(),
  filterEmpty: () => Promise<boolean> = async () => false,
): Backend {
  const save = async (family: Family): Promise<string> => {
    const result = await run(TOOLS[family].save, ["-c", "-t", "filter"]);
    if (result.code !== 0) throw runtimeError(`${TOOLS[family].save} failed: ${result.stderr.trim()}`);
    return result.stdout;
  };
  const restore = async (family: Family, input: string, args: string[] = ["--noflush"]) => {
    const result = await run(TOOLS[family].restore, args, input);
    if (result.code !== 0)
      throw runtimeError(`${TOOLS[family].restore} ${args.join(" ")} failed: ${result.stderr.trim() || "no error output"}`);
  };
  const saveBoth = async (): Promise<Saved> => ({ 4: await save(4), 6: await save(6) });
  /**
   * Put one family's part (our chains, rules with counters, jumps) back over what is loaded now:
   * one `--noflush --counters` commit that leaves everyone else's rules as they are now.
   */
  const restorePart = async (family: Family, part: string) => {
    const current = parseIptablesState(await save(family));
    const nothing =
      !current.outputChain &&
      !current.inputChain &&
      !current.forwardChain &&
      current.outputJumps + current.inputJumps + (current.forwardJumps ?? 0) === 0;
    if (part === "" && nothing) return;
    await restore(family, renderIptablesRestore(part, current), part === "" ? ["--noflush"] : ["--noflush", "--counters"]);
  };

  const apply = async (policy: Policy): Promise<LoadTimes> => {
    checkSize(policy);
    let renderMs = 0;
    const render = (family: Family, saved: string) => {
      const started = now();
      const text = renderIptables(policy, family, parseIptablesState(saved));
      renderMs += now() - started;
      return text;
    };
    const started = now();
    const before = await saveBoth();
    await restore(4, render(4, before[4]));
    try {
      await restore(6, render(6, before[6]));
      return { renderMs, loadMs: now() - started - renderMs };
    } catch (error) {
      await restorePart(4, ourPart(before[4])).catch((rollback: unknown) => {
        throw runtimeError(`${messageOf(error)}; and rolling IPv4 back failed too: ${messageOf(rollback)}`);
      });
      throw runtimeError(`${messageOf(error)}; IPv4 was rolled back to what it was`);
    }
  };

  /** Removing is restoring an empty part: our jumps and chains go, one commit per family that has any. */
  const remove = async () => {
    if (await filterEmpty()) return;
    for (const family of FAMILIES) await restorePart(family, "");
  };

  return {
    name: "iptables-legacy",
    render: (policy) => renderIptablesBoth(checkSize(policy)),
    async check(policy) {
      checkSize(policy);
      for (const family of FAMILIES) await restore(family, renderIptables(policy, family), ["--noflush", "--test"]);
    },
    apply,
    // One rule per address: the chain rewrite is already the smallest atomic update.
    updateSets: async (policy) => {
      await apply(policy);
      return undefined;
    },
    remove,
    async status(): Promise<Status> {
      if (await filterEmpty()) return { loaded: false };
      const saved = await saveBoth();
      if (!FAMILIES.some((family) => parseIptablesState(saved[family]).outputChain)) return { loaded: false };
      const verdicts = FAMILIES.flatMap((family) => [
        { name: `output_v${family}`, ...verdictCounters(saved[family], OUTPUT_CHAIN) },
        ...(parseIptablesState(saved[family]).inputChain
          ? [{ name: `input_v${family}`, ...verdictCounters(saved[family], INPUT_CHAIN) }]
          : []),
        ...(parseIptablesState(saved[family]).forwardChain
          ? [{ name: `forward_v${family}`, ...verdictCounters(saved[family], FORWARD_CHAIN) }]
          : []),
      ]);
      const audit = verdicts.some((c) => c.audit);
      const dns = FAMILIES.map((family) => dnsDestinations(saved[family]));
      return {
        loaded: true,
        enforcing: !audit,
        sets: [
          ...FAMILIES.map((family) => ({ name: `allow_v${family} (rules)`, elements: allowedEntries(saved[family]) })),
          ...FAMILIES.flatMap((family) => {
            const elements = portEntries(saved[family]);
            return elements > 0 ? [{ name: `allow_ports_v${family} (rules)`, elements }] : [];
          }),
        ],
        // output_dropped_v4 (or output_audited_v4 in audit mode): the names nft's counters have, per family.
        counters: verdicts.map(({ name, packets, bytes }) => ({
          name: name.replace(/_v/, audit ? "_audited_v" : "_dropped_v"),
          packets,
          bytes,
        })),
        allowed: allowedEntriesOf(
          FAMILIES.flatMap((family) => allowedNetworks(saved[family])),
          FAMILIES.flatMap((family) => portNetworks(saved[family])),
        ),
        dns: dns.some((d) => d === "any") ? "any" : dns.flatMap((d) => (d === "any" ? [] : d)),
        acceptsLoopback: FAMILIES.every((family) => acceptsLoopback(saved[family])),
        // No `denied`: iptables-legacy has no dynamic sets (without ipset) to record destinations in.
        ...notEnforcing([
          ...familyProblems(saved[4], saved[6]),
          ...FAMILIES.flatMap((family) => enforcementProblems(saved[family], TOOLS[family].label)),
        ]),
      };
    },
    async missing(policy) {
      const saved = (await filterEmpty()) ? { 4: "", 6: "" } : await saveBoth();
      // A rule put before one of our jumps decides first (an ACCEPT there lets everything out): apply moves the jump back on top.
      return FAMILIES.flatMap((family) => [
        ...missingRules(renderIptables(checkSize(policy), family), saved[family], TOOLS[family].label),
        ...jumpsBehind(saved[family], TOOLS[family].label),
      ]);
    },
    async rules() {
      if (await filterEmpty()) return undefined;
      const saved = await saveBoth();
      if (!FAMILIES.some((family) => parseIptablesState(saved[family]).outputChain)) return undefined;
      return new Map(
        FAMILIES.flatMap((family) => [...ruleTexts(saved[family])].map(([chain, text]) => [`${TOOLS[family].label} ${chain}`, text])),
      );
    },
    async snapshot() {
      if (await filterEmpty()) return undefined;
      const saved = await saveBoth();
      if (!FAMILIES.some((family) => parseIptablesState(saved[family]).outputChain)) return undefined;
      return { backend: "iptables-legacy", parts: { 4: ourPart(saved[4]), 6: ourPart(saved[6]) } };
    },
    async restore(snapshot) {
      if (snapshot === undefined) return remove();
      if (snapshot.backend !== "iptables-legacy") throw runtimeError(`cannot restore a ${snapshot.backend} snapshot with iptables-legacy`);
      for (const family of FAMILIES) await restorePart(family, snapshot.parts[family]);
    },
  };
}
