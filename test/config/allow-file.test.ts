import { describe, expect, test } from "bun:test";
import { parseAllowFile, type AllowEntry } from "../../src/config/config.ts";
import { parseCidrItem, show } from "../../src/config/values.ts";
import { formatAddress, parseCidr, sortByCidr } from "../../src/net/ip.ts";
import { parseConfig, type RawConfig } from "../support/config.ts";

/**
 * parseAllowFile as it was before the typed-array scan (one `parseCidr` per line, then a stable
 * sort): the reference the fast path must agree with, entry for entry and message for message.
 */
function referenceParse(from: string, path: string, text: string) {
  const entries: AllowEntry[] = [];
  const problems: string[] = [];
  const warnings: string[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    const hash = line.indexOf("#");
    const value = (hash < 0 ? line : line.slice(0, hash)).trim();
    if (value === "") continue;
    const quick = parseCidr(value);
    const parsed = quick.ok
      ? { ok: true as const, value: { raw: value, cidr: quick.cidr, hostBitsSet: quick.hostBitsSet, ports: undefined } }
      : parseCidrItem(value);
    if (!parsed.ok) problems.push(`${from}: ${path}:${i + 1}: ${show(value)} ${parsed.reason}`);
    else {
      const { cidr, hostBitsSet, ports } = parsed.value;
      if (hostBitsSet) warnings.push(`${from}: ${path}:${i + 1}: ${show(value)} has host bits set; using ${cidr.text}`);
      entries.push(ports === undefined ? { cidr, source: `${path}:${i + 1}` } : { cidr, source: `${path}:${i + 1}`, ports });
    }
  }
  const capped = (messages: string[], what: string) =>
    messages.length <= 10 ? messages : [...messages.slice(0, 10), `${from}: ${path}: and ${messages.length - 10} more ${what}`];
  return {
    entries: sortByCidr(entries, (e) => e.cidr),
    problems: capped(problems, "invalid lines"),
    warnings: capped(warnings, "lines with host bits set"),
  };
}

/** A small deterministic generator (mulberry32), so a failure can be replayed from its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function lineGenerator(next: () => number) {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  const int = (n: number) => Math.floor(next() * n);
  // few distinct values, so that duplicates and networks inside networks are common
  const word = () => pick([0, 0xffffffff, 0xc0000200, 0xc0000201, 0x20010db8, 0x0a000000, int(2 ** 32), (int(16) << 28) >>> 0]);
  const v4 = () => formatAddress(4, [word()]);
  const v6 = () =>
    formatAddress(6, [pick([0x20010db8, 0, 0xfe800000, word()]), pick([0, word()]), pick([0, word()]), pick([0, 1, word()])]);
  /** The same address written another way: upper case, leading zeros, uncompressed, a dotted quad. */
  const respell = (text: string) =>
    pick([
      (t: string) => t.toUpperCase(),
      (t: string) => t.replace(/(^|:)([0-9a-f]{1,3})(?=:|$)/, "$10$2"),
      (t: string) => (t.includes("::") ? t.replace("::", ":0:0:").replace(/^:/, "0").replace(/:$/, ":0") : t),
      (t: string) => (t.startsWith("::") ? "::ffff:192.0.2.1" : t),
      (t: string) => t.replace(/^0+(\d)/, "$1"),
    ])(text);
  const prefixed = (address: string, max: number) =>
    next() < 0.2 ? address : `${address}/${pick([max, 0, 1, int(max + 1), int(max + 1), max === 128 ? 64 : 28])}`;
  return (): string =>
    pick([
      () => prefixed(v4(), 32),
      () => prefixed(v6(), 128),
      () => prefixed(respell(v6()), 128),
      () => prefixed(respell(v4()), 32),
      () => `  ${prefixed(v4(), 32)}\t# a comment`,
      () => `${prefixed(v6(), 128)}\r`,
      () => `\u00a0${v4()}`,
      () => `${v4()}:443`,
      () => `[${v6()}]:8000-8100/udp`,
      () =>
        pick([
          "",
          "# only a comment",
          "   ",
          "not-an-address",
          "192.0.2.1/33",
          "2001:db8::/129",
          "192.0.2.01",
          "1.2.3",
          "2001:db8:::1",
          "192.0.2.1/024",
          "192.0.2.1/",
          "::/0",
          "0.0.0.0/0",
          "2001:db8::1%eth0",
        ]),
    ])();
}

