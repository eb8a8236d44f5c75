import { describe, expect, test } from "bun:test";
import { renderIptablesBoth } from "../src/iptables-backend.ts";
import { FRESH, parseIptablesState, renderIptables, renderIptablesRemove } from "../src/render-iptables.ts";
import { POLICIES } from "./fixtures/policies.ts";
import { expectGolden } from "./support/golden.ts";

describe("renderIptables", () => {
  // Same fixtures as the nft goldens: compare test/golden/<name>.nft with <name>.iptables side by side.
  test.each(Object.keys(POLICIES))("%s matches its golden file", async (name) => {
    await expectGolden(`${name}.iptables`, renderIptablesBoth(POLICIES[name]!));
  });

  test("an existing jump is kept, a duplicate removed, a stale input chain dropped", () => {
    const policy = POLICIES["egress-only"]!;
    expect(renderIptables(policy, 4, FRESH)).toContain("-I OUTPUT 1 -j DOMAINWALL-OUTPUT");
    const loaded = renderIptables(policy, 4, { outputJumps: 1, inputJumps: 1, outputChain: true, inputChain: true });
    expect(loaded).not.toContain("-I OUTPUT");
    expect(loaded).toContain(":DOMAINWALL-INPUT - [0:0]\n");
    expect(loaded).toContain("-D INPUT -j DOMAINWALL-INPUT\n-X DOMAINWALL-INPUT\nCOMMIT");
    expect(renderIptables(policy, 4, { ...FRESH, outputJumps: 2, outputChain: true })).toContain("-D OUTPUT -j DOMAINWALL-OUTPUT\nCOMMIT");
  });

  test("remove touches only our jumps and chains", () => {
    expect(renderIptablesRemove({ outputJumps: 1, inputJumps: 1, outputChain: true, inputChain: true })).toBe(
      "*filter\n-D OUTPUT -j DOMAINWALL-OUTPUT\n-D INPUT -j DOMAINWALL-INPUT\n-F DOMAINWALL-OUTPUT\n-X DOMAINWALL-OUTPUT\n-F DOMAINWALL-INPUT\n-X DOMAINWALL-INPUT\nCOMMIT\n",
    );
  });

  test("reads our state from *-save output, with or without counters", () => {
    const save = "*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [5:300]\n:DOMAINWALL-OUTPUT - [0:0]\n[3:180] -A OUTPUT -j DOMAINWALL-OUTPUT\n-A OUTPUT -d 192.0.2.1/32 -j ACCEPT\nCOMMIT\n";
    expect(parseIptablesState(save)).toEqual({ outputJumps: 1, inputJumps: 0, outputChain: true, inputChain: false });
  });
});

/** The goldens are real restore input: iptables-legacy-restore --test accepts them in a throwaway namespace. */
describe.skipIf(process.getuid?.() !== 0)("iptables-legacy accepts the rendered input (root)", () => {
  test.each(Object.keys(POLICIES).flatMap((name) => [{ name, family: 4 as const }, { name, family: 6 as const }]))("$name IPv$family", ({ name, family }) => {
    const tool = family === 4 ? "iptables-legacy-restore" : "ip6tables-legacy-restore";
    const result = Bun.spawnSync(["unshare", "--net", tool, "--noflush", "--test"], { stdin: Buffer.from(renderIptables(POLICIES[name]!, family)), stderr: "pipe" });
    expect(result.stderr.toString()).toBe("");
    expect(result.exitCode).toBe(0);
  });
});
