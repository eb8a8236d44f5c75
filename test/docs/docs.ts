// The user documentation the drift tests read: README.md, CHANGELOG.md, docs/**.md and examples/**.
// Found by listing the tree, so a new doc or example is checked without being named here.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "../..");

function walk(dir: string): string[] {
  return readdirSync(`${ROOT}/${dir}`)
    .sort()
    .flatMap((name) => {
      const path = `${dir}/${name}`;
      return statSync(`${ROOT}/${path}`).isDirectory() ? walk(path) : [path];
    });
}

/** Markdown a user reads, relative to the repository. */
export const MARKDOWN: readonly string[] = [
  "README.md",
  "CHANGELOG.md",
  ...walk("docs").filter((p) => p.endsWith(".md")),
  ...walk("examples").filter((p) => p.endsWith(".md")),
];
/** Every file under examples/ (manifests, units, their README). */
export const EXAMPLE_FILES: readonly string[] = walk("examples");

export const read = (path: string): string => readFileSync(`${ROOT}/${path}`, "utf8");

/** Markdown without its fenced code blocks (their lines left empty, so line numbers stay). */
export function prose(markdown: string): string {
  let fenced = false;
  return markdown
    .split("\n")
    .map((line) => {
      if (/^\s*(```|~~~)/.test(line)) {
        fenced = !fenced;
        return "";
      }
      return fenced ? "" : line;
    })
    .join("\n");
}

/** The fenced code blocks of a markdown text, with their language. */
export function codeBlocks(markdown: string): { lang: string; text: string }[] {
  return [...markdown.matchAll(/^\s*```([a-z]*)\n([\s\S]*?)^\s*```\s*$/gm)].map((m) => ({ lang: m[1] ?? "", text: m[2] ?? "" }));
}

/** The inline code spans of some prose. */
export const inlineCode = (text: string): string[] => [...text.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);

/** The cells of a Markdown table row (`\|` is a pipe inside a cell). */
export const cells = (row: string): string[] =>
  row
    .trim()
    .replace(/^\||\|$/g, "")
    .split(/(?<!\\)\|/)
    .map((cell) => cell.trim());

/** Each table of a markdown text: its header cells and its body rows' cells. */
export function tablesOf(markdown: string): { header: string[]; rows: string[][] }[] {
  const found: { header: string[]; rows: string[][] }[] = [];
  const lines = prose(markdown).split("\n");
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i]!.startsWith("|") || !/^\|[-:| ]+\|$/.test(lines[i + 1]!.trim())) continue;
    const header = cells(lines[i]!);
    const rows: string[][] = [];
    let j = i + 2;
    for (; j < lines.length && lines[j]!.startsWith("|"); j++) rows.push(cells(lines[j]!));
    found.push({ header, rows });
    i = j;
  }
  return found;
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
export const slug = (heading: string): string =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M} _-]/gu, "")
    .replace(/ /g, "-");

/** The anchors of a markdown text's headings, with GitHub's -1, -2 for repeats. */
export function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const found = new Set<string>();
  for (const m of prose(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = slug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    found.add(n === 0 ? base : `${base}-${n}`);
  }
  return found;
}
