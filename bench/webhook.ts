// The webhook under an open-loop load: 200 AdmissionReviews a second (a Deployment's pod, fresh
// uid each) over HTTPS with keep-alive, against the compiled `domainwall webhook`, side by side with
// two static-file baselines over the same TLS: the same loopback relay and certificate serving a
// canned AdmissionReview response (what TLS and the relay cost without the decision), and Bun's
// own HTTPS server serving it directly (what the relay costs). Each request is sent at its
// scheduled time whatever came back (no coordinated omission): latency is from that time to the
// end of the answer. Rounds alternate the targets; medians of the rounds' p50 and p99 are printed
// as JSON. Not a test: `bun bench/webhook.ts [--rate 200] [--seconds 10] [--rounds 3] [--bin PATH]`.
import { loadavg, tmpdir } from "node:os";
import { mkdtempSync, rmSync } from "node:fs";
import { parseArgs } from "node:util";
import { serveTls } from "../src/webhook/tls-front.ts";

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "200" },
    seconds: { type: "string", default: "10" },
    rounds: { type: "string", default: "3" },
    bin: { type: "string", default: `${import.meta.dir}/../dist/domainwall` },
    "serve-static": { type: "string" },
    cert: { type: "string" },
  },
});

const dir = values.cert ?? mkdtempSync(`${tmpdir()}/domainwall-bench-webhook-`);

// Child mode: the two static baselines in a process of their own (not sharing the client's event loop).
if (values["serve-static"] !== undefined) {
  const [relayPort, directPort] = values["serve-static"].split(",").map(Number);
  const certificate = { cert: await Bun.file(`${dir}/tls.crt`).text(), key: await Bun.file(`${dir}/tls.key`).text() };
  const file = Bun.file(`${dir}/response.json`);
  const fetch = async (request: Request) => (await request.arrayBuffer(), new Response(file));
  serveTls({ hostname: "127.0.0.1", port: relayPort! }, certificate, fetch);
  Bun.serve({ hostname: "127.0.0.1", port: directPort!, tls: certificate, fetch });
  console.log("ready");
  await new Promise(() => {});
}

const rate = Number(values.rate);
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const openssl = (...args: string[]) => {
  const done = Bun.spawnSync(["openssl", ...args], { cwd: dir, stderr: "pipe" });
  if (done.exitCode !== 0) throw new Error(done.stderr.toString());
};
openssl(
  "req",
  "-x509",
  "-newkey",
  "rsa:2048",
  "-nodes",
  "-days",
  "1",
  "-subj",
  "/CN=localhost",
  "-addext",
  "subjectAltName=IP:127.0.0.1",
  "-keyout",
  "tls.key",
  "-out",
  "tls.crt",
);
await Bun.write(`${dir}/webhook.toml`, 'image = "ghcr.io/domainwall/domainwall:0.1.0"\nextra-hosts = ["**.svc.cluster.local"]\n');

const pod = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { generateName: "shop-web-6c9f7d8b5-", namespace: "shop", labels: { app: "shop-web" } },
  spec: { containers: [{ name: "web", image: "ghcr.io/example/shop-web:2.3.1", ports: [{ containerPort: 8080 }] }] },
};
const reviewBody = () =>
  JSON.stringify({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: crypto.randomUUID(),
      kind: { group: "", version: "v1", kind: "Pod" },
      namespace: "shop",
      operation: "CREATE",
      object: pod,
    },
  });

const [webhookPort, metricsPort, relayPort, directPort] = [18643, 18680, 18644, 18645];
const webhook = Bun.spawn(
  [
    values.bin,
    "webhook",
    `--listen=127.0.0.1:${webhookPort}`,
    `--metrics-addr=127.0.0.1:${metricsPort}`,
    `--tls-cert=${dir}/tls.crt`,
    `--tls-key=${dir}/tls.key`,
    `--config=${dir}/webhook.toml`,
    "--log-format=json",
  ],
  { stdout: "ignore", stderr: "ignore" },
);
for (
  let i = 0;
  i < 200 &&
  !(await fetch(`http://127.0.0.1:${metricsPort}/healthz`).then(
    (r) => r.ok,
    () => false,
  ));
  i++
)
  await Bun.sleep(50);
// The baseline's file: the webhook's own answer to the same pod, so both send the same bytes.
const ca = await Bun.file(`${dir}/tls.crt`).text();
await Bun.write(
  `${dir}/response.json`,
  await (await fetch(`https://127.0.0.1:${webhookPort}/mutate`, { method: "POST", body: reviewBody(), tls: { ca } })).text(),
);
const statics = Bun.spawn([process.execPath, import.meta.path, "--serve-static", `${relayPort},${directPort}`, "--cert", dir], {
  stdout: "pipe",
});
await new Response(statics.stdout).body?.getReader().read();

const percentile = (sorted: readonly number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

/** One open-loop run: `rate` requests a second for `seconds`; latencies in ms and failures. */
async function run(port: number): Promise<{ p50: number; p99: number; failed: number }> {
  const total = rate * seconds;
  const interval = 1000 / rate;
  const latencies: number[] = [];
  let failed = 0;
  const start = performance.now() + 50;
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await Bun.sleep(wait);
    const body = reviewBody();
    // From the scheduled time when late (the client's lateness counts), from now when the timer woke early.
    const sent = Math.min(due, performance.now());
    inflight.push(
      fetch(`https://127.0.0.1:${port}/mutate`, { method: "POST", body, tls: { ca } }).then(
        async (r) => {
          await r.arrayBuffer();
          if (r.status === 200) latencies.push(performance.now() - sent);
          else failed++;
        },
        () => void failed++,
      ),
    );
  }
  await Promise.all(inflight);
  latencies.sort((a, b) => a - b);
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), failed };
}

const targets = { webhook: webhookPort, "static via the relay": relayPort, "static, Bun TLS direct": directPort } as const;
const results: Record<string, { p50: number[]; p99: number[]; failed: number }> = {};
const load = [loadavg()[0]!];
for (const port of Object.values(targets)) await run(port).catch(() => undefined); // warm-up (short below)
for (let round = 0; round < rounds; round++)
  for (const [name, port] of Object.entries(targets)) {
    const r = await run(port);
    results[name] ??= { p50: [], p99: [], failed: 0 };
    results[name].p50.push(r.p50);
    results[name].p99.push(r.p99);
    results[name].failed += r.failed;
  }
load.push(loadavg()[0]!);
webhook.kill();
statics.kill();
if (values.cert === undefined) rmSync(dir, { recursive: true, force: true });
const round2 = (x: number) => Math.round(x * 100) / 100;
console.log(
  JSON.stringify(
    {
      rate,
      seconds,
      rounds,
      load,
      results: Object.fromEntries(
        Object.entries(results).map(([name, r]) => [
          name,
          { p50Ms: round2(median(r.p50)), p99Ms: round2(median(r.p99)), failed: r.failed },
        ]),
      ),
    },
    null,
    2,
  ),
);
