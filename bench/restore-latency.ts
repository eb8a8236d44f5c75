// How fast a running `watch` puts its table back after it is deleted from outside, and what the
// guard costs an idle watch. Root only; one network namespace of its own, removed at the end.
// Usage:
//   bun run build && bun bench/restore-latency.ts [--bin dist/domainwall] [--deletes 20]
//     [--old-bin PATH] [--idle-seconds 60] [--idle-runs 2] [--proxy] [--backend nft|iptables-legacy]
// iptables-legacy announces no changes (watch checks it every second): only its idle CPU is measured.
// Latency: bench/table-events-probe.ts in the namespace timestamps each `delete table inet
// domainwall` the kernel announces and the first `add table` of the restore that follows (one
// reader of the netlink group, one clock).
// Idle CPU: user+system seconds of watch and the tools it ran, over --idle-seconds, with --bin and (when given) a binary
// without the guard (--old-bin, e.g. built from ab1c703), runs alternating. (A watch of addresses
// only is not used: at ab1c703, with no name and no --metrics-addr, it spins a core.)
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    bin: { type: "string", default: "dist/domainwall" },
    "old-bin": { type: "string" },
    deletes: { type: "string", default: "20" },
    "idle-seconds": { type: "string", default: "60" },
    "idle-runs": { type: "string", default: "2" },
    proxy: { type: "boolean", default: false },
    backend: { type: "string", default: "nft" },
  },
});
const CLK_TCK = 100;
const ns = `dwrestore${process.pid}`;
const dir = mkdtempSync(`${tmpdir()}/${ns}-`);
chmodSync(dir, 0o755);
const sh = (argv: string[]) => {
  const result = Bun.spawnSync(argv, { stderr: "pipe", stdout: "pipe" });
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${result.stderr.toString()}`);
  return result.stdout.toString();
};
const inNs = (argv: string[]) => ["ip", "netns", "exec", ns, ...argv];
const children: Bun.Subprocess[] = [];
function cleanup(): void {
  for (const child of children) child.kill("SIGKILL");
  Bun.spawnSync(["ip", "netns", "del", ns]);
  Bun.spawnSync(["rm", "-rf", `/etc/netns/${ns}`]);
  rmSync(dir, { recursive: true, force: true });
}
process.on("SIGINT", () => (cleanup(), process.exit(130)));

/**
 * A watch of one name from the namespace's hosts file (looked up every --min-ttl, 5 s: a watch's
 * usual idle work) and one address; with --proxy, the DNS proxy forwarding to a documentation address.
 */
async function startWatch(bin: string): Promise<Bun.Subprocess<"ignore", "ignore", "pipe">> {
  const ready = `${dir}/ready-${Math.random().toString(36).slice(2)}`;
  const args = ["watch", "--hosts", "api.bench.example,2001:db8:ff::10", "--ready-file", ready];
  if (values.proxy) args.push("--dns-proxy", "--dns-servers", "198.51.100.2");
  const child = Bun.spawn(inNs([bin, ...args]), {
    env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin", DOMAINWALL_RUN_DIR: `${dir}/run`, DOMAINWALL_BACKEND: values.backend },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  children.push(child);
  for (let i = 0; i < 200 && !(await Bun.file(ready).exists()); i++) {
    if (child.exitCode !== null) throw new Error(`watch exited ${child.exitCode}: ${await new Response(child.stderr).text()}`);
    await Bun.sleep(50);
  }
  return child;
}

async function stopWatch(child: Bun.Subprocess): Promise<void> {
  child.kill("SIGTERM");
  await child.exited;
  Bun.spawnSync(inNs([values.bin, "remove"]), {
    stderr: "ignore",
    env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin", DOMAINWALL_BACKEND: values.backend },
  });
}

const cpuSeconds = async (pid: number): Promise<number> => {
  // `ip netns exec` execs the binary: the PID is the watch's own.
  const fields = (await Bun.file(`/proc/${pid}/stat`).text()).split(") ")[1]!.split(" ");
  // utime, stime, and the children's it has waited for (the iptables-legacy tools of its checks).
  return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / CLK_TCK;
};

/** Deletes the table --deletes times and prints the median and worst time until the watch's restore. */
async function measureLatency(): Promise<void> {
  const watch = await startWatch(values.bin);
  const monitor = Bun.spawn(inNs([process.execPath, `${import.meta.dir}/table-events-probe.ts`]), { stdout: "pipe", stderr: "inherit" });
  children.push(monitor);
  const seen: { line: string; at: number }[] = [];
  void (async () => {
    let buffer = "";
    for await (const chunk of monitor.stdout) {
      buffer += new TextDecoder().decode(chunk);
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        const [at = "", what = ""] = line.split(" ");
        seen.push({ line: what, at: Number(at) });
      }
    }
  })();
  for (let i = 0; i < 100 && seen.length === 0; i++) await Bun.sleep(50); // "ready"
  const latencies: number[] = [];
  for (let i = 0; i < Number(values.deletes); i++) {
    const from = seen.length;
    sh(inNs(["nft", "delete", "table", "inet", "domainwall"]));
    let deleted: number | undefined;
    let added: number | undefined;
    for (let wait = 0; wait < 400 && added === undefined; wait++) {
      for (const event of seen.slice(from)) {
        if (deleted === undefined && event.line === "delete") deleted = event.at;
        else if (deleted !== undefined && event.line === "add") added = event.at;
      }
      if (added === undefined) await Bun.sleep(5);
    }
    if (deleted === undefined || added === undefined) throw new Error(`delete ${i + 1}: the table did not come back within 2 s`);
    latencies.push(added - deleted);
    await Bun.sleep(200);
  }
  monitor.kill();
  const sorted = [...latencies].sort((a, b) => a - b);
  console.log(
    `restore latency over ${latencies.length} deletes (${values.proxy ? "watch --dns-proxy" : "watch"}): median ${median(latencies).toFixed(1)} ms, worst ${sorted.at(-1)!.toFixed(1)} ms, best ${sorted[0]!.toFixed(1)} ms`,
  );
  await stopWatch(watch);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

try {
  sh(["ip", "netns", "add", ns]);
  sh(inNs(["ip", "link", "set", "lo", "up"]));
  sh(["mkdir", "-p", `/etc/netns/${ns}`]);
  writeFileSync(`/etc/netns/${ns}/resolv.conf`, "nameserver 198.51.100.2\n");
  // `ip netns exec` mounts these over /etc/hosts: the name resolves without a DNS server.
  writeFileSync(`/etc/netns/${ns}/hosts`, "127.0.0.1 localhost\n203.0.113.10 api.bench.example\n");
  console.log(`load average at start: ${(await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ")}`);

  // Latency of the restore.
  if (values.backend === "nft") await measureLatency();

  // Idle CPU with and without the guard.

  // Idle CPU with and without the guard.
  const bins = [values.bin, ...(values["old-bin"] === undefined ? [] : [values["old-bin"]])];
  const shares = new Map<string, number[]>(bins.map((b) => [b, []]));
  for (let run = 0; run < Number(values["idle-runs"]); run++) {
    for (const bin of bins) {
      const child = await startWatch(bin);
      await Bun.sleep(2000); // past start-up
      const before = await cpuSeconds(child.pid);
      await Bun.sleep(Number(values["idle-seconds"]) * 1000);
      const used = (await cpuSeconds(child.pid)) - before;
      shares.get(bin)!.push((100 * used) / Number(values["idle-seconds"]));
      await stopWatch(child);
    }
  }
  for (const [bin, runs] of shares) {
    console.log(`idle CPU of ${bin}: median ${median(runs).toFixed(3)} % of a core (runs: ${runs.map((r) => r.toFixed(3)).join(", ")})`);
  }
  console.log(`load average at end: ${(await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ")}`);
} finally {
  cleanup();
}
