import { describe, expect, test } from "bun:test";
import { renderIptablesBoth } from "../../../src/backends/iptables/backend.ts";
import { FRESH, renderIptables, renderIptablesRestore } from "../../../src/backends/iptables/render.ts";
import { ourPart, parseIptablesState } from "../../../src/backends/iptables/save.ts";
import { RESTORES } from "../../fixtures/iptables-saves.ts";
import { POLICIES } from "../../fixtures/policies.ts";
import { expectGolden } from "../../support/golden.ts";

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
    // a jump pushed down by someone's rule above it moves back to the top, in the same commit
    expect(renderIptables(policy, 4, { ...FRESH, outputJumps: 1, outputChain: true, behind: ["DOMAINWALL-OUTPUT"] })).toContain(
      "-D OUTPUT -j DOMAINWALL-OUTPUT\n-I OUTPUT 1 -j DOMAINWALL-OUTPUT\nCOMMIT",
    );
  });

  test("--forward: a forward chain entered by one jump from FORWARD; without it, a loaded one goes", () => {
    const forwarding = renderIptables(POLICIES.ports!, 4, FRESH);
    expect(forwarding).toContain(":DOMAINWALL-FORWARD - [0:0]\n");
    expect(forwarding).toContain("-I FORWARD 1 -j DOMAINWALL-FORWARD\n");
    const save =
      "*filter\n:FORWARD ACCEPT [0:0]\n:DOMAINWALL-OUTPUT - [0:0]\n:DOMAINWALL-FORWARD - [0:0]\n-A FORWARD -j DOMAINWALL-FORWARD\n-A OUTPUT -j DOMAINWALL-OUTPUT\n-A DOMAINWALL-FORWARD -j DROP\nCOMMIT\n";
    const state = parseIptablesState(save);
    expect(state).toEqual({ outputJumps: 1, inputJumps: 0, outputChain: true, inputChain: false, forwardJumps: 1, forwardChain: true });
    expect(renderIptables(POLICIES.ports!, 4, state)).not.toContain("-I FORWARD");
    expect(renderIptables(POLICIES["egress-only"]!, 4, state)).toContain(":DOMAINWALL-FORWARD - [0:0]\n");
    expect(renderIptables(POLICIES["egress-only"]!, 4, state)).toContain("-D FORWARD -j DOMAINWALL-FORWARD\n-X DOMAINWALL-FORWARD\nCOMMIT");
    expect(renderIptablesRestore("", state)).toBe(
      "*filter\n-D OUTPUT -j DOMAINWALL-OUTPUT\n-D FORWARD -j DOMAINWALL-FORWARD\n-F DOMAINWALL-OUTPUT\n-X DOMAINWALL-OUTPUT\n-F DOMAINWALL-FORWARD\n-X DOMAINWALL-FORWARD\nCOMMIT\n",
    );
  });

  test("remove touches only our jumps and chains", () => {
    expect(renderIptablesRestore("", { outputJumps: 1, inputJumps: 1, outputChain: true, inputChain: true })).toBe(
      "*filter\n-D OUTPUT -j DOMAINWALL-OUTPUT\n-D INPUT -j DOMAINWALL-INPUT\n-F DOMAINWALL-OUTPUT\n-X DOMAINWALL-OUTPUT\n-F DOMAINWALL-INPUT\n-X DOMAINWALL-INPUT\nCOMMIT\n",
    );
  });

  test("a chain of ours that someone else's rule jumps to is emptied, not deleted", () => {
    const policy = POLICIES["egress-only"]!;
    const save =
      "*filter\n:INPUT ACCEPT [0:0]\n:DOMAINWALL-INPUT - [0:0]\n:DOMAINWALL-OUTPUT - [0:0]\n-A INPUT -j DOMAINWALL-INPUT\n[0:0] -A FORWARD -i eth0 -g DOMAINWALL-INPUT\n-A OUTPUT -j DOMAINWALL-OUTPUT\nCOMMIT\n";
    const state = parseIptablesState(save);
    expect(state).toEqual({ outputJumps: 1, inputJumps: 1, outputChain: true, inputChain: true, referenced: ["DOMAINWALL-INPUT"] });
    expect(renderIptables(policy, 4, state)).toContain("-D INPUT -j DOMAINWALL-INPUT\nCOMMIT");
    expect(renderIptablesRestore("", state)).toBe(
      "*filter\n-D OUTPUT -j DOMAINWALL-OUTPUT\n-D INPUT -j DOMAINWALL-INPUT\n-F DOMAINWALL-OUTPUT\n-X DOMAINWALL-OUTPUT\n-F DOMAINWALL-INPUT\nCOMMIT\n",
    );
    // Only an exact chain name counts.
    expect(parseIptablesState(save.replace("-g DOMAINWALL-INPUT", "-j DOMAINWALL-INPUTS")).referenced).toBeUndefined();
  });
});

describe("renderIptablesRestore", () => {
  test.each(RESTORES)("$name", ({ snapshot, current, input }) => {
    expect(renderIptablesRestore(ourPart(snapshot), parseIptablesState(current))).toBe(input);
  });
});
