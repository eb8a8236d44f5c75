// apply for N names (each 2 A + 2 AAAA records) in the lab's namespaces, compiled binary, median of runs.
// The issue notes quote it for 3 and 300 names on both backends. Root only.
//   bun run build && bun bench/apply-names.ts [--names 3,300] [--runs 11] [--bin dist/domainwall]
import { parseArgs } from "node:util";
import { createLab } from "../test/lab/lab.ts";
import { median, mustRun } from "./measure.ts";
import { nameOf, recordsFor } from "./workloads.ts";

const { values } = parseArgs({ options: { names: { type: "string", default: "3,300" }, runs: { type: "string", default: "11" }, bin: { type: "string", default: "dist/domainwall" } } });
const runs = Number(values.runs);
const bin = Bun.fileURLToPath(new URL(`../${values.bin}`, import.meta.url));
const lab = await createLab();
try {
  console.log(`| names | backend | median wall ms | min | max | median resolve / render / load ms (from the binary's summary) |\n|---:|---|---:|---:|---:|---|`);
  for (const n of values.names.split(",").map(Number)) {
    await lab.setRecords(recordsFor(n));
    const hosts = Array.from({ length: n }, (_, i) => nameOf(i)).join(",");
    for (const backend of ["nft", "iptables-legacy"]) {
      const wall: number[] = [];
      const parts: { resolveMs: number; renderMs: number; loadMs: number }[] = [];
      for (let run = 0; run < runs; run++) {
        const sample = await mustRun(["ip", "netns", "exec", lab.app, bin, "apply", "--backend", backend, "--hosts", hosts, "--log-format", "json"]);
        wall.push(sample.wallMs);
        const summary = sample.stderr.split("\n").filter((l) => l.includes('"summary"')).map((l) => JSON.parse(l).summary)[0];
        parts.push(summary);
        await mustRun(["ip", "netns", "exec", lab.app, bin, "remove", "--backend", backend]);
      }
      const m = (key: "resolveMs" | "renderMs" | "loadMs") => median(parts.map((p) => p[key]));
      console.log(`| ${n} | ${backend} | ${median(wall).toFixed(1)} | ${Math.min(...wall).toFixed(1)} | ${Math.max(...wall).toFixed(1)} | ${m("resolveMs")} / ${m("renderMs")} / ${m("loadMs")} |`);
    }
  }
  console.log(`\nwall time includes \`ip netns exec\`; ${runs} runs each, each from an empty namespace (remove after each apply)`);
} finally {
  await lab.close();
}
