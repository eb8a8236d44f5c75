// `bun bench/cidrs-mixed.ts [--runs N] [--count N] [--bin PATH]... [--no-build]`: the mixed
// 100,000-CIDR row of `bun run bench` alone, for a quick loop. Root only. In a lab namespace
// (test/lab/lab.ts), alternates `domainwall apply --allow-file` (each --bin in turn, so an old and a
// new binary see the same machine) with the floor (`nft -f -` of the same CIDRs sorted, one interval
// set per family), each from an empty namespace, and prints medians, the binary's own split, peak
// RSS and the ratio to the floor measured in the same run.
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { createLab } from "../test/lab/lab.ts";
import { applyTimes, measure, median, mustRun, type Sample } from "./measure.ts";
import { allowFile, mixedCidrs, NFT_FLOOR_TABLE, nftFloor } from "./workloads.ts";

const root = resolve(import.meta.dir, "..");
const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    runs: { type: "string", default: "5" },
    count: { type: "string", default: "100000" },
    bin: { type: "string", multiple: true },
    "no-build": { type: "boolean", default: false },
  },
});
if (process.getuid?.() !== 0) throw new Error("the benchmark needs root (network namespaces)");
const bins = (values.bin ?? [`${root}/dist/domainwall`]).map((b) => resolve(b));
if (values.bin === undefined && !values["no-build"]) {
  const build = Bun.spawnSync([process.execPath, "run", "build"], { cwd: root, stdout: "inherit", stderr: "inherit" });
  if (!build.success) throw new Error("bun run build failed");
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
const loadAtStart = load();
const lab = await createLab();
try {
  const list = mixedCidrs(Number(values.count));
  const file = `${lab.dir}/allow-mixed.txt`;
  writeFileSync(file, allowFile(list.shuffled));
  const floorText = nftFloor(list.sortedV6, list.sortedV4);
  const inApp = (...argv: string[]) => ["ip", "netns", "exec", lab.app, ...argv];
  const empty = async () => {
    for (const table of ["domainwall", NFT_FLOOR_TABLE]) await measure(inApp("nft", "delete", "table", "inet", table));
    await Bun.sleep(300); // the kernel frees a deleted table's elements in the background
  };
  const runs: { name: string; once: () => Promise<Sample> }[] = [
    ...bins.map((bin) => ({
      name: bin,
      once: () =>
        mustRun(inApp(bin, "apply", "--backend", "nft", "--hosts", "203.0.113.1", "--allow-file", file, "--log-format", "json"), {
          sampleEveryMs: 10,
        }),
    })),
    { name: "floor (nft -f -)", once: () => mustRun(inApp("nft", "-f", "-"), { stdin: floorText }) },
  ];
  const samples = runs.map(() => [] as Sample[]);
  for (let i = -1; i < Number(values.runs); i++) {
    for (const [k, run] of runs.entries()) {
      await empty();
      const sample = await run.once();
      if (i >= 0) samples[k]!.push(sample);
    }
  }
  await empty();
  const floorMs = median(samples.at(-1)!.map((s) => s.wallMs));
  const f = (n: number) => n.toFixed(0).padStart(5);
  for (const [k, run] of runs.entries()) {
    const s = samples[k]!;
    const wall = median(s.map((x) => x.wallMs));
    const split = k < bins.length ? s.map((x) => applyTimes(x.stderr)) : undefined;
    const splitText = split
      ? ` (resolve ${f(median(split.map((t) => t.resolveMs)))}, render ${f(median(split.map((t) => t.renderMs)))}, load ${f(median(split.map((t) => t.loadMs)))})`
      : "";
    const peak = `self ${f(Math.max(...s.map((x) => x.selfPeakMiB)))} MiB, tree ${f(Math.max(...s.map((x) => x.treePeakMiB)))} MiB`;
    console.log(
      `${f(wall)} ms ${(wall / floorMs).toFixed(2)}x${splitText}; ${peak}; ${run.name} [${s.map((x) => x.wallMs.toFixed(0)).join(" ")}]`,
    );
  }
  console.log(`load average: at start ${loadAtStart}, at end ${load()}`);
} finally {
  await lab.close();
}
