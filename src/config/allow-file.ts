import { addCidr, addScanned, cidrAt, cidrColumns, cidrOrder, type CidrColumns } from "../net/cidr-columns.ts";
import { parseCidr, SCANNED, type Cidr } from "../net/ip.ts";
import type { PortRange } from "../net/port-range.ts";
import type { Settings } from "./settings.ts";
import { parseCidrItem, show } from "./values.ts";

/** An allowed network and where it came from (shown as a `#` comment in the ruleset). */
export interface AllowEntry {
  readonly cidr: Cidr;
  readonly source: string;
  /** The ports it opens; absent: every port and protocol. */
  readonly ports?: PortRange;
}

/**
 * An allow-file line: a line without a port (the common case of a 100,000-line file) as `parseCidr`
 * reads it, anything else (ports, brackets, mistakes) as `--allow` does.
 */
function parseAllowLine(value: string): ReturnType<typeof parseCidrItem> {
  const parsed = parseCidr(value);
  return parsed.ok ? { ok: true, value: { raw: value, cidr: parsed.cidr, hostBitsSet: parsed.hostBitsSet } } : parseCidrItem(value);
}

/** At most this many problems (or host-bits warnings) of an allow file are listed one by one. */
const FILE_PROBLEMS_SHOWN = 10;

/** Whitespace that `trim` takes off a line of plain ASCII; anything else is left to the general path. */
const isAsciiSpace = (c: number): boolean => c === 32 || (c >= 9 && c <= 13);

/**
 * `--allow-file`: one address or CIDR per line, as in `--allow`; `#` starts a comment, blank lines
 * are skipped. Each entry's source is `PATH:LINE`, so the ruleset's comments point back at it. The
 * entries come sorted by `compareCidr` (stable: in file order among equal networks). A plain
 * CIDR line (nearly all of a 100,000-line file) is scanned into typed arrays, and objects are made
 * only once sorted (see net/cidr-columns.ts); any other line is read by `parseAllowLine`.
 */
export function parseAllowFile(
  from: string,
  path: string,
  text: string,
): { entries: AllowEntry[]; problems: string[]; warnings: string[] } {
  const columns = cidrColumns(1024);
  const problems: string[] = [];
  const warnings: string[] = [];
  /** Entries read by `parseAllowLine`, by their index in `columns`. */
  const others = new Map<number, AllowEntry>();
  for (let start = 0, line = 1; start <= text.length; start++, line++) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    let a = start;
    let b = start;
    while (b < end && text.charCodeAt(b) !== HASH) b++;
    while (a < b && isAsciiSpace(text.charCodeAt(a))) a++;
    while (b > a && isAsciiSpace(text.charCodeAt(b - 1))) b--;
    const info = a === b ? -1 : addScanned(columns, text, a, b, line);
    if (info >= 0 && info & SCANNED.hostBits) {
      const value = text.slice(a, b);
      warnings.push(`${from}: ${path}:${line}: ${show(value)} has host bits set; using ${cidrAt(columns, columns.count - 1, text).text}`);
    } else if (info < 0) {
      const raw = text.slice(start, end);
      const hash = raw.indexOf("#");
      const value = (hash < 0 ? raw : raw.slice(0, hash)).trim();
      if (value !== "") {
        const parsed = parseAllowLine(value);
        if (!parsed.ok) problems.push(`${from}: ${path}:${line}: ${show(value)} ${parsed.reason}`);
        else {
          const { cidr, hostBitsSet, ports } = parsed.value;
          if (hostBitsSet) warnings.push(`${from}: ${path}:${line}: ${show(value)} has host bits set; using ${cidr.text}`);
          const source = [path, line].join(":");
          others.set(addCidr(columns, cidr, line), ports === undefined ? { cidr, source } : { cidr, source, ports });
        }
      }
    }
    start = end;
  }
  const capped = (messages: string[], what: string) =>
    messages.length <= FILE_PROBLEMS_SHOWN
      ? messages
      : [...messages.slice(0, FILE_PROBLEMS_SHOWN), `${from}: ${path}: and ${messages.length - FILE_PROBLEMS_SHOWN} more ${what}`];
  return {
    entries: sortedEntries(columns, others, path, text),
    problems: capped(problems, "invalid lines"),
    warnings: capped(warnings, "lines with host bits set"),
  };
}

const HASH = 35;

/** The allow file's entries in `compareCidr` order, each object made in that order. */
function sortedEntries(columns: CidrColumns, others: ReadonlyMap<number, AllowEntry>, path: string, text: string): AllowEntry[] {
  const order = cidrOrder(columns);
  const entries: AllowEntry[] = [];
  for (let k = 0; k < order.length; k++) {
    const i = order[k] ?? 0;
    // join: a flat string, not a rope to flatten later
    entries.push((others.size > 0 && others.get(i)) || { cidr: cidrAt(columns, i, text), source: [path, columns.tag[i]].join(":") });
  }
  return entries;
}

/** The allow file's entries, or the problems that stop it (missing file, bad lines). */
export function allowFileEntries(settings: Settings, text: string | undefined): ReturnType<typeof parseAllowFile> {
  const setting = settings.get("allow-file");
  if (setting === undefined || setting.kind !== "value") return { entries: [], problems: [], warnings: [] };
  if (setting.text.trim() === "") return { entries: [], problems: [`${setting.from}: expected a file path`], warnings: [] };
  if (text === undefined) return { entries: [], problems: [`${setting.from}: ${show(setting.text)} does not exist`], warnings: [] };
  return parseAllowFile(setting.from, setting.text, text);
}
