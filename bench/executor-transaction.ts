// One `add element ... timeout` transaction through each NftExecutor, side by side: libnftables in
// this process against an `nft -f -` process (what domainwall spawns without the library). Run it
// inside a network namespace, as root (bench/run.ts does: `ip netns exec NS bun THIS --runs N`):
// the library acts on the caller's namespace. Rounds alternate (10 in process, then 10 processes)
// so both see the same machine; prints JSON { inProcessUs, processUs, runs } with the medians in
// µs. Not one of each in turn: after another process's commit, libnftables first refreshes its
// cache (about 0.3 ms here), which domainwall, the only writer of its table, does not meet.
// It makes and deletes its own table (dwbench_executor); documentation addresses only.
import { parseArgs } from "node:util";
import type { NftExecutor } from "../src/backends/nft/executor.ts";
import { loadLibnftables } from "../src/backends/nft/libnftables.ts";
import { processExecutor } from "../src/backends/nft/process-executor.ts";
import { runProcess } from "../src/run.ts";
import { median } from "./measure.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "500" } } });
const runs = Number(values.runs);
const loaded = loadLibnftables();
if (!loaded.ok) throw new Error(loaded.reason);
const TABLE = "dwbench_executor";

const must = async (executor: NftExecutor, script: string) => {
  const result = await executor.run(script);
  if (result.code !== 0) throw new Error(`${executor.name}: ${result.stderr}`);
};
const timed = async (executor: NftExecutor, script: string): Promise<number> => {
  const started = performance.now();
  await must(executor, script);
  return (performance.now() - started) * 1000;
};

const inProcess = loaded.executor;
const spawning = processExecutor(runProcess);
await must(inProcess, `table inet ${TABLE} {\n\tset learned {\n\t\ttype ipv6_addr\n\t\tflags timeout\n\t}\n}\n`);
const samples = { inProcess: [] as number[], process: [] as number[] };
try {
  // Distinct elements, like answers arriving one by one; one warm-up round first.
  let k = 0;
  const element = () => `add element inet ${TABLE} learned { 2001:db8:b:${(k++ & 0xffff).toString(16)}::1 timeout 60s }\n`;
  for (let round = -1; round < Math.ceil(runs / 10); round++) {
    for (const [executor, into] of [
      [inProcess, samples.inProcess],
      [spawning, samples.process],
    ] as const) {
      for (let i = 0; i < 10; i++) {
        const us = await timed(executor, element());
        if (round >= 0) into.push(us);
      }
    }
  }
} finally {
  await must(inProcess, `delete table inet ${TABLE}\n`);
  await inProcess.close();
}
console.log(JSON.stringify({ runs: samples.inProcess.length, inProcessUs: median(samples.inProcess), processUs: median(samples.process) }));
