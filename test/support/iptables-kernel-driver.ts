// What src/backends/iptables/kernel.ts says of this process's network namespace, for tests that
// need root: `bun test/support/iptables-kernel-driver.ts` (inside the namespace).
//   stdout: JSON { empty, filterListed: { 4, 6 } } — legacyFilterEmpty as the World asks it, and
//   whether /proc lists each family's filter table.
import { readFile } from "node:fs/promises";
import { filterInfo, legacyFilterEmpty, listsFilter, TABLE_NAMES } from "../../src/backends/iptables/kernel.ts";

const read = (path: string) => readFile(path, "utf8").catch(() => undefined);
const empty = await legacyFilterEmpty({ readFile: read, filterInfo });
console.log(
  JSON.stringify({ empty, filterListed: { 4: listsFilter(await read(TABLE_NAMES[4])), 6: listsFilter(await read(TABLE_NAMES[6])) } }),
);
