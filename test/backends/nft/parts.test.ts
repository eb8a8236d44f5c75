import { describe, expect, test } from "bun:test";
import { expectedNftParts, heldNftParts, missingNftParts, missingWithoutPolicy } from "../../../src/backends/nft/parts.ts";
import { terseListingOf } from "../../support/fake-nft-table.ts";

const golden = (name: string) => Bun.file(`${import.meta.dir}/../../golden/${name}`).text();

describe("the parts of our table", () => {
  test("a rendered ruleset declares each chain with its hook, policy and rule count, its sets and counters", async () => {
    const parts = expectedNftParts(await golden("dns-proxy.nft"));
    expect(parts.chains.get("dns_redirect")).toEqual({ hook: "output", policy: "accept", rules: 4 });
    expect(parts.chains.get("dns_guard_in")).toEqual({ hook: "input", policy: "accept", rules: 4 });
    expect(parts.chains.get("output")?.policy).toBe("drop");
    expect([...parts.chains.keys()]).toEqual(["dns_zone_out", "dns_guard_in", "dns_redirect", "output", "input"]);
    expect(parts.sets.has("proxy_v4")).toBe(true);
    expect(parts.sets.has("allow_addr_v4")).toBe(true);
    expect([...parts.counters]).toEqual(["output_dropped", "input_dropped"]);
  });

  const expected = async () => expectedNftParts(await golden("dns-proxy.nft"));
  const held = async (edit: (listing: { nftables: Record<string, { name?: string; chain?: string; policy?: string }>[] }) => void) => {
    const listing = JSON.parse(terseListingOf(await golden("dns-proxy.nft")));
    edit(listing);
    return heldNftParts(JSON.stringify(listing));
  };
  test.each([
    { name: "all there", edit: () => {}, missing: [] },
    {
      name: "a chain deleted",
      edit: (l: { nftables: Record<string, { name?: string; chain?: string }>[] }) =>
        (l.nftables = l.nftables.filter((o) => o.chain?.name !== "dns_redirect" && o.rule?.chain !== "dns_redirect")),
      missing: ["chain dns_redirect"],
    },
    {
      name: "a chain flushed",
      edit: (l: { nftables: Record<string, { chain?: string }>[] }) => (l.nftables = l.nftables.filter((o) => o.rule?.chain !== "output")),
      missing: [expect.stringMatching(/^rules of chain output \(0 held of \d+\)$/)],
    },
    {
      name: "a rule added",
      edit: (l: { nftables: Record<string, unknown>[] }) => l.nftables.push({ rule: { chain: "dns_guard_in", expr: [] } }),
      missing: ["rules of chain dns_guard_in (5 held of 4)"],
    },
    {
      name: "the output chain's policy turned to accept",
      edit: (l: { nftables: Record<string, { name?: string; policy?: string }>[] }) => {
        for (const o of l.nftables) if (o.chain?.name === "output") o.chain.policy = "accept";
      },
      missing: ["chain output's hook output with policy drop (held: output, accept)"],
    },
    {
      name: "a set and the counter deleted",
      edit: (l: { nftables: Record<string, { name?: string }>[] }) =>
        (l.nftables = l.nftables.filter((o) => o.set?.name !== "proxy_v6" && o.counter === undefined)),
      missing: ["set proxy_v6", "counter output_dropped", "counter input_dropped"],
    },
  ])("missing against the loaded policy: $name", async ({ edit, missing }) => {
    expect(missingNftParts(await expected(), await held(edit))).toEqual([...missing] as string[]);
  });

  test("the table gone: the table is what is missing", async () => {
    expect(missingNftParts(await expected(), undefined)).toEqual(["table inet domainwall"]);
    expect(missingWithoutPolicy(undefined)).toEqual(["table inet domainwall"]);
  });

  test("without the policy (status): the proxy's chains are needed while its sets are there; a chain without rules is missing them", async () => {
    expect(missingWithoutPolicy(await held(() => {}))).toEqual([]);
    const gone = await held((l) => {
      l.nftables = l.nftables.filter((o) => o.chain?.name !== "dns_zone_out" && o.rule?.chain !== "dns_guard_in");
    });
    expect(missingWithoutPolicy(gone)).toEqual(["chain dns_zone_out", "rules of chain dns_guard_in (none held)"]);
  });

  test.each(["egress-only.nft", "ingress-reject.nft", "audit.nft", "empty.nft"])(
    "without the policy (status): %s as loaded lacks nothing, and without a chain of it lacks that chain",
    async (name) => {
      const listing = JSON.parse(terseListingOf(await golden(name))) as { nftables: Record<string, { name?: string; chain?: string }>[] };
      expect(missingWithoutPolicy(heldNftParts(JSON.stringify(listing)))).toEqual([]);
      const counted = listing.nftables.flatMap((o) => (o.counter?.name ? [o.counter.name.replace(/_.*/, "")] : []));
      for (const chain of counted) {
        const without = listing.nftables.filter((o) => o.chain?.name !== chain && o.rule?.chain !== chain);
        expect(missingWithoutPolicy(heldNftParts(JSON.stringify({ nftables: without })))).toEqual([`chain ${chain}`]);
      }
    },
  );
});
