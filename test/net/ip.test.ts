import { describe, expect, test } from "bun:test";
import { compareCidr, contains, cidr, makeCidr, mergeByCidr, parseCidr, sortByCidr, type Cidr } from "../../src/net/ip.ts";

describe("parseCidr", () => {
  const accepted: { input: string; text: string; hostBitsSet?: boolean }[] = [
    { input: "192.0.2.1", text: "192.0.2.1" },
    { input: "192.0.2.1/32", text: "192.0.2.1" },
    { input: "192.0.2.7/24", text: "192.0.2.0/24", hostBitsSet: true },
    { input: "0.0.0.0/0", text: "0.0.0.0/0" },
    { input: "2001:DB8::1", text: "2001:db8::1" },
    { input: "2001:db8:0:0:1:0:0:1", text: "2001:db8::1:0:0:1" },
    { input: "2001:db8::1/32", text: "2001:db8::/32", hostBitsSet: true },
    { input: "::", text: "::" },
    { input: "::1", text: "::1" },
    { input: "::ffff:192.0.2.1", text: "::ffff:c000:201" },
    { input: "2001:db8:1:2:3:4:5:6", text: "2001:db8:1:2:3:4:5:6" },
    { input: "fe80::/10", text: "fe80::/10" },
  ];
  test.each(accepted)("accepts $input as $text", ({ input, text, hostBitsSet = false }) => {
    const parsed = parseCidr(input);
    expect(parsed.ok).toBe(true);
    if (parsed.ok) {
      expect(parsed.cidr.text).toBe(text);
      expect(parsed.hostBitsSet).toBe(hostBitsSet);
    }
  });

  const rejected: { input: string; reason: string }[] = [
    { input: "", reason: "not an IPv4" },
    { input: "192.0.2", reason: "not an IPv4" },
    { input: "192.0.2.256", reason: "not an IPv4" },
    { input: "192.0.2.01", reason: "not an IPv4" },
    { input: "192.0.2.1/33", reason: "prefix must be 0-32" },
    { input: "192.0.2.1/", reason: "prefix" },
    { input: "192.0.2.1/08", reason: "prefix" },
    { input: "2001:db8::1/129", reason: "prefix must be 0-128" },
    { input: "2001:db8:::1", reason: "not an IPv4" },
    { input: "2001:db8::1::2", reason: "not an IPv4" },
    { input: "1:2:3:4:5:6:7:8:9", reason: "not an IPv4" },
    { input: "fe80::1%eth0", reason: "not an IPv4" },
    { input: "12345::", reason: "not an IPv4" },
    { input: "192.0.2.1; drop", reason: "not an IPv4" },
    { input: "192.0.2.0/24 }", reason: "prefix" },
  ];
  test.each(rejected)("rejects $input", ({ input, reason }) => {
    const parsed = parseCidr(input);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toContain(reason);
  });
});

describe("contains and order", () => {
  test.each([
    { outer: "192.0.2.0/24", inner: "192.0.2.200", expected: true },
    { outer: "192.0.2.0/24", inner: "192.0.3.1", expected: false },
    { outer: "192.0.2.0/24", inner: "192.0.0.0/16", expected: false },
    { outer: "0.0.0.0/0", inner: "203.0.113.1", expected: true },
    { outer: "0.0.0.0/0", inner: "2001:db8::1", expected: false },
    { outer: "2001:db8::/32", inner: "2001:db8:ff::1", expected: true },
  ])("$outer contains $inner: $expected", ({ outer, inner, expected }) => {
    expect(contains(cidr(outer), cidr(inner))).toBe(expected);
  });

  test("sorts IPv4 before IPv6, numerically, shorter prefix first", () => {
    const input = ["2001:db8::1", "203.0.113.1", "192.0.2.0/24", "192.0.2.0", "10.0.0.1", "::1"];
    expect(
      input
        .map(cidr)
        .sort(compareCidr)
        .map((c) => c.text),
    ).toEqual(["10.0.0.1", "192.0.2.0/24", "192.0.2.0", "203.0.113.1", "::1", "2001:db8::1"]);
  });
});

describe("sortByCidr: the order of compareCidr, stable, at any size", () => {
  let seed = 7;
  const random = (below: number) => Math.floor(((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31) * below);
  /** Addresses and networks alike in some bytes and not others, duplicates included, both families. */
  const entry = (i: number): { cidr: Cidr; i: number } => {
    const kind = random(4);
    if (kind === 0) return { cidr: makeCidr(4, [(0xcb007100 + random(4)) >>> 0], 30 + random(3)), i };
    if (kind === 1) return { cidr: makeCidr(4, [random(2 ** 32)], 8 + random(25)), i };
    if (kind === 2) return { cidr: makeCidr(6, [0x20010db8, 0xff0000, 0, random(3) * 65536 + random(3)], 126 + random(3)), i };
    return { cidr: makeCidr(6, [random(2 ** 32), random(2 ** 32), random(2 ** 32), random(2 ** 32)], random(129)), i };
  };
  const expected = (items: { cidr: Cidr; i: number }[]) => [...items].sort((a, b) => compareCidr(a.cidr, b.cidr));

  test.each([10, 255, 256, 300, 1_200, 5_000])("%i entries: shuffled, sorted, reversed, one family", (n) => {
    const items = Array.from({ length: n }, (_, i) => entry(i));
    const sorted = expected(items);
    for (const input of [items, sorted, [...sorted].reverse(), items.filter((e) => e.cidr.family === 6)]) {
      expect(sortByCidr(input, (e) => e.cidr).map((e) => e.i)).toEqual(expected(input).map((e) => e.i));
    }
  });

  test.each([
    [0, 0, 0],
    [3, 1_000, 2],
    [1_000, 3, 0],
    [0, 2_000, 5],
    [400, 300, 200],
    [1, 1, 1],
  ])("mergeByCidr of sorted lists of %i, %i and %i: a stable sort of them one after the other", (a, b, c) => {
    let i = 0;
    const lists = [a, b, c].map((n) => expected(Array.from({ length: n }, () => entry(i++))));
    expect(mergeByCidr(lists, (e) => e.cidr).map((e) => e.i)).toEqual(expected(lists.flat()).map((e) => e.i));
  });
});
