// The DNS proxy's cost: `bun bench/dns-proxy.ts [--queries N] [--rate Q] [--seconds S]`. No root.
// Starts the lab's CDN-like DNS server (test/lab/cdn-dns.ts) and the proxy (this file with --serve,
// admit a no-op for now) as two processes on loopback, then from this process:
//  1. latency: N A queries, each sent straight to the server and through the proxy, alternately,
//     one at a time; p50/p99 of both and what the proxy adds;
//  2. sustained rate: queries at Q/s for S seconds through the proxy (open loop), counting answers
//     lost (none within 2 s) and late (over 100 ms); then the most it answers with 64 in flight.
// Prints a Markdown table.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { compileMatcher } from "../src/proxy/match.ts";
import { startDnsProxy } from "../src/proxy/server.ts";
import { queryBytes } from "../test/support/dns.ts";

const root = resolve(import.meta.dir, "..");
const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    serve: { type: "boolean", default: false },
    "upstream-port": { type: "string" },
    queries: { type: "string", default: "10000" },
    rate: { type: "string", default: "2000" },
    seconds: { type: "string", default: "10" },
  },
});
const NAME = "cdn.example.com";

/** Starts `argv`, waits for its "listening on … port N" line, returns the process and N. */
async function spawnListening(argv: string[]) {
  const child = Bun.spawn(argv, { cwd: root, stdout: "pipe", stderr: "inherit" });
  const reader = child.stdout.getReader();
  let text = "";
  while (!/port (\d+)/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${argv.join(" ")} exited: ${text}`);
    text += new TextDecoder().decode(value);
  }
  return { child, port: Number(/port (\d+)/.exec(text)?.[1]) };
}

/** One connected UDP socket; `ask` sends a query and resolves with its reply's arrival time (ms). */
async function client(port: number) {
  const waiting = new Map<number, (t: number) => void>();
  const socket = await Bun.udpSocket({
    hostname: "127.0.0.1",
    connect: { hostname: "127.0.0.1", port },
    socket: { data: (_s, data) => waiting.get(data.readUInt16BE(0))?.(performance.now()) },
  });
  let nextId = 0;
  return {
    ask(timeoutMs = 2000): Promise<{ sent: number; latency: number | undefined }> {
      const id = nextId++ & 0xffff;
      const bytes = queryBytes(id, NAME, "A");
      return new Promise((done) => {
        const sent = performance.now();
        const timer = setTimeout(() => {
          waiting.delete(id);
          done({ sent, latency: undefined });
        }, timeoutMs);
        waiting.set(id, (t) => {
          clearTimeout(timer);
          waiting.delete(id);
          done({ sent, latency: t - sent });
        });
        socket.send(bytes);
      });
    },
    close: () => socket.close(),
  };
}

const percentile = (sorted: readonly number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const ms = (value: number) => `${value.toFixed(3)} ms`;
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;

async function main() {
  const queries = Number(values.queries);
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const dir = mkdtempSync(`${tmpdir()}/dns-proxy-bench-`);
  writeFileSync(`${dir}/cdn.json`, JSON.stringify({ names: [NAME] }));
  const upstream = await spawnListening([
    process.execPath,
    "test/lab/cdn-dns.ts",
    "--listen",
    "127.0.0.1",
    "--port",
    "0",
    "--config",
    `${dir}/cdn.json`,
    "--log",
    "/dev/null",
  ]);
  const proxy = await spawnListening([process.execPath, "bench/dns-proxy.ts", "--serve", "--upstream-port", String(upstream.port)]);
  try {
    const direct = await client(upstream.port);
    const through = await client(proxy.port);
    for (let i = 0; i < 500; i++) await direct.ask(), await through.ask(); // warm up both
    const a: number[] = [];
    const b: number[] = [];
    let lost = 0;
    for (let i = 0; i < queries; i++) {
      const x = await direct.ask();
      const y = await through.ask();
      if (x.latency === undefined || y.latency === undefined) lost++;
      else a.push(x.latency), b.push(y.latency);
    }
    a.sort((p, q) => p - q);
    b.sort((p, q) => p - q);

    // Open loop at `rate`: one query every 1/rate s, whatever the answers do.
    const results: Promise<{ sent: number; latency: number | undefined }>[] = [];
    const start = performance.now();
    for (let i = 0; i < rate * seconds; i++) {
      const due = start + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await Bun.sleep(wait);
      results.push(through.ask());
    }
    const sustained = await Promise.all(results);
    const sustainedLost = sustained.filter((r) => r.latency === undefined).length;
    const late = sustained.filter((r) => (r.latency ?? 0) > 100).length;
    const sent = sustained.length / ((performance.now() - start) / 1000);
    const sustainedSorted = sustained.flatMap((r) => (r.latency === undefined ? [] : [r.latency])).sort((p, q) => p - q);

    // Closed loop: 64 in flight for `seconds`.
    let answered = 0;
    const until = performance.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (performance.now() < until) if ((await through.ask()).latency !== undefined) answered++;
      }),
    );
    const max = answered / seconds;
    const rss = rssMb(proxy.child.pid);
    direct.close();
    through.close();

    console.log(`| measure (${queries} queries each, lab CDN server, no-op admit) | direct | through the proxy | added |`);
    console.log("|---|---|---|---|");
    console.log(`| p50 | ${ms(percentile(a, 50))} | ${ms(percentile(b, 50))} | ${ms(percentile(b, 50) - percentile(a, 50))} |`);
    console.log(`| p99 | ${ms(percentile(a, 99))} | ${ms(percentile(b, 99))} | ${ms(percentile(b, 99) - percentile(a, 99))} |`);
    console.log(`| lost | | ${lost} | |`);
    console.log(
      `| open loop at ${rate}/s for ${seconds} s (sent ${sent.toFixed(0)}/s) | | lost ${sustainedLost}, late (>100 ms) ${late}, p50 ${ms(percentile(sustainedSorted, 50))}, p99 ${ms(percentile(sustainedSorted, 99))} | |`,
    );
    console.log(`| closed loop, 64 in flight | | ${max.toFixed(0)} queries/s | |`);
    console.log(`| proxy RSS at the end | | ${rss.toFixed(1)} MB | |`);
  } finally {
    proxy.child.kill();
    upstream.child.kill();
  }
}

async function serve() {
  const compiled = compileMatcher([NAME, "**.example.net"]);
  if (!compiled.ok) throw new Error(compiled.problems.join());
  const proxy = await startDnsProxy({
    port: 0,
    upstreams: [{ address: "127.0.0.1", port: Number(values["upstream-port"]) }],
    match: compiled.match,
    admit: async () => {},
    log: { info() {}, warn: (e) => console.error(e.message), error: (e) => console.error(e.message) },
  });
  console.log(`listening on 127.0.0.1 port ${proxy.port}`);
}

await (values.serve ? serve() : main());
