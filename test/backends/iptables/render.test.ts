import { describe, expect, test } from "bun:test";
import { renderIptablesBoth } from "../../../src/backends/iptables/backend.ts";
import { FRESH, renderIptables, renderIptablesRemove, renderIptablesRestore } from "../../../src/backends/iptables/render.ts";
import { ourPart, parseIptablesState } from "../../../src/backends/iptables/save.ts";
import { IN_RULES, OUT_RULES, TABLES } from "../../fixtures/iptables-saves.ts";
import { POLICIES } from "../../fixtures/policies.ts";
import { expectGolden } from "../../support/golden.ts";
import { describeNetns } from "../../lab/lab.ts";

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
    expect(renderIptables(policy, 4, { ...FRESH, outputJumps: 1, outputChain: true, behind: ["DOMAINWALL-OUTPUT"] })).toContain("-D OUTPUT -j DOMAINWALL-OUTPUT\n-I OUTPUT 1 -j DOMAINWALL-OUTPUT\nCOMMIT");
  });

  test("--forward: a forward chain entered by one jump from FORWARD; without it, a loaded one goes", () => {
    const forwarding = renderIptables(POLICIES.ports!, 4, FRESH);
    expect(forwarding).toContain(":DOMAINWALL-FORWARD - [0:0]\n");
    expect(forwarding).toContain("-I FORWARD 1 -j DOMAINWALL-FORWARD\n");
    const save = "*filter\n:FORWARD ACCEPT [0:0]\n:DOMAINWALL-OUTPUT - [0:0]\n:DOMAINWALL-FORWARD - [0:0]\n-A FORWARD -j DOMAINWALL-FORWARD\n-A OUTPUT -j DOMAINWALL-OUTPUT\n-A DOMAINWALL-FORWARD -j DROP\nCOMMIT\n";
    const state = parseIptablesState(save);
    expect(state).toEqual({ outputJumps: 1, inputJumps: 0, outputChain: true, inputChain: false, forwardJumps: 1, forwardChain: true });
    expect(renderIptables(POLICIES.ports!, 4, state)).not.toContain("-I FORWARD");
    expect(renderIptables(POLICIES["egress-only"]!, 4, state)).toContain(":DOMAINWALL-FORWARD - [0:0]\n");
    expect(renderIptables(POLICIES["egress-only"]!, 4, state)).toContain("-D FORWARD -j DOMAINWALL-FORWARD\n-X DOMAINWALL-FORWARD\nCOMMIT");
    expect(renderIptablesRemove(state)).toBe("*filter\n-D OUTPUT -j DOMAINWALL-OUTPUT\n-D FORWARD -j DOMAINWALL-FORWARD\n-F DOMAINWALL-OUTPUT\n-X DOMAINWALL-OUTPUT\n-F DOMAINWALL-FORWARD\n-X DOMAINWALL-FORWARD\nCOMMIT\n");
  });

  test("remove touches only our jumps and chains", () => {
    expect(renderIptablesRemove({ outputJumps: 1, inputJumps: 1, outputChain: true, inputChain: true })).toBe(
      "*filter\n-D OUTPUT -j DOMAINWALL-OUTPUT\n-D INPUT -j DOMAINWALL-INPUT\n-F DOMAINWALL-OUTPUT\n-X DOMAINWALL-OUTPUT\n-F DOMAINWALL-INPUT\n-X DOMAINWALL-INPUT\nCOMMIT\n",
    );
  });

  test("a chain of ours that someone else's rule jumps to is emptied, not deleted", () => {
    const policy = POLICIES["egress-only"]!;
    const save = "*filter\n:INPUT ACCEPT [0:0]\n:DOMAINWALL-INPUT - [0:0]\n:DOMAINWALL-OUTPUT - [0:0]\n-A INPUT -j DOMAINWALL-INPUT\n[0:0] -A FORWARD -i eth0 -g DOMAINWALL-INPUT\n-A OUTPUT -j DOMAINWALL-OUTPUT\nCOMMIT\n";
    const state = parseIptablesState(save);
    expect(state).toEqual({ outputJumps: 1, inputJumps: 1, outputChain: true, inputChain: true, referenced: ["DOMAINWALL-INPUT"] });
    expect(renderIptables(policy, 4, state)).toContain("-D INPUT -j DOMAINWALL-INPUT\nCOMMIT");
    expect(renderIptablesRemove(state)).toBe("*filter\n-D OUTPUT -j DOMAINWALL-OUTPUT\n-D INPUT -j DOMAINWALL-INPUT\n-F DOMAINWALL-OUTPUT\n-X DOMAINWALL-OUTPUT\n-F DOMAINWALL-INPUT\nCOMMIT\n");
    // Only an exact chain name counts.
    expect(parseIptablesState(save.replace("-g DOMAINWALL-INPUT", "-j DOMAINWALL-INPUTS")).referenced).toBeUndefined();
  });

});

