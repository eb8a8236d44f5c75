// Memory and CPU of `domainwall watch` over time, in network namespaces with a real dnsmasq.
// Root only. Usage:
//   bun run build && bun bench/watch-resources.ts [--bin dist/domainwall] [--names 300] [--ttl 5]
//     [--seconds 300] [--rotate-every 30] [--rotate-share 0.1] [--sample-every 10] [--grace 60s] [--aaaa]
//     [--drop-binary-cache] [--floor]
// Prints one line per sample (elapsed, RSS, peak RSS, CPU seconds, CPU share since the last
// sample) and a summary with the metrics domainwall reports about itself.
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { parseArgs } from "node:util";
import { backgroundExecEnv } from "../src/background-env.ts";

const { values } = parseArgs({
  options: {
    bin: { type: "string", default: "dist/domainwall" },
    names: { type: "string", default: "300" },
    ttl: { type: "string", default: "5" },
    seconds: { type: "string", default: "300" },
    "rotate-every": { type: "string", default: "30" },
    "rotate-share": { type: "string", default: "0.1" },
    "sample-every": { type: "string", default: "10" },
    grace: { type: "string", default: "60s" },
    /** Two AAAA records per name besides the two A records (the issue's steady-state case). */
    aaaa: { type: "boolean", default: false },
    /**
     * RSS counts the pages of the binary the process touches, and a file just written (a fresh build)
     * sits in the page cache in larger pieces than one read back from disk: its text maps about 4 MiB
     * more. This writes the binary out and drops its cached pages first, so that runs compare alike.
     */
    "drop-binary-cache": { type: "boolean", default: false },
    /**
     * Also run bench/lookup-floor.ts, compiled, beside watch: the same lookups and nothing else, with
     * the background loop's environment. Its CPU share and RSS are the floor under watch's.
     */
    floor: { type: "boolean", default: false },
  },
});
const names = Number(values.names);
const seconds = Number(values.seconds);
const rotateEvery = Number(values["rotate-every"]);
const sampleEvery = Number(values["sample-every"]);
const CLK_TCK = 100;

const id = `dwbench${process.pid}`;
const [app, dns] = [`${id}a`, `${id}d`];
const dir = mkdtempSync(`${tmpdir()}/${id}-`);
chmodSync(dir, 0o755); // dnsmasq reads the hosts file as nobody
const hostsFile = `${dir}/hosts`;
const sh = (command: string) => {
  const result = Bun.spawnSync(["sh", "-ec", command], { stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`${command}: ${result.stderr.toString()}`);
  return result.stdout.toString();
};

/**
 * Documentation addresses only: name i has one address in 203.0.113.0/24 and one in
 * 198.51.100.0/24; a rotated name trades its 203.0.113.x for a 192.0.2.x that changes with every
 * rotation, so each rotation changes the sets (and the old addresses leave after --grace). With
 * --aaaa each name also has two fixed addresses in 2001:db8::/32; without, its AAAA lookups get
 * "no data" (which Bun's c-ares may cache: an answer without SOA, as dnsmasq sends).
 */
let generation = 0;
const rotated = new Set<number>();
function writeHosts(): void {
  const lines: string[] = [];
  for (let i = 0; i < names; i++) {
    const first = rotated.has(i) ? `192.0.2.${10 + ((i * 13 + generation * 37) % 240)}` : `203.0.113.${(i % 250) + 1}`;
    lines.push(`${first} n${i}.bench.example`, `198.51.100.${((i * 7) % 250) + 1} n${i}.bench.example`);
    if (values.aaaa) lines.push(`2001:db8::${i.toString(16)}:1 n${i}.bench.example`, `2001:db8::${i.toString(16)}:2 n${i}.bench.example`);
  }
  writeFileSync(hostsFile, `${lines.join("\n")}\n`);
}

/** A process's RSS and peak RSS (MiB) and its CPU (user+system seconds) so far. */
async function readProc(pid: number): Promise<{ rss: number; hwm: number; cpu: number }> {
  const status = await Bun.file(`/proc/${pid}/status`).text();
  const stat = (await Bun.file(`/proc/${pid}/stat`).text()).split(") ")[1]!.split(" ");
  const kib = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { rss: kib("VmRSS") / 1024, hwm: kib("VmHWM") / 1024, cpu: (Number(stat[11]) + Number(stat[12])) / CLK_TCK };
}

/** bench/lookup-floor.ts compiled (the runtime watch's binary has) and started in the app's namespace. */
async function startFloor(): Promise<{ pid: number }> {
  const floorBin = `${dir}/lookup-floor`;
  sh(`bun build --compile --minify ${import.meta.dir}/lookup-floor.ts --outfile ${floorBin} >/dev/null`);
  if (values["drop-binary-cache"]) sh(`sync "${floorBin}"; dd if="${floorBin}" iflag=nocache count=0 status=none`);
  const floor = Bun.spawn(["ip", "netns", "exec", app, floorBin, "--names", String(names), "--ttl", values.ttl], {
    env: backgroundExecEnv(process.env) as Record<string, string>,
    stderr: "inherit",
  });
  children.push(floor);
  await Bun.sleep(1000);
  return floor;
}

/** Each thread's CPU (user+system seconds, with its user and system parts), busiest first, by name. */
async function threadCpu(pid: number): Promise<string[]> {
  const byName = new Map<string, { user: number; system: number }>();
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const text = await Bun.file(`/proc/${pid}/task/${task}/stat`).text();
    const name = text.slice(text.indexOf("(") + 1, text.lastIndexOf(")"));
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    const sum = byName.get(name) ?? { user: 0, system: 0 };
    byName.set(name, { user: sum.user + Number(fields[11]) / CLK_TCK, system: sum.system + Number(fields[12]) / CLK_TCK });
  }
  return [...byName]
    .sort(([, a], [, b]) => b.user + b.system - (a.user + a.system))
    .slice(0, 6)
    .map(([name, t]) => `${name} ${(t.user + t.system).toFixed(2)} (${t.user.toFixed(2)} + ${t.system.toFixed(2)})`);
}

