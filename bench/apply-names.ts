// apply for N names (each 2 A + 2 AAAA records) in the lab's namespaces, compiled binary, median of runs.
// The issue notes quote it for 3 and 300 names on both backends. Root only.
//   bun run build && bun bench/apply-names.ts [--names 3,300] [--runs 11] [--bin dist/domainwall[,/tmp/old/domainwall]] [--backends nft,iptables-legacy]
// Several binaries (comma-separated, relative to the repository or absolute) are measured side by
// side: their runs alternate, so a change in the machine's load touches each alike.
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { createLab } from "../test/lab/lab.ts";
import { median, mustRun } from "./measure.ts";
import { nameOf, recordsFor } from "./workloads.ts";

const { values } = parseArgs({
  options: {
    names: { type: "string", default: "3,300" },
    runs: { type: "string", default: "11" },
    bin: { type: "string", default: "dist/domainwall" },
    backends: { type: "string", default: "nft,iptables-legacy" },
  },
});
const runs = Number(values.runs);
const bins = values.bin.split(",").map((b) => resolve(import.meta.dir, "..", b));
const lab = await createLab();
try {
  console.log(
    `load average before: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}\n`,
  );
  console.log(
    `| names | backend | binary | median wall ms | min | max | median CPU ms | median resolve / render / load ms (from the binary's summary) |\n|---:|---|---|---:|---:|---:|---:|---|`,
  );
  for (const n of values.names.split(",").map(Number)) {
    await lab.setRecords(recordsFor(n));
    const hosts = Array.from({ length: n }, (_, i) => nameOf(i)).join(",");
    for (const backend of values.backends.split(",")) {
      const wall = bins.map((): number[] => []);
      const cpu = bins.map((): number[] => []);
      const parts = bins.map((): { resolveMs: number; renderMs: number; loadMs: number }[] => []);
      for (let run = 0; run < runs; run++) {
        for (const [b, bin] of bins.entries()) {
          const sample = await mustRun([
            "ip",
            "netns",
            "exec",
            lab.app,
            bin,
            "apply",
            "--backend",
            backend,
            "--hosts",
            hosts,
            "--log-format",
            "json",
          ]);
          wall[b]?.push(sample.wallMs);
          cpu[b]?.push(sample.cpuMs);
          const summary = sample.stderr
            .split("\n")
            .filter((l) => l.includes('"summary"'))
            .map((l) => JSON.parse(l).summary)[0];
          parts[b]?.push(summary);
          await mustRun(["ip", "netns", "exec", lab.app, bin, "remove", "--backend", backend]);
        }
      }
      for (const [b, bin] of bins.entries()) {
        const w = wall[b] ?? [];
        const m = (key: "resolveMs" | "renderMs" | "loadMs") => median((parts[b] ?? []).map((p) => p[key]));
        console.log(
          `| ${n} | ${backend} | ${bin} | ${median(w).toFixed(1)} | ${Math.min(...w).toFixed(1)} | ${Math.max(...w).toFixed(1)} | ${median(cpu[b] ?? []).toFixed(1)} | ${m("resolveMs")} / ${m("renderMs")} / ${m("loadMs")} |`,
        );
      }
    }
  }
  console.log(`\nwall time includes \`ip netns exec\`; ${runs} runs each, each from an empty namespace (remove after each apply)`);
  console.log(
    `load average after: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
} finally {
  await lab.close();
}