/** Restore cases: the snapshot's part put back over what is loaded now. */
const RESTORES = [
  {
    name: "a later apply added an input chain: it goes, the output chain is refilled with its counters",
    snapshot: TABLES.outputOnly,
    current: TABLES.laterWithInput,
    input: [
      "*filter",
      ":DOMAINWALL-OUTPUT - [0:0]",
      "-D OUTPUT -j DOMAINWALL-OUTPUT",
      "-D INPUT -j DOMAINWALL-INPUT",
      ...OUT_RULES("203.0.113.10"),
      "[9:540] -I OUTPUT 1 -j DOMAINWALL-OUTPUT",
      "-F DOMAINWALL-INPUT",
      "-X DOMAINWALL-INPUT",
      "COMMIT",
      "",
    ].join("\n"),
  },
  {
    name: "the snapshot's input chain comes back",
    snapshot: TABLES.withInput,
    current: TABLES.laterOutputOnly,
    input: [
      "*filter",
      ":DOMAINWALL-OUTPUT - [0:0]",
      ":DOMAINWALL-INPUT - [0:0]",
      "-D OUTPUT -j DOMAINWALL-OUTPUT",
      ...IN_RULES,
      ...OUT_RULES("203.0.113.10"),
      "[2:120] -I INPUT 1 -j DOMAINWALL-INPUT",
      "[9:540] -I OUTPUT 1 -j DOMAINWALL-OUTPUT",
      "COMMIT",
      "",
    ].join("\n"),
  },
  { name: "nothing of ours in the snapshot: the same as remove", snapshot: TABLES.foreignOnly, current: TABLES.laterWithInput, input: renderIptablesRemove(parseIptablesState(TABLES.laterWithInput)) },
  {
    name: "nothing of ours loaded now: chains created, jumps inserted",
    snapshot: TABLES.outputOnly,
    current: TABLES.foreignOnly,
    input: ["*filter", ":DOMAINWALL-OUTPUT - [0:0]", ...OUT_RULES("203.0.113.10"), "[9:540] -I OUTPUT 1 -j DOMAINWALL-OUTPUT", "COMMIT", ""].join("\n"),
  },
  {
    name: "every current jump is deleted, duplicates too",
    snapshot: TABLES.outputOnly,
    current: TABLES.doubleJump,
    input: ["*filter", ":DOMAINWALL-OUTPUT - [0:0]", "-D OUTPUT -j DOMAINWALL-OUTPUT", "-D OUTPUT -j DOMAINWALL-OUTPUT", ...OUT_RULES("203.0.113.10"), "[9:540] -I OUTPUT 1 -j DOMAINWALL-OUTPUT", "COMMIT", ""].join("\n"),
  },
  { name: "nothing anywhere: an empty commit", snapshot: TABLES.foreignOnly, current: TABLES.foreignOnly, input: "*filter\nCOMMIT\n" },
  {
    name: "a chain of ours that someone else's rule jumps to is emptied, not deleted (the kernel would refuse the commit)",
    snapshot: TABLES.outputOnly,
    current: TABLES.laterWithInputReferenced,
    kept: ":DOMAINWALL-INPUT - [0:0]\n",
    // The first case's input without its "-X DOMAINWALL-INPUT".
    input: renderIptablesRestore(ourPart(TABLES.outputOnly), parseIptablesState(TABLES.laterWithInput)).replace("-X DOMAINWALL-INPUT\n", ""),
  },
];