const children: { pid: number; kill: (signal?: number) => void }[] = [];
function cleanup(): void {
  for (const child of children) child.kill(15);
  Bun.spawnSync(["sh", "-c", `ip netns del ${app}; ip netns del ${dns}; rm -rf /etc/netns/${app}`]);
  rmSync(dir, { recursive: true, force: true });
}
process.on("SIGINT", () => (cleanup(), process.exit(130)));

try {
  sh(`ip netns add ${app}; ip netns add ${dns}
      ip link add ${id}x netns ${app} type veth peer name ${id}y netns ${dns}
      ip -n ${app} link set lo up; ip -n ${dns} link set lo up
      ip -n ${app} addr add 192.0.2.1/24 dev ${id}x; ip -n ${app} link set ${id}x up
      ip -n ${dns} addr add 192.0.2.2/24 dev ${id}y; ip -n ${dns} link set ${id}y up
      mkdir -p /etc/netns/${app}; echo 'nameserver 192.0.2.2' > /etc/netns/${app}/resolv.conf`);
  writeHosts();
  if (values["drop-binary-cache"]) sh(`sync "${values.bin}"; dd if="${values.bin}" iflag=nocache count=0 status=none`);
  await Bun.sleep(100);
  const dnsmasq = Bun.spawn(
    [
      "ip",
      "netns",
      "exec",
      dns,
      "dnsmasq",
      "--keep-in-foreground",
      "--no-resolv",
      "--no-hosts",
      `--addn-hosts=${hostsFile}`,
      `--local-ttl=${values.ttl}`,
      "--bind-interfaces",
      "--listen-address=192.0.2.2",
      "--local=/example/",
      "--pid-file=",
    ],
    { stderr: "inherit" },
  );
  children.push(dnsmasq);
  await Bun.sleep(300);
  const hosts = Array.from({ length: names }, (_, i) => `n${i}.bench.example`).join(",");
  const args = [
    "watch",
    "--hosts",
    hosts,
    "--metrics-addr",
    "127.0.0.1:9464",
    "--ready-file",
    `${dir}/ready`,
    "--grace",
    values.grace,
    "--log-format",
    "json",
  ];
  const watch = Bun.spawn(["ip", "netns", "exec", app, values.bin, ...args], { stderr: Bun.file(`${dir}/watch.log`) });
  children.push(watch);
  const started = performance.now();
  while (!(await Bun.file(`${dir}/ready`).exists())) {
    if (performance.now() - started > 30_000) throw new Error(`not ready after 30 s: ${await Bun.file(`${dir}/watch.log`).text()}`);
    await Bun.sleep(50);
  }
  console.log(
    `ready after ${Math.round(performance.now() - started)} ms: ${names} names (${values.aaaa ? "2 A and 2 AAAA" : "2 A"} each), TTL ${values.ttl}s, rotating ${values["rotate-share"]} of them every ${rotateEvery}s, grace ${values.grace}`,
  );
  // `ip netns exec` execs the program: the PID is domainwall's.
  const pid = watch.pid;
  const floor = values.floor ? await startFloor() : undefined;
  const floorFirst = floor === undefined ? undefined : { ...(await readProc(floor.pid)), at: performance.now() };
  const read = () => readProc(pid);
  const first = await read();
  let last = { ...first, at: performance.now() };
  const samples: { t: number; rss: number; cpu: number }[] = [];
  console.log("elapsed_s rss_mib peak_rss_mib cpu_s cpu_share_since_last");
  for (let elapsed = 0; elapsed < seconds; ) {
    await Bun.sleep(sampleEvery * 1000);
    elapsed += sampleEvery;
    if (rotateEvery > 0 && elapsed % rotateEvery === 0) {
      generation++;
      rotated.clear();
      for (let i = 0; i < names; i++) if (Math.random() < Number(values["rotate-share"])) rotated.add(i);
      writeHosts();
      dnsmasq.kill(1); // SIGHUP: re-read the hosts file
    }
    const now = await read();
    const at = performance.now();
    const share = (now.cpu - last.cpu) / ((at - last.at) / 1000);
    samples.push({ t: elapsed, rss: now.rss, cpu: now.cpu });
    console.log(`${elapsed} ${now.rss.toFixed(1)} ${now.hwm.toFixed(1)} ${now.cpu.toFixed(2)} ${(share * 100).toFixed(1)}%`);
    last = { ...now, at };
  }
  const metrics = sh(`ip netns exec ${app} curl -s 127.0.0.1:9464/metrics`);
  const pick = (name: string) =>
    metrics
      .split("\n")
      .filter((l) => l.startsWith(name))
      .join("; ");
  const end = samples.at(-1)!;
  console.log(
    `summary: RSS ${first.rss.toFixed(1)} MiB after start, ${end.rss.toFixed(1)} MiB at ${end.t}s, peak ${last.hwm.toFixed(1)} MiB;`,
    `CPU ${(end.cpu - first.cpu).toFixed(2)} s over ${end.t}s = ${(((end.cpu - first.cpu) / end.t) * 100).toFixed(2)}% of one core`,
  );
  if (floor !== undefined && floorFirst !== undefined) {
    const floorEnd = await readProc(floor.pid);
    const floorSeconds = (performance.now() - floorFirst.at) / 1000;
    console.log(
      `floor (the same lookups alone, bench/lookup-floor.ts compiled): CPU ${(floorEnd.cpu - floorFirst.cpu).toFixed(2)} s over ${floorSeconds.toFixed(0)}s = ${(((floorEnd.cpu - floorFirst.cpu) / floorSeconds) * 100).toFixed(2)}% of one core; RSS ${floorEnd.rss.toFixed(1)} MiB at the end, peak ${floorEnd.hwm.toFixed(1)} MiB`,
    );
  }
  console.log(`threads (user+system CPU s since the process started): ${(await threadCpu(pid)).join(", ")}`);
  console.log(pick("domainwall_ruleset_updates_total"));
  console.log(pick("domainwall_ruleset_update_duration_seconds_"));
  console.log(pick("domainwall_allowed_addresses"));
  console.log(pick("domainwall_names_failing"), "|", pick("domainwall_seconds_since_last_successful_refresh"));
  if (metrics.includes('domainwall_allowed_addresses{family="ipv4"} 0\n')) throw new Error("nothing was allowed: is dnsmasq answering?");
  watch.kill(15);
  console.log(`SIGTERM: exit ${await watch.exited}`);
} finally {
  cleanup();
}