describe("parseAllowFile against the per-line parse and stable sort it replaced", () => {
  for (const [seed, lines] of [
    [1, 50],
    [2, 300],
    // Past the scan's first column capacity (1,024 entries) and its first growth (2,048).
    [3, 1100],
    [4, 1500],
    [5, 2600],
    [6, 255],
    [7, 256],
  ] as const) {
    test(`seed ${seed}, ${lines} lines`, () => {
      const line = lineGenerator(random(seed));
      const text = Array.from({ length: lines }, line).join("\n");
      expect(parseAllowFile("--allow-file", "/etc/allow.txt", text)).toEqual(referenceParse("--allow-file", "/etc/allow.txt", text));
      // only valid lines
      const valid = text
        .split("\n")
        .filter((l) => referenceParse("f", "p", l).problems.length === 0)
        .join("\n");
      expect(parseAllowFile("--allow-file", "/etc/allow.txt", valid)).toEqual(referenceParse("--allow-file", "/etc/allow.txt", valid));
    });
  }
});

test("an IPv4 entry sorts by its own word alone, after a refused IPv6 line was scanned in its place", () => {
  const text = ["2001:db8:1:1:1:1:1:1/129", "192.0.2.0/24", "192.0.2.0/25"].join("\n");
  expect(parseAllowFile("--allow-file", "f", text).entries.map((e) => e.cidr.text)).toEqual(["192.0.2.0/24", "192.0.2.0/25"]);
});

describe("parseConfig: the allow list is the stable sort of --allow, the file and the host list's literals, in that order", () => {
  const base: RawConfig = { strict: false, reject: false, requireHosts: true };
  test.each([11, 12, 13])("seed %i", (seed) => {
    const next = random(seed);
    const line = lineGenerator(next);
    const valid = () => {
      for (;;) {
        const l = line().trim();
        if (
          l !== "" &&
          !l.includes("#") &&
          !/\s/.test(l) &&
          !/^::ffff:/i.test(l) && // refused by parseConfig (config/mapped.ts), though the file's own parse reads it
          referenceParse("f", "p", l).problems.length === 0 &&
          referenceParse("f", "p", l).warnings.length === 0
        )
          return l;
      }
    };
    const flags = Array.from({ length: 1 + Math.floor(next() * 20) }, valid);
    const literals = Array.from({ length: 1 + Math.floor(next() * 20) }, valid).filter(
      (l) => !l.includes("/") && !l.includes(":4") && !l.includes("]"),
    );
    // the file repeats some of the others, so that equal networks come from every source
    const fileLines = [...Array.from({ length: 1200 }, valid), ...flags.slice(0, 3), ...literals.slice(0, 3)];
    const fileText = fileLines.join("\n");
    const { config } = parseConfig({
      ...base,
      hosts: { from: "--hosts", value: ["a.example", ...literals].join(",") },
      allow: { from: "--allow", value: flags.join(",") },
      allowFile: { from: "--allow-file", value: "/etc/allow.txt" },
      allowFileText: fileText,
    });
    const sources = (list: readonly AllowEntry[]) =>
      list.map((e) => `${e.cidr.text} ${e.source}${e.ports ? ` ${e.ports.protocol}${e.ports.first}` : ""}`);
    const file = referenceParse("--allow-file", "/etc/allow.txt", fileText);
    const flagged: AllowEntry[] = flags
      .map((f) => parseCidrItem(f))
      .flatMap((p) => (p.ok ? [{ cidr: p.value.cidr, source: "--allow", ...(p.value.ports && { ports: p.value.ports }) }] : []));
    const hostLiterals: AllowEntry[] = literals
      .map((l) => parseCidr(l))
      .flatMap((p) => (p.ok ? [{ cidr: p.cidr, source: "--hosts" }] : []));
    const everyPort = new Set([...flagged, ...file.entries, ...hostLiterals].filter((e) => e.ports === undefined).map((e) => e.cidr.text));
    const kept = (list: readonly AllowEntry[]) => list.filter((e) => e.ports === undefined || !everyPort.has(e.cidr.text));
    const expected = sortByCidr([...kept(flagged), ...kept(referenceFileOrder(fileText)), ...kept(hostLiterals)], (e) => e.cidr);
    expect(sources(config.allow)).toEqual(sources(expected));
  });
});

/** The file's entries in file order (referenceParse sorts them). */
const referenceFileOrder = (text: string): AllowEntry[] =>
  text.split("\n").flatMap((line, i) => {
    const parsed = parseCidrItem(line.trim());
    return parsed.ok
      ? [{ cidr: parsed.value.cidr, source: `/etc/allow.txt:${i + 1}`, ...(parsed.value.ports && { ports: parsed.value.ports }) }]
      : [];
  });
