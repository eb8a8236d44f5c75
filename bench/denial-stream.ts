// The live denial stream's cost: CPU of `domainwall watch` (no proxy) idle and under a flood of
// denied packets, this build beside another (the one before the stream), in the test lab's
// namespaces. Root only. Usage:
//   bun run build && bun bench/denial-stream.ts --base /path/to/older/domainwall [--bin dist/domainwall] [--seconds 15] [--rounds 3]
// Phases per round and binary: idle; 1,000 datagrams/s at one denied destination; 1,000/s round
// 4,000 denied destinations (the recording set full: the largest read). Prints each phase's CPU
// share of one core (median over rounds) and the log lines the stream wrote in it.
import { parseArgs } from "node:util";
import { createLab } from "../test/lab/lab.ts";
import { median } from "./measure.ts";

const { values } = parseArgs({
  options: {
    bin: { type: "string", default: "dist/domainwall" },
    base: { type: "string" },
    seconds: { type: "string", default: "15" },
    rounds: { type: "string", default: "3" },
  },
});
const seconds = Number(values.seconds);
const CLK_TCK = 100;
const cpuSeconds = async (pid: number) => {
  const fields = (await Bun.file(`/proc/${pid}/stat`).text()).replace(/^.*\) /, "").split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
};

const lab = await createLab();
const PHASES = [
  { name: "idle", flood: undefined },
  { name: "1,000/s at one destination", flood: ["203.0.113.20", "9999", "1000", String(seconds), "1"] },
  { name: "1,000/s round 4,000 destinations", flood: ["203.0.113.20", "20000", "1000", String(seconds), "4000"] },
] as const;
const binaries = [{ label: "this build", bin: values.bin }, ...(values.base ? [{ label: "base", bin: values.base }] : [])];
const results = new Map<string, { cpu: number[]; lines: number[] }>();
try {
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const { label, bin } of round % 2 === 0 ? binaries : [...binaries].reverse()) {
      const env = { DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: `${lab.dir}/run`, DOMAINWALL_BIN: bin };
      const ready = `${lab.dir}/ready-${round}-${label.replace(/ /g, "")}`;
      process.env.DOMAINWALL_BIN = bin;
      const child = lab.spawnDomainwall(["watch", "--hosts", "api.example", "--ready-file", ready], { env });
      let stderr = "";
      void (async () => {
        for await (const chunk of child.stderr) stderr += new TextDecoder().decode(chunk);
      })();
      while (!(await Bun.file(ready).exists())) await Bun.sleep(100);
      await Bun.sleep(2000); // past start-up
      for (const phase of PHASES) {
        const [cpu0, lines0, t0] = [await cpuSeconds(child.pid), stderr.split("\n").length, performance.now()];
        if (phase.flood === undefined) await Bun.sleep(seconds * 1000);
        else
          await lab.exec("app", [process.execPath, `${import.meta.dir}/../test/lab/flood-one.ts`, ...phase.flood], { timeoutMs: 120_000 });
        const share = (await cpuSeconds(child.pid)) - cpu0;
        const key = `${label}: ${phase.name}`;
        const entry = results.get(key) ?? { cpu: [], lines: [] };
        entry.cpu.push((100 * share) / ((performance.now() - t0) / 1000));
        entry.lines.push(stderr.split("\n").length - lines0);
        results.set(key, entry);
      }
      child.kill("SIGTERM");
      await child.exited;
      await lab.domainwall(["remove"], { env });
    }
  }
} finally {
  await lab.close();
}
const load = (await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ");
console.log(`watch CPU, share of one core, median of ${values.rounds} rounds of ${seconds} s per phase (load ${load}):`);
for (const [key, { cpu, lines }] of results)
  console.log(
    `  ${key.padEnd(48)} ${median(cpu).toFixed(2)} %   (rounds: ${cpu.map((c) => c.toFixed(2)).join(", ")}; log lines: ${lines.join(", ")})`,
  );
