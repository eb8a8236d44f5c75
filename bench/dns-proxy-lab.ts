// The DNS proxy end to end, as root, with the issue's three figures:
//   bun run build && DOMAINWALL_BIN=$PWD/dist/domainwall bun bench/dns-proxy-lab.ts
//     [--queries 10000] [--round 100] [--rates 2000,4000] [--seconds 10] [--soak SECONDS] [--soak-rate 500]
// In the namespace lab with the CDN-like server (test/lab/cdn-dns.ts: 2 random addresses out of 100
// per A answer, TTL 30 s), `watch --dns-proxy` runs with its real admission (libnftables in process:
// each answer's new or noticeably longer elements go into the kernel before the reply), and an
// app-side client (bench/dns-proxy-client.ts) queries the resolver's address:
//   latency     N A queries one at a time, rounds of --round direct (a socket of the proxy's group,
//               which skips the redirect) alternating with rounds through the proxy: p50/p99 of each
//               and the difference; kernel transactions counted with `nft monitor`.
//   throughput  open loop at each of --rates queries/s for --seconds through the proxy (and directly
//               at the highest rate, the lab's own ceiling): lost (no answer in 1 s), late (> 100 ms),
//               the achieved sending rate.
//   memory      the PSS of the watch's processes (supervisor and worker), sampled every second during the above; with --soak S, a
//               steady --soak-rate of listed, wildcard and fresh unlisted names for S seconds, RSS at
//               start, every minute and at the end, and the least-squares slope.
// Prints Markdown, then one line `RESULT {json}` for bench/run.ts. Documentation addresses only.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createLab, type Lab } from "../test/lab/lab.ts";

const { values } = parseArgs({
  options: {
    queries: { type: "string", default: "10000" },
    round: { type: "string", default: "100" },
    rates: { type: "string", default: "2000,4000" },
    seconds: { type: "string", default: "10" },
    soak: { type: "string", default: "0" },
    "soak-rate": { type: "string", default: "500" },
    // The slope is judged after this much of the soak: before it, the runtime is still warming up (JIT, caches).
    "soak-warmup": { type: "string", default: "60" },
  },
});
const queries = Number(values.queries);
const rates = (values.rates ?? "").split(",").filter(Boolean).map(Number);
const seconds = Number(values.seconds);
const soakSeconds = Number(values.soak);
const soakRate = Number(values["soak-rate"]);
const soakWarmup = Number(values["soak-warmup"]);

const CDN = { names: ["cdn.example", "a.w.example", "b.w.example"] };
const HOSTS = "cdn.example,*.w.example";
const ADMITTING = ["cdn.example"];
const LISTED = ["cdn.example", "a.w.example", "b.w.example"];
const MIXED = ["cdn.example", "a.w.example", "unlisted", "b.w.example", "unlisted"];
const client = `${import.meta.dir}/dns-proxy-client.ts`;

interface Stats {
  readonly n: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}
interface RateResult extends Stats {
  readonly sent: number;
  readonly achieved: number;
  readonly answered: number;
  readonly lost: number;
  readonly late: number;
}

/** `pid` and its descendants: `watch --dns-proxy` is a supervisor and its worker (src/proxy/supervisor.ts). */
function family(pid: number): number[] {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    try {
      for (const child of readFileSync(`/proc/${pids[i]}/task/${pids[i]}/children`, "utf8").trim().split(/\s+/))
        if (child !== "") pids.push(Number(child));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}
const sumOver = (pid: number, of: (p: number) => number) =>
  family(pid).reduce((sum, p) => {
    try {
      return sum + of(p);
    } catch {
      return sum;
    }
  }, 0);

/**
 * Memory of the watch's processes together, MiB: their proportional set sizes (a supervisor and its
 * worker share the binary's pages, counted once). The namespaces share the host's PID space.
 */
const rssMiB = (pid: number): number =>
  sumOver(pid, (p) => Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, "utf8"))?.[1]) / 1024);

/** User + system CPU seconds of a process so far (all its threads). */
function cpuSeconds(pid: number): number {
  return sumOver(pid, ownCpuSeconds);
}
function ownCpuSeconds(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** `ip netns exec` execs the command in place; should a version fork instead, take its child. */
function watchPid(pid: number): number {
  if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== "ip") return pid;
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(" ");
  return Number(children[0]);
}

