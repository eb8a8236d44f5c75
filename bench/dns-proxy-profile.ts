// Where the DNS proxy's time goes on new names: `perf` on the answering worker while an open-loop
// load runs through it (bench/dns-load.ts). As root:
//   bun run build && DOMAINWALL_BIN=$PWD/dist/domainwall bun bench/dns-proxy-profile.ts [--rate 10000] [--seconds 8] [--out DIR]
// Writes DIR/perf.data and prints the load's result, the worker's CPU (user, system) over the load,
// and `perf report`'s top entries (self time, kernel and user; JIT frames show as unknown addresses).
import { parseArgs } from "node:util";
import { loadavg } from "node:os";
import { readFileSync } from "node:fs";
import { ADDR, createLab } from "../test/lab/lab.ts";

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "10000" },
    seconds: { type: "string", default: "8" },
    out: { type: "string", default: "/tmp/domainwall-profile" },
    /** Also Bun's own profile of each process (BUN_OPTIONS=--cpu-prof-md), written to --out when the watch stops. */
    "cpu-prof": { type: "boolean", default: false },
  },
});
const load = `${import.meta.dir}/dns-load.ts`;
const lab = await createLab({ cdn: { names: [], wildcards: ["w.example"] } });
const children: Bun.Subprocess[] = [];
const ticks = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return { user: Number(fields[11]), system: Number(fields[12]) };
};
/** The proxy's count of forwarded queries (its /metrics). */
const forwarded = async () =>
  Number(
    (await lab.exec("app", ["curl", "-s", "http://127.0.0.1:9464/metrics"])).stdout.match(
      /domainwall_dns_queries_total\{outcome="forwarded"\} (\d+)/,
    )?.[1] ?? Number.NaN,
  );
try {
  const ready = `${lab.dir}/ready`;
  const watch = lab.spawnDomainwall(
    ["watch", "--dns-proxy", "--hosts", "*.w.example", "--ready-file", ready, "--metrics-addr", "127.0.0.1:9464"],
    {
      env: {
        DOMAINWALL_BACKEND: "nft",
        DOMAINWALL_RUN_DIR: `${lab.dir}/run`,
        ...(values["cpu-prof"] && { BUN_OPTIONS: `--cpu-prof-md --cpu-prof-dir=${values.out}` }),
      },
    },
  );
  children.push(watch);
  for (let i = 0; i < 300 && !(await Bun.file(ready).exists()); i++) await Bun.sleep(100);
  if (!(await Bun.file(ready).exists())) throw new Error(`watch did not start: ${await new Response(watch.stderr).text()}`);
  const worker = Number(
    Bun.spawnSync(["pgrep", "-P", String(watch.pid)])
      .stdout.toString()
      .trim()
      .split("\n")[0],
  );
  if (!Number.isInteger(worker) || worker <= 0) throw new Error("no worker process");
  const warm = await lab.exec("app", [process.execPath, load, "rate", ADDR.dnsV4, "53", "2000", "2", "w.example"], { timeoutMs: 60_000 });
  console.log(`warm-up: ${warm.stdout.trim()}`);
  Bun.spawnSync(["mkdir", "-p", values.out ?? ""]);
  const data = `${values.out}/perf.data`;
  const perf = Bun.spawn(["perf", "record", "-F", "499", "-g", "-o", data, "-p", String(worker)], { stdout: "ignore", stderr: "ignore" });
  await Bun.sleep(300);
  const forwardedBefore = await forwarded();
  const upstream = Number(
    Bun.spawnSync(["pgrep", "-f", `${lab.dir}/cdn.json`])
      .stdout.toString()
      .trim()
      .split("\n")[0],
  );
  const before = ticks(worker);
  const upstreamBefore = ticks(upstream);
  const result = await lab.exec(
    "app",
    [process.execPath, load, "rate", ADDR.dnsV4, "53", values.rate ?? "", values.seconds ?? "", "w.example"],
    {
      timeoutMs: 120_000,
    },
  );
  const after = ticks(worker);
  const upstreamAfter = ticks(upstream);
  perf.kill("SIGINT");
  await perf.exited;
  const seconds = Number(values.seconds) + 1.1;
  const answered = (await forwarded()) - forwardedBefore;
  const rss = readFileSync(`/proc/${worker}/status`, "utf8").match(/VmHWM:\s+(\d+) kB/)?.[1];
  console.log(`worker peak RSS (VmHWM): ${(Number(rss) / 1024).toFixed(1)} MiB`);
  console.log(
    `worker CPU per forwarded query: ${((((after.user - before.user + after.system - before.system) / 100) * 1e6) / answered).toFixed(1)} µs (user ${((((after.user - before.user) / 100) * 1e6) / answered).toFixed(1)} µs) over ${answered} queries`,
  );
  console.log(`load ${values.rate} q/s for ${values.seconds} s: ${result.stdout.trim()}`);
  console.log(
    `worker CPU over the load (incl. 1.1 s tail): user ${((after.user - before.user) / seconds).toFixed(1)} %, system ${((after.system - before.system) / seconds).toFixed(1)} % of a core; load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}`,
  );
  console.log(
    `the lab's upstream (cdn-dns.ts) over the load: user ${((upstreamAfter.user - upstreamBefore.user) / seconds).toFixed(1)} %, system ${((upstreamAfter.system - upstreamBefore.system) / seconds).toFixed(1)} %`,
  );
  const status = await lab.domainwall(["status", "--json"], { env: { DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: `${lab.dir}/run` } });
  const proxy = (JSON.parse(status.stdout || "{}") as { dnsProxy?: Record<string, unknown> }).dnsProxy ?? {};
  console.log(`proxy status: ${JSON.stringify({ ...proxy, sets: undefined })}`);
  const metrics = (await lab.exec("app", ["curl", "-s", "http://127.0.0.1:9464/metrics"])).stdout
    .split("\n")
    .filter((l) => /^domainwall_dns_(queries|upstream|undeliver|admission_seconds_(sum|count))/.test(l));
  console.log(`proxy metrics:\n${metrics.join("\n")}`);
  const udp = (await lab.exec("app", ["cat", "/proc/net/snmp"])).stdout.split("\n").filter((l) => l.startsWith("Udp:"));
  const netUdp = (await lab.exec("net", ["cat", "/proc/net/snmp"])).stdout.split("\n").filter((l) => l.startsWith("Udp:"));
  console.log(`UDP counters, app namespace then the upstream's:\n${udp.join("\n")}\n${netUdp.at(-1)}`);
  const report = Bun.spawnSync([
    "perf",
    "report",
    "-i",
    data,
    "--no-children",
    "--sort",
    "dso,sym",
    "--stdio",
    "-g",
    "none",
    "--percent-limit",
    "0.7",
  ]);
  if (values["cpu-prof"]) {
    watch.kill("SIGTERM");
    await watch.exited;
  }
  console.log(
    report.stdout
      .toString()
      .split("\n")
      .filter((l) => l && !l.startsWith("#"))
      .slice(0, 60)
      .join("\n"),
  );
} finally {
  for (const child of children) child.kill("SIGKILL");
  await Promise.all(children.map((c) => c.exited));
  await lab.domainwall(["remove"], { env: { DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: `${lab.dir}/run` } });
  await lab.close();
}
