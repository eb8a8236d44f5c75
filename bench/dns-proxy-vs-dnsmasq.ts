// The DNS proxy's admission path against dnsmasq --nftset, the C resolver that puts each answer's
// addresses into an nft set (cache off, so it admits every answer as domainwall does). As root:
//   bun run build && DOMAINWALL_BIN=$PWD/dist/domainwall bun bench/dns-proxy-vs-dnsmasq.ts [--names 1000] [--rounds 3] [--rates 5000,10000,20000] [--seconds 5]
// One lab (test/lab/lab.ts) with a CDN-like upstream (every name under w.example answered with 2
// random addresses of 100), `watch --dns-proxy --hosts '*.w.example'`, and beside it dnsmasq --nftset
// on 127.0.0.1:5300 into a timeout set of its own table, running in the proxy's group (so its
// upstream queries skip the redirect, as the proxy's do; a group name for it is bound over
// /etc/group in a mount namespace of its own). Each round, interleaved: --names fresh names one at a
// time directly to the resolver (a socket of the proxy's group), through domainwall, through
// dnsmasq. Added latency = the system's minus the direct one of the same round; medians over rounds. Then open-loop rates through each
// (and directly, the load generator's own ceiling): lost = no answer within 1 s. Prints Markdown, then
// one line `RESULT {json}` for bench/run.ts.
import { parseArgs } from "node:util";
import { loadavg } from "node:os";
import { ADDR, createLab, type Lab } from "../test/lab/lab.ts";

const { values } = parseArgs({
  options: {
    names: { type: "string", default: "1000" },
    rounds: { type: "string", default: "3" },
    rates: { type: "string", default: "5000,10000,20000" },
    seconds: { type: "string", default: "5" },
  },
});
const CDN = { names: [], wildcards: ["w.example"] };
const GID = "2000053";
const load = `${import.meta.dir}/dns-load.ts`;

const quantile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
const median = (xs: readonly number[]) =>
  quantile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );
const ms = (x: number) => `${x.toFixed(3)} ms`;

async function client(lab: Lab, argv: string[]) {
  const result = await lab.exec("app", [process.execPath, load, ...argv], { timeoutMs: 300_000 });
  if (result.code !== 0) throw new Error(`dns-load ${argv.join(" ")}: ${result.stderr}`);
  return JSON.parse(result.stdout) as Record<string, number> & { latencies?: number[] };
}

