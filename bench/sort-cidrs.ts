// `bun bench/sort-cidrs.ts`: sortByCidr (radix sort of indices) against Array.prototype.sort with
// compareCidr, on 100,000 allow entries as config and policy sort them: shuffled (an allow file in
// no order), already sorted (the policy sorting config's list again) and mixed families.
import { compareCidr, makeCidr, sortByCidr, type Cidr } from "../src/net/ip.ts";

const N = 100_000;
const RUNS = 9;
let seed = 42;
const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const entries = (n: number, v6Share: number) =>
  Array.from({ length: n }, (_, i) => {
    const v6 = random() < v6Share;
    const cidr = v6
      ? makeCidr(6, [0x20010db8, Math.floor(random() * 2 ** 32), i, 0], 64)
      : makeCidr(4, [Math.floor(random() * 2 ** 32)], 24 + (i % 9));
    return { cidr, source: `allow.txt:${i + 1}` };
  });
const shuffled = entries(N, 0);
const mixed = entries(N, 0.3);
const sorted = [...shuffled].sort((a, b) => compareCidr(a.cidr, b.cidr));

const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
function time(sort: (items: { cidr: Cidr }[]) => unknown, items: { cidr: Cidr }[]): number {
  const runs: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const started = performance.now();
    sort(items);
    runs.push(performance.now() - started);
  }
  return median(runs);
}
const radix = (items: { cidr: Cidr }[]) => sortByCidr(items, (e) => e.cidr);
const comparator = (items: { cidr: Cidr }[]) => [...items].sort((a, b) => compareCidr(a.cidr, b.cidr));
for (const [name, items] of [
  ["shuffled IPv4", shuffled],
  ["sorted IPv4", sorted],
  ["shuffled, 30% IPv6", mixed],
] as const) {
  const [r, c] = [time(radix, [...items]), time(comparator, [...items])];
  console.log(
    `${name.padEnd(20)} radix ${r.toFixed(1).padStart(6)} ms   comparator ${c.toFixed(1).padStart(6)} ms   (${(c / r).toFixed(2)}x)`,
  );
}