describe("renderIptablesRestore", () => {
  test.each(RESTORES)("$name", ({ snapshot, current, input }) => {
    expect(renderIptablesRestore(ourPart(snapshot), parseIptablesState(current))).toBe(input);
  });

  test("remove is a restore of nothing", () => {
    for (const current of Object.values(TABLES)) expect(renderIptablesRemove(parseIptablesState(current))).toBe(renderIptablesRestore("", parseIptablesState(current)));
  });
});

/** The goldens are real restore input: iptables-legacy-restore --test accepts them in a throwaway namespace. */
describeNetns("iptables-legacy accepts the rendered input (root)", () => {
  test.each(Object.keys(POLICIES).flatMap((name) => [{ name, family: 4 as const }, { name, family: 6 as const }]))("$name IPv$family", ({ name, family }) => {
    const tool = family === 4 ? "iptables-legacy-restore" : "ip6tables-legacy-restore";
    const result = Bun.spawnSync(["unshare", "--net", tool, "--noflush", "--test"], { stdin: Buffer.from(renderIptables(POLICIES[name]!, family)), stderr: "pipe" });
    expect(result.stderr.toString()).toBe("");
    expect(result.exitCode).toBe(0);
  });
});

/**
 * Each restore case against the kernel, in a throwaway namespace: load `current`, check the input
 * with --test, commit it; then our part is exactly the snapshot's (counters included), our jumps come
 * first, and every other line (foreign rules, chains, their counters) is as it was.
 */
describeNetns("iptables-legacy takes the restore input back (root)", () => {
  const script = [
    'printf %s "$CURRENT" | iptables-legacy-restore --counters',
    "iptables-legacy-save -c -t filter",
    "echo '#----'",
    'printf %s "$INPUT" | iptables-legacy-restore --noflush --counters --test',
    'printf %s "$INPUT" | iptables-legacy-restore --noflush --counters',
    "iptables-legacy-save -c -t filter",
  ].join(" && ");
  // Any legacy --noflush commit (apply and remove too) zeroes the built-in chains' policy counters:
  // libiptc's doing, not ours to keep. Everything else must be as it was.
  const foreign = (save: string) =>
    save.split("\n").filter((line) => !line.startsWith("#") && !ourPart(`*filter\n${line}\n`)).map((line) => line.replace(/^(:(INPUT|FORWARD|OUTPUT) \S+) \[\d+:\d+\]$/, "$1 [0:0]"));

  test.each(RESTORES)("$name", ({ snapshot, current, input, kept }) => {
    const result = Bun.spawnSync(["unshare", "--net", "sh", "-c", script], { env: { ...process.env, CURRENT: current, INPUT: input }, stderr: "pipe" });
    expect(result.stderr.toString()).toBe("");
    expect(result.exitCode).toBe(0);
    const [before = "", after = ""] = result.stdout.toString().split("#----\n");
    // An emptied chain that someone else still jumps to stays (declared, without rules).
    const keptLines = (kept ?? "").split("\n").filter(Boolean);
    const lines = (part: string) => part.split("\n").filter((line) => line !== "" && !keptLines.includes(line));
    expect(lines(ourPart(after))).toEqual(lines(ourPart(snapshot)));
    for (const line of keptLines) expect(ourPart(after)).toContain(`${line}\n`);
    expect(foreign(after)).toEqual(foreign(before));
    const firstOutput = after.split("\n").find((line) => / -A OUTPUT /.test(line));
    if (ourPart(snapshot) !== "") expect(firstOutput).toEndWith("-A OUTPUT -j DOMAINWALL-OUTPUT");
  });
});
