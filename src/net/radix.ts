/**
 * A stable LSD radix sort of `n` items by `rows` bytes each, without comparing items: `digits`
 * holds byte `d` (least significant first) of item `i` at `d * n + i`, so that each pass reads one
 * row, and rows that are the same for every item are skipped. Returns the items' indices in order,
 * or undefined when they already are in order (a sorted list sorted again costs one read).
 */
export function radixOrder(digits: Uint8Array, n: number, rows: number): Uint32Array | undefined {
  if (isSortedBy(digits, n, rows)) return undefined;
  let order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  let next = new Uint32Array(n);
  const starts = new Uint32Array(257);
  for (let d = 0; d < rows; d++) {
    const row = digits.subarray(d * n, (d + 1) * n);
    starts.fill(0);
    for (let i = 0; i < n; i++) {
      const slot = (row[i] ?? 0) + 1;
      starts[slot] = (starts[slot] ?? 0) + 1;
    }
    if (starts.includes(n)) continue;
    for (let v = 1; v < starts.length; v++) starts[v] = (starts[v] ?? 0) + (starts[v - 1] ?? 0);
    for (let i = 0; i < n; i++) {
      const index = order[i] ?? 0;
      const digit = row[index] ?? 0;
      next[starts[digit] ?? 0] = index;
      starts[digit] = (starts[digit] ?? 0) + 1;
    }
    [order, next] = [next, order];
  }
  return order;
}

/** Whether the items already are in order. */
function isSortedBy(digits: Uint8Array, n: number, rows: number): boolean {
  for (let i = 1; i < n; i++) {
    for (let d = rows - 1; d >= 0; d--) {
      const previous = digits[d * n + i - 1] ?? 0;
      const current = digits[d * n + i] ?? 0;
      if (previous < current) break;
      if (previous > current) return false;
    }
  }
  return true;
}