/** Samples RSS every `everyMs` until stopped; `peak` and `samples` ([seconds since start, MiB]). */
function sampler(pid: number, everyMs: number) {
  const started = performance.now();
  const samples: [number, number][] = [];
  const take = () => samples.push([(performance.now() - started) / 1000, rssMiB(pid)]);
  take();
  const timer = setInterval(take, everyMs);
  return {
    samples,
    peak: () => Math.max(...samples.map(([, m]) => m)),
    stop: () => (clearInterval(timer), take()),
  };
}

/** Least-squares slope of RSS over time, MiB per minute. */
function slopePerMinute(samples: readonly [number, number][]): number {
  const n = samples.length;
  const mx = samples.reduce((s, [x]) => s + x, 0) / n;
  const my = samples.reduce((s, [, y]) => s + y, 0) / n;
  const num = samples.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const den = samples.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return den === 0 ? 0 : (num / den) * 60;
}

async function inApp<T>(lab: Lab, argv: string[], timeoutMs: number): Promise<T> {
  const result = await lab.exec("app", [process.execPath, client, ...argv], { timeoutMs });
  if (result.code !== 0) throw new Error(`client ${argv.join(" ")} failed (${result.code}): ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

const ms = (x: number) => `${x.toFixed(3)} ms`;
const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

const lab = await createLab({ cdn: CDN });
try {
  const ready = `${lab.dir}/ready`;
  const watch = lab.spawnDomainwall(["watch", "--dns-proxy", "--hosts", HOSTS, "--ready-file", ready], {
    env: { DOMAINWALL_RUN_DIR: `${lab.dir}/run` },
  });
  // Drain its output (a full pipe would stall the proxy); keep the tail for errors.
  let tail = "";
  void (async () => {
    for await (const chunk of watch.stderr) tail = (tail + new TextDecoder().decode(chunk)).slice(-4000);
  })();
  void new Response(watch.stdout).text();
  for (let i = 0; i < 300 && !(await Bun.file(ready).exists()); i++) await Bun.sleep(50);
  if (!(await Bun.file(ready).exists())) throw new Error(`watch --dns-proxy did not turn ready:\n${tail}`);
  const pid = watchPid(watch.pid);
  const loadAtStart = load();
  const rss = sampler(pid, 1000);
  const rssAtStart = rssMiB(pid);
  console.error(`dns-proxy-lab: watch pid ${pid}, RSS ${rssAtStart.toFixed(1)} MiB, load ${loadAtStart}`);

  // (a) latency
  const stopCount = await lab.countTransactions();
  const lat = await inApp<{ direct: Stats & { lost: number }; proxied: Stats & { lost: number } }>(
    lab,
    ["latency", String(queries), values.round ?? "100", ...ADMITTING],
    queries * 1100 + 60_000,
  );
  const latencyTransactions = await stopCount();
  const added = { p50: lat.proxied.p50 - lat.direct.p50, p99: lat.proxied.p99 - lat.direct.p99 };
  console.log(`Load average at start ${loadAtStart}; watch PSS ${rssAtStart.toFixed(1)} MiB when ready.\n`);
  console.log(
    `| ${queries} A queries for ${ADMITTING.join(", ")}, one at a time, rounds of ${values.round} alternating | direct | through the proxy (admission by libnftables in process) | added |`,
  );
  console.log("|---|---|---|---|");
  console.log(`| p50 | ${ms(lat.direct.p50)} | ${ms(lat.proxied.p50)} | ${ms(added.p50)} |`);
  console.log(`| p99 | ${ms(lat.direct.p99)} | ${ms(lat.proxied.p99)} | ${ms(added.p99)} |`);
  console.log(`| max | ${ms(lat.direct.max)} | ${ms(lat.proxied.max)} | |`);
  console.log(`| lost (no answer in 1 s) | ${lat.direct.lost} | ${lat.proxied.lost} | |`);
  console.log(`\n${latencyTransactions} kernel transactions (admissions that hit the kernel) for ${lat.proxied.n} proxied answers.\n`);

  // (b) throughput
  const throughput: {
    rate: number;
    path: "proxied" | "direct";
    result: RateResult;
    transactions: number;
    load: string;
    watchCpuUsPerQuery: number;
    watchCpuShare: number;
  }[] = [];
  const runs = [
    ...rates.map((r) => ({ rate: r, path: "proxied" as const })),
    ...(rates.length > 0 ? [{ rate: Math.max(...rates), path: "direct" as const }] : []),
  ];
  for (const { rate, path } of runs) {
    const stop = await lab.countTransactions();
    const before = load();
    const [cpu0, t0] = [cpuSeconds(pid), performance.now()];
    const result = await inApp<RateResult>(lab, ["rate", String(rate), String(seconds), path, ...LISTED], seconds * 3000 + 60_000);
    const [cpu, wall] = [cpuSeconds(pid) - cpu0, (performance.now() - t0) / 1000];
    throughput.push({
      rate,
      path,
      result,
      transactions: await stop(),
      load: before,
      watchCpuUsPerQuery: (cpu / result.sent) * 1e6,
      watchCpuShare: cpu / wall,
    });
  }
  if (throughput.length > 0) {
    console.log(
      `| open loop, ${seconds} s, ${LISTED.join(" / ")} | sent | achieved rate | lost (> 1 s) | late (> 100 ms) | p50 | p99 | max | kernel transactions | watch CPU per query (share of a core) | load before |`,
    );
    console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for (const t of throughput) {
      const r = t.result;
      console.log(
        `| ${t.rate}/s ${t.path} | ${r.sent} | ${r.achieved.toFixed(0)}/s | ${r.lost} | ${r.late} | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.max)} | ${t.path === "direct" ? "" : t.transactions} | ${t.path === "direct" ? "" : `${t.watchCpuUsPerQuery.toFixed(0)} µs (${(t.watchCpuShare * 100).toFixed(0)} %)`} | ${t.load} |`,
      );
    }
  }
  rss.stop();
  console.log(
    `\nwatch PSS (supervisor + worker): ${rssAtStart.toFixed(1)} MiB when ready, peak ${rss.peak().toFixed(1)} MiB during latency and throughput, ${rssMiB(pid).toFixed(1)} MiB after.`,
  );

  // (c) soak
  let soak:
    | {
        seconds: number;
        rate: number;
        startMiB: number;
        endMiB: number;
        peakMiB: number;
        slopeMiBPerMinute: number;
        warmupSeconds: number;
        perMinute: number[];
        result: RateResult;
      }
    | undefined;
  if (soakSeconds > 0) {
    console.error(`dns-proxy-lab: soak, ${soakRate}/s for ${soakSeconds} s`);
    const s = sampler(pid, 5000);
    const perMinute: number[] = [];
    const minutes = setInterval(() => {
      const now = rssMiB(pid);
      perMinute.push(now);
      console.error(`dns-proxy-lab: soak minute ${perMinute.length}: RSS ${now.toFixed(1)} MiB, load ${load()}`);
    }, 60_000);
    const result = await inApp<RateResult>(lab, ["soak", String(soakRate), String(soakSeconds), ...MIXED], soakSeconds * 2000 + 60_000);
    clearInterval(minutes);
    s.stop();
    const [, startMiB] = s.samples[0] as [number, number];
    const [, endMiB] = s.samples[s.samples.length - 1] as [number, number];
    soak = {
      seconds: soakSeconds,
      rate: soakRate,
      startMiB,
      endMiB,
      peakMiB: s.peak(),
      slopeMiBPerMinute: slopePerMinute(s.samples.filter(([t]) => t >= Math.min(soakWarmup, soakSeconds / 2))),
      warmupSeconds: Math.min(soakWarmup, soakSeconds / 2),
      perMinute,
      result,
    };
    console.log(
      `\nSoak: ${soakRate}/s for ${soakSeconds} s (${MIXED.join(" / ")}; "unlisted" is a fresh name each time), load ${load()} at the end:`,
    );
    console.log(`${result.sent} sent, ${result.lost} lost, ${result.late} late, p50 ${ms(result.p50)}, p99 ${ms(result.p99)}.`);
    console.log(
      `RSS ${startMiB.toFixed(1)} MiB at start, ${perMinute.map((m, i) => `${m.toFixed(1)} at ${i + 1} min`).join(", ")}${perMinute.length > 0 ? ", " : ""}${endMiB.toFixed(1)} MiB at the end; peak ${soak.peakMiB.toFixed(1)} MiB; slope ${soak.slopeMiBPerMinute.toFixed(3)} MiB/min after the first ${soak.warmupSeconds} s (${s.samples.length} samples, every 5 s).`,
    );
  }
  console.log(
    `RESULT ${JSON.stringify({ load: loadAtStart, latency: { ...lat, added, transactions: latencyTransactions }, throughput, rss: { readyMiB: rssAtStart, peakMiB: rss.peak() }, soak })}`,
  );
  watch.kill("SIGTERM");
  await watch.exited;
  await lab.domainwall(["remove"]);
} finally {
  await lab.close();
}
