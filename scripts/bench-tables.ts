// The performance tables of README.md (the headline: each goal and what was measured) and of
// docs/performance.md (every row), generated from bench/RESULTS.md, never edited by hand.
// `bun scripts/bench-tables.ts` rewrites both between their markers; `bun run bench` calls it after
// a full run. test/docs/bench-tables.test.ts fails when a figure in either differs from RESULTS.md.
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";

export const BEGIN = "<!-- bench:begin (generated from bench/RESULTS.md by scripts/bench-tables.ts) -->";
export const END = "<!-- bench:end -->";

/** The parts of a RESULTS.md that renderReport (bench/report.ts) writes. */
export interface Results {
  readonly machine: string;
  readonly command: string;
  readonly rows: readonly string[];
  readonly goals: readonly string[];
}

/** Each Markdown table of the text, as its lines (header and separator included). */
function tables(text: string): string[][] {
  const found: string[][] = [];
  let current: string[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("|")) current.push(line);
    else if (current.length > 0) {
      found.push(current);
      current = [];
    }
  }
  if (current.length > 0) found.push(current);
  return found;
}

export function parseResults(text: string): Results {
  const machine = text.split("\n").find((line) => line.startsWith("Machine: "));
  const command = text.split("\n").find((line) => line.startsWith("Command: "));
  const all = tables(text);
  const rows = all.find((t) => t[0]?.startsWith("| what |"));
  const goals = all.find((t) => t[0]?.startsWith("| target |"));
  if (!machine || !command || !rows || !goals)
    throw new Error("bench/RESULTS.md: no Machine line, Command line, rows table or targets table");
  return { machine, command, rows, goals };
}

/** README's table: the machine, then each goal with what was measured and whether it was met. */
export function headlineTable(results: string): string {
  const r = parseResults(results);
  const [, ...body] = r.goals;
  return [r.machine, "", "| goal | measured | met |", ...body].join("\n");
}

/** docs/performance.md's table: RESULTS.md as the benchmark wrote it. */
export function fullTable(results: string): string {
  const r = parseResults(results);
  return [r.machine, "", r.command, "", ...r.rows, "", ...r.goals].join("\n");
}

/** The text between the markers of a document (trimmed), or undefined when it has none. */
export function between(doc: string): string | undefined {
  const [from, to] = [doc.indexOf(BEGIN), doc.indexOf(END)];
  return from < 0 || to < from ? undefined : doc.slice(from + BEGIN.length, to).trim();
}

export function replaceBetween(doc: string, block: string, where: string): string {
  const [from, to] = [doc.indexOf(BEGIN), doc.indexOf(END)];
  if (from < 0 || to < from) throw new Error(`${where} has no ${BEGIN} ... ${END} block`);
  return `${doc.slice(0, from + BEGIN.length)}\n${block}\n${doc.slice(to)}`;
}

/** The documents and the table each holds. */
export const DOCUMENTS = [
  { path: "README.md", table: headlineTable },
  { path: "docs/performance.md", table: fullTable },
] as const;

export function writeBenchTables(root: string): void {
  const results = readFileSync(`${root}/bench/RESULTS.md`, "utf8");
  for (const { path, table } of DOCUMENTS) {
    const file = `${root}/${path}`;
    writeFileSync(file, replaceBetween(readFileSync(file, "utf8"), table(results), path));
  }
}

if (import.meta.main) {
  const root = resolve(import.meta.dir, "..");
  writeBenchTables(root);
  console.error(`wrote the bench tables of ${DOCUMENTS.map((d) => d.path).join(" and ")} from bench/RESULTS.md`);
}
