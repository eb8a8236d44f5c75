import { describe, expect, test } from "bun:test";
import { compileMatcher, parsePattern } from "../../src/proxy/match.ts";

function matcherOf(entries: readonly string[]) {
  const compiled = compileMatcher(entries);
  if (!compiled.ok) throw new Error(compiled.problems.join("; "));
  return compiled.match;
}

describe("parsePattern", () => {
  test.each([
    { input: "api.example.com", expected: { kind: "exact", name: "api.example.com", entry: "api.example.com" } },
    { input: "API.Example.COM.", expected: { kind: "exact", name: "api.example.com", entry: "api.example.com" } },
    { input: "*.example.com", expected: { kind: "one-label", suffix: "example.com", entry: "*.example.com" } },
    { input: "**.Example.com", expected: { kind: "any-labels", suffix: "example.com", entry: "**.example.com" } },
    { input: "*.München.example", expected: { kind: "one-label", suffix: "xn--mnchen-3ya.example", entry: "*.xn--mnchen-3ya.example" } },
  ])("$input", ({ input, expected }) => {
    expect(parsePattern(input)).toEqual({ ok: true, pattern: expected as never });
  });

  test.each([
    { input: "a*.example.com", reason: "whole leftmost label" },
    { input: "*a.example.com", reason: "whole leftmost label" },
    { input: "foo.*.example.com", reason: "whole leftmost label" },
    { input: "***.example.com", reason: "whole leftmost label" },
    { input: "*.*.example.com", reason: "whole leftmost label" },
    { input: "*", reason: "whole leftmost label" },
    { input: "*.", reason: "empty name" },
    { input: "**", reason: "whole leftmost label" },
    { input: "*.192.0.2.1", reason: "not an address" },
    { input: "192.0.2.1", reason: "an address, not a name" },
    { input: "*.a;b.example", reason: "only letters" },
    { input: "*.-a.example", reason: 'label "-a"' },
  ])("rejects $input", ({ input, reason }) => {
    const parsed = parsePattern(input);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toContain(reason);
  });
});

describe("compileMatcher", () => {
  test("reports every bad entry, each naming its value", () => {
    const compiled = compileMatcher(["ok.example", "a*.example", "x;y.example"]);
    expect(compiled.ok).toBe(false);
    if (!compiled.ok) {
      expect(compiled.problems).toHaveLength(2);
      expect(compiled.problems[0]).toContain('"a*.example"');
      expect(compiled.problems[1]).toContain('"x;y.example"');
    }
  });

  const list = [
    "api.example.com",
    "*.one.example",
    "**.any.example",
    "*.both.example",
    "**.both.example",
    "**.deep.any.example",
    "*.x.one.example",
  ];
  test.each([
    // exact
    { query: "api.example.com", entry: "api.example.com" },
    { query: "API.EXAMPLE.COM", entry: "api.example.com" },
    { query: "api.example.com.", entry: "api.example.com" },
    { query: "www.api.example.com", entry: undefined },
    { query: "example.com", entry: undefined },
    { query: "api.example.co", entry: undefined },
    // * matches exactly one more label
    { query: "a.one.example", entry: "*.one.example" },
    { query: "A.One.Example.", entry: "*.one.example" },
    { query: "a.b.one.example", entry: undefined },
    { query: "one.example", entry: undefined },
    { query: "one.example.", entry: undefined },
    { query: "aone.example", entry: undefined },
    // ** matches one or more labels
    { query: "a.any.example", entry: "**.any.example" },
    { query: "a.b.any.example", entry: "**.any.example" },
    { query: "a.b.c.d.any.example", entry: "**.any.example" },
    { query: "any.example", entry: undefined },
    { query: "xany.example", entry: undefined },
    // the most specific entry is reported
    { query: "a.both.example", entry: "*.both.example" },
    { query: "a.b.both.example", entry: "**.both.example" },
    { query: "a.deep.any.example", entry: "**.deep.any.example" },
    { query: "deep.any.example", entry: "**.any.example" },
    { query: "a.x.one.example", entry: "*.x.one.example" },
    { query: "x.one.example", entry: "*.one.example" },
    // not names
    { query: "", entry: undefined },
    { query: ".", entry: undefined },
    { query: ".one.example", entry: undefined },
    { query: "a..one.example", entry: undefined },
  ])("$query → $entry", ({ query, entry }) => {
    expect(matcherOf(list)(query)).toBe(entry);
  });

  test("an empty list matches nothing", () => {
    expect(matcherOf([])("example.com")).toBeUndefined();
  });

  test("duplicates are kept once", () => {
    const compiled = compileMatcher(["*.a.example", "*.A.example.", "b.example", "B.example"]);
    expect(compiled.ok && compiled.patterns.map((p) => p.entry)).toEqual(["*.a.example", "b.example"]);
  });
});
