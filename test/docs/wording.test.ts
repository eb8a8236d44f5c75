// A user has never seen the project's work items: no user doc or example speaks of "the issue's
// targets", "the previous round" or "the issue notes".
import { describe, expect, test } from "bun:test";
import { EXAMPLE_FILES, MARKDOWN, read } from "./docs.ts";

/** Phrases that point at internal work items, each with why it is one. */
const INTERNAL: readonly RegExp[] = [
  /\bthe issue(?:'s)?\b/i,
  /\bissue notes?\b/i,
  /\bissue #?\d+/i,
  /\b(?:previous|this|last|next|earlier|later) round\b/i,
  /\bround \d+\b/i,
  /\bthe lead\b/i,
  /\b(?:docs|issue)-[a-z]+\.md\b/,
  /\/work\/(?:notes|shared|wt|main)\b/,
];

export const internalReferences = (text: string): string[] =>
  text.split("\n").flatMap((line, i) => INTERNAL.filter((re) => re.test(line)).map((re) => `line ${i + 1}: ${re} in "${line.trim()}"`));

describe("no user doc refers to internal work items", () => {
  for (const path of [...MARKDOWN, ...EXAMPLE_FILES.filter((p) => !p.endsWith(".md"))])
    test(path, () => {
      expect(internalReferences(read(path))).toEqual([]);
    });
});

test("the phrases the first README used are caught", () => {
  for (const text of [
    "the issue's 100,000 CIDRs",
    "see the issue notes and Performance",
    "From the previous round (nft processes)",
    "What this round added",
    "the issue's targets",
  ])
    expect(internalReferences(text)).not.toEqual([]);
  expect(internalReferences("file a bug report; a round trip; issues of DNS")).toEqual([]);
});

test("each topic in docs/ starts by saying who it is for", () => {
  const topics = MARKDOWN.filter((p) => p.startsWith("docs/"));
  expect(topics.length).toBeGreaterThan(0);
  const without = topics.filter((p) => {
    const firstParagraph = read(p).split("\n\n")[1] ?? "";
    return !/^For\b/.test(firstParagraph);
  });
  expect(without).toEqual([]);
});
