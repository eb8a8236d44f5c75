import { parseHost } from "../config/hostname.ts";

/**
 * One entry of the proxy's list of allowed names. `*.example.com` matches exactly one more label
 * (`a.example.com`, not `a.b.example.com`); `**.example.com` matches one or more (as Cilium's DNS
 * proxy does); neither matches `example.com` itself.
 */
export type NamePattern =
  | { readonly kind: "exact"; readonly name: string; readonly entry: string }
  | { readonly kind: "one-label"; readonly suffix: string; readonly entry: string }
  | { readonly kind: "any-labels"; readonly suffix: string; readonly entry: string };

export type ParsedPattern = { readonly ok: true; readonly pattern: NamePattern } | { readonly ok: false; readonly reason: string };

/**
 * An entry as written in the list, as `parseHost` reads it: a name (IDNA, case and trailing dot
 * normalised), or `*.`/`**.` followed by one. `entry` is the canonical text logs and metrics report.
 */
export function parsePattern(input: string): ParsedPattern {
  // parseHost reads a misplaced '*' as a bad character; the list's own message says where one may go.
  if (input.replace(/^\*{1,2}\./, "").includes("*"))
    return { ok: false, reason: "a '*' or '**' is allowed only as the whole leftmost label, followed by a name" };
  const parsed = parseHost(input);
  if (!parsed.ok) return parsed;
  const { host } = parsed;
  if (host.kind === "address") return { ok: false, reason: "an address, not a name" };
  if (host.kind === "name") {
    const name = host.name.replace(/\.$/, ""); // a query name is always absolute
    return { ok: true, pattern: { kind: "exact", name, entry: name } };
  }
  const dot = host.entry.indexOf(".");
  const suffix = host.entry.slice(dot + 1);
  return {
    ok: true,
    pattern: host.entry.startsWith("**.")
      ? { kind: "any-labels", suffix, entry: host.entry }
      : { kind: "one-label", suffix, entry: host.entry },
  };
}

/** Which entry of the list allows a query name; undefined when none does. */
export type NameMatcher = (name: string) => string | undefined;

export type CompiledMatcher =
  | { readonly ok: true; readonly match: NameMatcher; readonly patterns: readonly NamePattern[] }
  | { readonly ok: false; readonly problems: readonly string[] };

/**
 * Compile the list into a matcher. A query name is compared in ASCII lower case, a trailing dot
 * being its absolute form. An exact entry wins over `*.x`, which wins over `**.x`; among `**`
 * entries the longest suffix wins, so the reported entry is the most specific one.
 * Every bad entry is reported at once, each naming the value.
 */
export function compileMatcher(entries: readonly string[]): CompiledMatcher {
  const exact = new Map<string, string>();
  const oneLabel = new Map<string, string>();
  const anyLabels = new Map<string, string>();
  const patterns: NamePattern[] = [];
  const problems: string[] = [];
  for (const input of entries) {
    const parsed = parsePattern(input);
    if (!parsed.ok) {
      problems.push(`${JSON.stringify(input)}: ${parsed.reason}`);
      continue;
    }
    const p = parsed.pattern;
    const [map, key] = p.kind === "exact" ? [exact, p.name] : p.kind === "one-label" ? [oneLabel, p.suffix] : [anyLabels, p.suffix];
    if (map.has(key)) continue;
    map.set(key, p.entry);
    patterns.push(p);
  }
  if (problems.length > 0) return { ok: false, problems };

  const match: NameMatcher = (query) => {
    const name = (query.endsWith(".") ? query.slice(0, -1) : query).toLowerCase();
    if (name === "" || name.startsWith(".") || name.includes("..")) return undefined;
    const hit = exact.get(name);
    if (hit !== undefined) return hit;
    for (let dot = name.indexOf("."), first = true; dot >= 0; dot = name.indexOf(".", dot + 1), first = false) {
      const suffix = name.slice(dot + 1);
      const one = first ? oneLabel.get(suffix) : undefined;
      if (one !== undefined) return one;
      const any = anyLabels.get(suffix);
      if (any !== undefined) return any;
    }
    return undefined;
  };
  return { ok: true, match, patterns };
}
