// Admission latency: createAdmitter (src/backends/nft/admitter.ts) putting one answer's address into the
// proxy sets, through libnftables in this process and through `nft -f -` processes, side by side.
// Run it as root in a network namespace of its own (bench/run.ts does: `unshare --net bun THIS
// --admissions N`): it declares `table inet domainwall` with the proxy sets and deletes it at the end.
// Each admission is awaited before the next (one answer at a time: no coalescing), half IPv4 and
// half IPv6. IPv6 answers are fresh addresses of 2001:db8::/32; IPv4 answers cycle through
// 198.51.100.0/24 with a TTL 40 s longer each lap, so every one is sent to the kernel (a new element
// on the first lap, a longer timeout after). Rounds of 500 alternate between the two executors (a
// libnftables context refreshes its cache after another process's commit, once per round);
// one warm-up round each first. Prints JSON { admissions, load: [before, after], libnftables:
// { p50Us, p99Us }, nft: { p50Us, p99Us } }.
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import type { NftExecutor } from "../src/backends/nft/executor.ts";
import { loadLibnftables } from "../src/backends/nft/libnftables.ts";
import { processExecutor } from "../src/backends/nft/process-executor.ts";
import { type SetAdmission, createAdmitter } from "../src/backends/nft/admitter.ts";
import { runProcess } from "../src/run.ts";

const { values } = parseArgs({ options: { admissions: { type: "string", default: "10000" } } });
const admissions = Number(values.admissions);
const ROUND = Math.min(500, admissions);
const loaded = loadLibnftables();
if (!loaded.ok) throw new Error(loaded.reason);
const inProcess = loaded.executor;
const spawning = processExecutor(runProcess);

const must = async (executor: NftExecutor, script: string) => {
  const result = await executor.run(script);
  if (result.code !== 0) throw new Error(`${executor.name}: ${result.stderr}`);
};
const percentile = (sorted: readonly number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;

const settings = { now: () => Date.now(), minTtlMs: 5_000, maxTtlMs: 86_400_000, graceMs: 30_000 };
const admitters = {
  libnftables: createAdmitter({ executor: inProcess, ...settings }),
  nft: createAdmitter({ executor: spawning, ...settings }),
};
const samples = { libnftables: [] as number[], nft: [] as number[] };

// One counter for both: every admission is new to the kernel, whichever executor sends it.
let k = 0;
function nextAnswer(): SetAdmission {
  const i = k++;
  if (i % 2 === 1) {
    const n = i >> 1;
    return {
      name: "v6.example.com",
      entry: "v6.example.com",
      addresses: [{ address: `2001:db8:a:${((n >> 16) & 0xffff).toString(16)}:${(n & 0xffff).toString(16)}::1`, family: 6, ttl: 60 }],
    };
  }
  const n = i >> 1;
  return {
    name: "v4.example.com",
    entry: "v4.example.com",
    addresses: [{ address: `198.51.100.${n & 255}`, family: 4, ttl: 60 + 40 * (n >> 8) }],
  };
}

const loadBefore = loadavg()[0]!;
await must(
  inProcess,
  "table inet domainwall {\n\tset proxy_v4 {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t}\n\tset proxy_v6 {\n\t\ttype ipv6_addr\n\t\tflags timeout\n\t}\n}\n",
);
try {
  for (let round = -1; round < Math.ceil(admissions / ROUND); round++) {
    for (const which of ["libnftables", "nft"] as const) {
      for (let i = 0; i < ROUND; i++) {
        const answer = nextAnswer();
        const started = performance.now();
        await admitters[which].admit(answer);
        const us = (performance.now() - started) * 1000;
        if (round >= 0 && samples[which].length < admissions) samples[which].push(us);
      }
    }
  }
} finally {
  await must(inProcess, "delete table inet domainwall\n");
  await inProcess.close();
}
const summary = (us: number[]) => {
  const sorted = [...us].sort((a, b) => a - b);
  return { p50Us: Math.round(percentile(sorted, 50)), p99Us: Math.round(percentile(sorted, 99)) };
};
console.log(
  JSON.stringify({
    admissions: samples.libnftables.length,
    load: [loadBefore, loadavg()[0]],
    libnftables: summary(samples.libnftables),
    nft: summary(samples.nft),
  }),
);
