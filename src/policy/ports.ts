import { comparePortRange, type PortRange, type Protocol } from "../net/port-range.ts";
import { compareCidr, contains, type Cidr } from "../net/ip.ts";

/** An element of a port set: a network, one protocol and a range of its ports, with the names or settings it came from. */
export interface PortElement {
  readonly cidr: Cidr;
  readonly ports: PortRange;
  readonly sources: readonly string[];
}

/** One entry with ports before merging: what it opens and where it came from. */
export interface PortEntry {
  readonly cidr: Cidr;
  readonly ports: PortRange;
  readonly source: string;
}

interface Segment {
  readonly first: number;
  readonly last: number;
  readonly sources: readonly string[];
}

/**
 * Cut overlapping ranges into disjoint ones, each with the sources of every range covering it;
 * neighbours with the same sources are joined again. `443` (a) and `443-444` (b) become `443` (a,
 * b) and `444` (b).
 */
function disjoint(ranges: readonly Segment[]): Segment[] {
  const cuts = [...new Set(ranges.flatMap((r) => [r.first, r.last + 1]))].sort((a, b) => a - b);
  const pieces: Segment[] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const first = cuts[i]!;
    const last = cuts[i + 1]! - 1;
    const sources = [...new Set(ranges.filter((r) => r.first <= first && last <= r.last).flatMap((r) => r.sources))].sort();
    if (sources.length === 0) continue;
    const previous = pieces.at(-1);
    if (previous !== undefined && previous.last + 1 === first && previous.sources.join("\n") === sources.join("\n"))
      pieces[pieces.length - 1] = { ...previous, last };
    else pieces.push({ first, last, sources });
  }
  return pieces;
}

/** `segments` without the ports of `covered` (sorted, disjoint). */
function subtract(segments: readonly Segment[], covered: readonly Segment[]): Segment[] {
  let rest = [...segments];
  for (const c of covered) {
    rest = rest.flatMap((s) => {
      if (c.last < s.first || s.last < c.first) return [s];
      return [...(s.first < c.first ? [{ ...s, last: c.first - 1 }] : []), ...(c.last < s.last ? [{ ...s, first: c.last + 1 }] : [])];
    });
  }
  return rest;
}

/**
 * The elements of one family's port set: one per network, protocol and disjoint port range, sorted
 * by network, protocol and port. Disjoint because the kernel refuses an element that lies inside
 * another in a concatenated interval set (`auto-merge` does not merge concatenations; checked with
 * nft 1.0.6): overlapping ranges of one network are cut apart, and a network inside another keeps
 * only the ports its enclosing networks do not already open.
 */
export function portElements(entries: readonly PortEntry[]): PortElement[] {
  const elements: PortElement[] = [];
  for (const protocol of ["tcp", "udp"] as const satisfies readonly Protocol[]) {
    const byCidr = new Map<string, { cidr: Cidr; ranges: Segment[] }>();
    for (const e of entries) {
      if (e.ports.protocol !== protocol) continue;
      const group = byCidr.get(e.cidr.text) ?? { cidr: e.cidr, ranges: [] };
      group.ranges.push({ first: e.ports.first, last: e.ports.last, sources: [e.source] });
      byCidr.set(e.cidr.text, group);
    }
    const groups = [...byCidr.values()].sort((a, b) => compareCidr(a.cidr, b.cidr));
    /** The enclosing networks of the current one, each with every port it and its own enclosing networks open. */
    const enclosing: { cidr: Cidr; covered: Segment[] }[] = [];
    for (const group of groups) {
      while (enclosing.length > 0 && !contains(enclosing.at(-1)!.cidr, group.cidr)) enclosing.pop();
      const own = disjoint(group.ranges);
      const above = enclosing.at(-1)?.covered ?? [];
      for (const s of subtract(own, above))
        elements.push({ cidr: group.cidr, ports: { protocol, first: s.first, last: s.last }, sources: s.sources });
      enclosing.push({ cidr: group.cidr, covered: disjoint([...above, ...own].map((s) => ({ ...s, sources: [""] }))) });
    }
  }
  return elements.sort((a, b) => compareCidr(a.cidr, b.cidr) || comparePortRange(a.ports, b.ports));
}