const proxyLab = await createLab({ cdn: CDN });
const dnsmasqLab = proxyLab;
const children: Bun.Subprocess[] = [];
try {
  const ready = `${proxyLab.dir}/ready`;
  const watch = proxyLab.spawnDomainwall(["watch", "--dns-proxy", "--hosts", "*.w.example", "--ready-file", ready], {
    env: { DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: `${proxyLab.dir}/run` },
  });
  children.push(watch);
  for (let i = 0; i < 300 && !(await Bun.file(ready).exists()); i++) await Bun.sleep(100);
  if (!(await Bun.file(ready).exists())) throw new Error(`watch did not start: ${await new Response(watch.stderr).text()}`);
  const table = await dnsmasqLab.nft(["-f", "-"], "table inet bench {\n  set s { type ipv4_addr; flags timeout; timeout 5m; }\n}\n");
  if (table.code !== 0) throw new Error(table.stderr);
  const dnsmasq = Bun.spawn(
    [
      "ip",
      "netns",
      "exec",
      dnsmasqLab.app,
      "unshare",
      "--mount",
      "sh",
      "-c",
      `grep -v '^dwbench:' /etc/group > ${proxyLab.dir}/group && echo 'dwbench:x:${GID}:' >> ${proxyLab.dir}/group && mount --bind ${proxyLab.dir}/group /etc/group && exec "$@"`,
      "sh",
      "dnsmasq",
      "--keep-in-foreground",
      "--conf-file=/dev/null",
      "--no-resolv",
      "--no-hosts",
      "--pid-file=",
      "--user=root",
      "--group=dwbench",
      "--port=5300",
      "--listen-address=127.0.0.1",
      "--bind-interfaces",
      "--cache-size=0",
      `--server=${ADDR.dnsV4}`,
      "--nftset=/w.example/4#inet#bench#s",
    ],
    { stdout: "ignore", stderr: "pipe" },
  );
  children.push(dnsmasq);
  await Bun.sleep(500);
  const systems = [
    { name: "direct", lab: proxyLab, args: [ADDR.dnsV4, "53"], gid: GID },
    { name: "domainwall", lab: proxyLab, args: [ADDR.dnsV4, "53"], gid: undefined },
    { name: "dnsmasq --nftset", lab: dnsmasqLab, args: ["127.0.0.1", "5300"], gid: undefined },
  ];
  // Warm up each path.
  for (const s of systems) await client(s.lab, ["latency", ...s.args, "200", "w.example", ...(s.gid ? [s.gid] : [])]);
  const added: Record<string, { p50: number[]; p99: number[]; lost: number }> = {
    domainwall: { p50: [], p99: [], lost: 0 },
    "dnsmasq --nftset": { p50: [], p99: [], lost: 0 },
  };
  for (let round = 0; round < Number(values.rounds); round++) {
    const got: Record<string, { p50: number; p99: number; lost: number }> = {};
    for (const s of systems) {
      const r = await client(s.lab, ["latency", ...s.args, values.names ?? "1000", "w.example", ...(s.gid ? [s.gid] : [])]);
      const sorted = [...(r.latencies ?? [])].sort((a, b) => a - b);
      got[s.name] = { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), lost: r.lost ?? 0 };
    }
    for (const [system, base] of [
      ["domainwall", "direct"],
      ["dnsmasq --nftset", "direct"],
    ] as const) {
      const a = added[system] as { p50: number[]; p99: number[]; lost: number };
      a.p50.push((got[system]?.p50 ?? 0) - (got[base]?.p50 ?? 0));
      a.p99.push((got[system]?.p99 ?? 0) - (got[base]?.p99 ?? 0));
      a.lost += got[system]?.lost ?? 0;
    }
    console.log(`round ${round + 1}: ${JSON.stringify(got)}`);
  }
  const rates: string[] = [];
  const rateResults: { system: string; rate: number; achieved: number; sent: number; lost: number }[] = [];
  for (const rate of (values.rates ?? "").split(",").map(Number)) {
    for (const s of systems) {
      const r = await client(s.lab, ["rate", ...s.args, String(rate), values.seconds ?? "5", "w.example", ...(s.gid ? [s.gid] : [])]);
      rates.push(`| ${s.name} | ${rate} | ${r.achieved} | ${r.sent} | ${r.lost} |`);
      rateResults.push({ system: s.name, rate, achieved: r.achieved ?? 0, sent: r.sent ?? 0, lost: r.lost ?? 0 });
    }
  }
  const kernel = (await dnsmasqLab.nft(["list", "set", "inet", "bench", "s"])).stdout.match(/203\.0\.113\.\d+/g)?.length ?? 0;
  console.log(
    `\n### DNS proxy vs dnsmasq --nftset (new names, ${values.rounds} interleaved rounds of ${values.names}; load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")})\n`,
  );
  console.log("| | adds p50 | adds p99 | lost (latency runs) |\n|---|---|---|---|");
  for (const [system, a] of Object.entries(added)) console.log(`| ${system} | ${ms(median(a.p50))} | ${ms(median(a.p99))} | ${a.lost} |`);
  console.log(
    `\n(dnsmasq's set holds ${kernel} addresses: it admitted)\n\n| system | target q/s | achieved q/s | sent | lost (> 1 s) |\n|---|---|---|---|---|`,
  );
  for (const line of rates) console.log(line);
  const summary = Object.fromEntries(Object.entries(added).map(([k, a]) => [k, { p50: median(a.p50), p99: median(a.p99), lost: a.lost }]));
  const load = loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");
  console.log(
    `RESULT ${JSON.stringify({ added: summary, rates: rateResults, names: Number(values.names), rounds: Number(values.rounds), load })}`,
  );
} finally {
  for (const child of children) child.kill("SIGKILL");
  await Promise.all(children.map((c) => c.exited));
  await proxyLab.domainwall(["remove"], { env: { DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: `${proxyLab.dir}/run` } });
  await proxyLab.close();
}
