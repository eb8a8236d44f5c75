// Every relative link in the README, the docs and the examples' README reaches a file that exists,
// and every #anchor a heading of that file; every example file is listed in examples/README.md.
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { dirname, normalize } from "node:path";
import { anchors, EXAMPLE_FILES, MARKDOWN, prose, read, ROOT, slug } from "./docs.ts";

/** The relative links of a markdown text (inline code and code blocks left out). */
export function links(markdown: string): string[] {
  const text = prose(markdown).replace(/`[^`\n]*`/g, "");
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
}

/** Why a link from the file `from` does not resolve, or undefined when it does. */
export function brokenLink(from: string, target: string, readDoc = read): string | undefined {
  const [path = "", anchor] = target.split("#", 2);
  const file = path === "" ? from : normalize(`${dirname(from)}/${path}`);
  if (file.startsWith("..")) return `${target}: outside the repository`;
  if (!existsSync(`${ROOT}/${file}`)) return `${target}: no file ${file}`;
  if (anchor === undefined || !file.endsWith(".md")) return undefined;
  return anchors(readDoc(file)).has(anchor) ? undefined : `${target}: no heading in ${file} whose anchor is #${anchor}`;
}

describe("every relative link resolves", () => {
  for (const doc of MARKDOWN)
    test(doc, () => {
      const broken = links(read(doc)).flatMap((target) => brokenLink(doc, target) ?? []);
      expect(broken).toEqual([]);
    });
});

test("the link check finds a missing file and a missing anchor, and GitHub's anchors", () => {
  expect(links("see [a](docs/vm.md#x), [b](https://example.com), `[c](nope.md)`")).toEqual(["docs/vm.md#x"]);
  expect(brokenLink("README.md", "docs/nope.md")).toContain("no file docs/nope.md");
  expect(brokenLink("README.md", "#no-such-heading")).toContain("no heading in README.md");
  expect(brokenLink("docs/vm.md", "../README.md#commands")).toBeUndefined();
  expect(slug("The DNS proxy: `watch --dns-proxy`")).toBe("the-dns-proxy-watch---dns-proxy");
  expect([...anchors("# A\n## A\n```\n# not a heading\n```\n")]).toEqual(["a", "a-1"]);
});

test("every example file is listed in examples/README.md", () => {
  const listed = new Set(links(read("examples/README.md")).map((target) => normalize(`examples/${target.split("#")[0]}`)));
  const unlisted = EXAMPLE_FILES.filter((file) => file !== "examples/README.md" && !listed.has(file));
  expect(unlisted).toEqual([]);
});
