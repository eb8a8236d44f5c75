import { expect, test } from "bun:test";
import { IPT_GETINFO_BYTES, legacyFilterEmpty, listsFilter, parseGetinfo, type FilterInfo } from "../../../src/backends/iptables/kernel.ts";
import type { Family } from "../../../src/net/ip.ts";

/** `struct ipt_getinfo` as the kernel fills it (x86-64 and arm64: little endian). */
function getinfo(validHooks: number, entries: number): Uint8Array {
  const bytes = new Uint8Array(IPT_GETINFO_BYTES);
  bytes.set(new TextEncoder().encode("filter"));
  const view = new DataView(bytes.buffer);
  view.setUint32(32, validHooks, true);
  view.setUint32(76, entries, true);
  view.setUint32(80, 632, true);
  return bytes;
}

test.each([
  {
    name: "an empty filter table: INPUT, FORWARD, OUTPUT policies and the closing entry",
    bytes: getinfo(0b1110, 4),
    expected: { validHooks: 0b1110, entries: 4 },
  },
  { name: "one chain and one jump", bytes: getinfo(0b1110, 7), expected: { validHooks: 0b1110, entries: 7 } },
])("parseGetinfo: $name", ({ bytes, expected }) => {
  expect(parseGetinfo(bytes)).toEqual(expected);
});

test.each([
  { text: undefined, expected: false },
  { text: "", expected: false },
  { text: "nat\n", expected: false },
  { text: "filter\n", expected: true },
  { text: "nat\nfilter\nmangle\n", expected: true },
  { text: "filters\n", expected: false },
])("listsFilter($text) is $expected", ({ text, expected }) => {
  expect(listsFilter(text)).toBe(expected);
});

/** A kernel for `legacyFilterEmpty`: what /proc lists and what IPT_SO_GET_INFO answers, per family; records the questions. */
function kernel(names: Record<Family, string | undefined>, info: Record<Family, FilterInfo | undefined>) {
  const asked: Family[] = [];
  return {
    asked,
    io: {
      readFile: async (path: string) =>
        path === "/proc/net/ip_tables_names"
          ? names[4]
          : path === "/proc/net/ip6_tables_names"
            ? names[6]
            : path === "/proc/net/dev"
              ? "Inter-|   Receive\n"
              : undefined,
      filterInfo: (family: Family) => (asked.push(family), info[family]),
    },
  };
}

const EMPTY: FilterInfo = { validHooks: 0b1110, entries: 4 };
const RULES: FilterInfo = { validHooks: 0b1110, entries: 7 };

test.each([
  {
    name: "no legacy tables at all (module not loaded)",
    names: { 4: undefined, 6: undefined },
    info: { 4: undefined, 6: undefined },
    empty: true,
    asked: [],
  },
  { name: "no filter table in either family", names: { 4: "nat\n", 6: "" }, info: { 4: RULES, 6: RULES }, empty: true, asked: [] },
  {
    name: "filter tables holding only their policies",
    names: { 4: "filter\n", 6: "filter\n" },
    info: { 4: EMPTY, 6: EMPTY },
    empty: true,
    asked: [4, 6],
  },
  { name: "IPv4 filter holds rules", names: { 4: "filter\n", 6: "filter\n" }, info: { 4: RULES, 6: EMPTY }, empty: false, asked: [4] },
  { name: "IPv6 filter holds rules", names: { 4: undefined, 6: "filter\n" }, info: { 4: undefined, 6: RULES }, empty: false, asked: [6] },
  {
    name: "the kernel cannot be asked (no CAP_NET_RAW)",
    names: { 4: "filter\n", 6: undefined },
    info: { 4: undefined, 6: undefined },
    empty: false,
    asked: [4],
  },
  {
    name: "a filter table with other built-in chains than expected",
    names: { 4: "filter\n", 6: undefined },
    info: { 4: { validHooks: 0b0110, entries: 4 }, 6: undefined },
    empty: false,
    asked: [4],
  },
] as {
  name: string;
  names: Record<Family, string | undefined>;
  info: Record<Family, FilterInfo | undefined>;
  empty: boolean;
  asked: Family[];
}[])("legacyFilterEmpty: $name → $empty", async ({ names, info, empty, asked }) => {
  const k = kernel(names, info);
  expect(await legacyFilterEmpty(k.io)).toBe(empty);
  // A table /proc does not list is never asked about: asking would create it in this namespace.
  expect(k.asked).toEqual(asked);
});

test.each([
  { name: "ip_tables_names cannot be read (EACCES)", failing: "/proc/net/ip_tables_names", code: "EACCES" },
  { name: "ip6_tables_names cannot be read (EIO)", failing: "/proc/net/ip6_tables_names", code: "EIO" },
])("legacyFilterEmpty: $name → false, the tools decide", async ({ failing, code }) => {
  const asked: Family[] = [];
  const io = {
    readFile: async (path: string) => {
      if (path === failing) throw Object.assign(new Error(`${code}: ${path}`), { code });
      return path === "/proc/net/dev" ? "Inter-|   Receive\n" : undefined;
    },
    filterInfo: (family: Family) => (asked.push(family), EMPTY),
  };
  expect(await legacyFilterEmpty(io)).toBe(false);
});

test("legacyFilterEmpty: no /proc/net at all (every file absent, /proc/net/dev too) → false, the tools decide", async () => {
  expect(await legacyFilterEmpty({ readFile: async () => undefined, filterInfo: () => EMPTY })).toBe(false);
});
