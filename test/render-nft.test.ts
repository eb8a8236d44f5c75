import { describe, expect, test } from "bun:test";
import { renderNft, renderNftRemove } from "../src/render-nft.ts";
import { POLICIES } from "./fixtures/policies.ts";
import { expectGolden } from "./support/golden.ts";

describe("renderNft", () => {
  test.each(Object.keys(POLICIES))("%s matches its golden file", async (name) => {
    await expectGolden(`${name}.nft`, renderNft(POLICIES[name]!));
  });

  test("is deterministic and ends with a newline", () => {
    const policy = POLICIES["egress-only"]!;
    expect(renderNft(policy)).toBe(renderNft(structuredClone(policy)));
    expect(renderNft(policy).endsWith("}\n")).toBe(true);
  });

  test("replaces the table atomically: create-if-missing, delete, define, in one file", () => {
    const lines = renderNft(POLICIES.empty!).split("\n");
    const tableLines = lines.filter((l) => l.startsWith("table") || l.startsWith("delete"));
    expect(tableLines).toEqual(["table inet domainwall", "delete table inet domainwall", "table inet domainwall {"]);
    expect(renderNft(POLICIES.empty!)).not.toContain("flush ruleset");
  });

  test("no input chain without ports; input chain with ports", () => {
    expect(renderNft(POLICIES["egress-only"]!)).not.toContain("hook input");
    expect(renderNft(POLICIES["ingress-reject"]!)).toContain("tcp dport { 80, 3000 } accept");
  });

  test("remove deletes only our table and tolerates its absence", () => {
    expect(renderNftRemove()).toBe("table inet domainwall\ndelete table inet domainwall\n");
  });
});

/** The goldens are real nft: the kernel validates each one (`nft --check`) in a throwaway network namespace. */
describe.skipIf(process.getuid?.() !== 0)("the kernel accepts the rendered rulesets (root)", () => {
  test.each(Object.keys(POLICIES))("%s", (name) => {
    const result = Bun.spawnSync(["unshare", "--net", "nft", "--check", "-f", "-"], { stdin: Buffer.from(renderNft(POLICIES[name]!)), stderr: "pipe" });
    expect(result.stderr.toString()).toBe("");
    expect(result.exitCode).toBe(0);
  });
});
