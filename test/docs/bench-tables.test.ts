// The performance tables of README.md and docs/performance.md are bench/RESULTS.md's figures, as
// scripts/bench-tables.ts generates them: a hand edit, or a bench run whose tables were not
// regenerated, fails here.
import { describe, expect, test } from "bun:test";
import { between, DOCUMENTS, fullTable, headlineTable, parseResults, replaceBetween } from "../../scripts/bench-tables.ts";
import { read } from "./docs.ts";

const results = read("bench/RESULTS.md");

describe("the bench tables equal bench/RESULTS.md", () => {
  for (const { path, table } of DOCUMENTS)
    test(path, () => {
      expect(between(read(path))).toBe(table(results).trim());
    });
});

test("every figure of RESULTS.md's goals table is in the README's table, and a changed figure is caught", () => {
  const readme = between(read("README.md")) ?? "";
  for (const row of parseResults(results).goals.slice(2)) expect(readme).toContain(row);
  const edited = readme.replace(/\| 15\.6 ms \|/, "| 14.0 ms |");
  if (edited !== readme) expect(edited).not.toBe(headlineTable(results).trim());
  expect(between(replaceBetween(read("README.md"), "hand-written", "README.md"))).not.toBe(headlineTable(results).trim());
});

test("the generator reads the tables renderReport writes", () => {
  const sample = [
    "Machine: test, 2 cores. 2026-01-01 00:00 UTC.",
    "",
    "Command: `bun run bench`",
    "",
    "| what | runs | median ms |",
    "|---|---:|---:|",
    "| apply | 11 | 103 |",
    "",
    "| target | measured | met |",
    "|---|---|---|",
    "| apply ≤ 80 ms | 103 ms | **no** |",
    "",
  ].join("\n");
  expect(headlineTable(sample)).toBe(
    [
      "Machine: test, 2 cores. 2026-01-01 00:00 UTC.",
      "",
      "| goal | measured | met |",
      "|---|---|---|",
      "| apply ≤ 80 ms | 103 ms | **no** |",
    ].join("\n"),
  );
  expect(fullTable(sample)).toContain("| apply | 11 | 103 |");
  expect(() => parseResults("no tables")).toThrow("bench/RESULTS.md");
});
