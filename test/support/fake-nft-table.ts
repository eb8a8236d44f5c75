// A fake kernel's answer to `nft -j -t list table inet domainwall`: the chains (hook, policy, one
// rule object per rule line), sets and counters of the last ruleset loaded, as nft prints them.
import { expectedNftParts } from "../../src/backends/nft/parts.ts";

export function terseListingOf(ruleset: string): string {
  const parts = expectedNftParts(ruleset);
  const table = { family: "inet", table: "domainwall" };
  return JSON.stringify({
    nftables: [
      { table: { family: "inet", name: "domainwall" } },
      ...[...parts.counters].map((name) => ({ counter: { ...table, name, packets: 0, bytes: 0 } })),
      ...[...parts.sets].map((name) => ({ set: { ...table, name } })),
      ...[...parts.chains].flatMap(([name, chain]) => [
        { chain: { ...table, name, hook: chain.hook, policy: chain.policy } },
        ...Array.from({ length: chain.rules }, () => ({ rule: { ...table, chain: name, expr: [] } })),
      ]),
    ],
  });
}

/** Whether a fake run's call is that listing (a read of the table's shape, not a change). */
export const isTerseListing = (call: { command: string; args: readonly string[] }): boolean =>
  call.command === "nft" && call.args.includes("-t") && call.args.includes("list");
