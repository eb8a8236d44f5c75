// `domainwall webhook` as a process on generated certificates, posted to over real HTTPS: the
// fixtures' answers, bad and oversized bodies, /healthz and /metrics, and a certificate replaced
// while requests run (no request fails; new connections get the new certificate). Runs the
// compiled binary when DOMAINWALL_BIN is set, else the source.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { renameSync, writeFileSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { connect } from "node:tls";
import { MAX_REVIEW_BYTES } from "../../src/webhook/review.ts";
import { deploymentPod, review } from "../webhook/fixtures.ts";
import { tempDirs } from "../support/temp-dirs.ts";

const dir = tempDirs()("domainwall-webhook-tls-");
const ROOT = `${import.meta.dir}/../..`;
const command = process.env.DOMAINWALL_BIN ? [process.env.DOMAINWALL_BIN] : ["bun", `${ROOT}/src/main.ts`];

/** A CA and a serving certificate for 127.0.0.1 it signed; returns the serial of the serving one. */
function makeCertificate(name: string): string {
  const run = (...args: string[]) => {
    const done = Bun.spawnSync(["openssl", ...args], { cwd: dir, stderr: "pipe", stdout: "pipe" });
    if (done.exitCode !== 0) throw new Error(`openssl ${args.join(" ")}: ${done.stderr.toString()}`);
    return done.stdout.toString();
  };
  if (!(Bun.spawnSync(["test", "-f", `${dir}/ca.crt`]).exitCode === 0))
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca", "-keyout", "ca.key", "-out", "ca.crt");
  writeFileSync(`${dir}/san.ext`, "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  run("req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${name}`, "-keyout", `${name}.key`, "-out", `${name}.csr`);
  run(
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    "san.ext",
    "-out",
    `${name}.crt`,
  );
  return run("x509", "-in", `${name}.crt`, "-noout", "-serial")
    .trim()
    .replace(/^serial=/, "");
}

/** Replace the served files the way the kubelet updates a Secret volume: write elsewhere, then rename over. */
function install(name: string): void {
  for (const ext of ["crt", "key"]) {
    writeFileSync(`${dir}/tls/.next.${ext}`, Bun.spawnSync(["cat", `${dir}/${name}.${ext}`]).stdout);
    renameSync(`${dir}/tls/.next.${ext}`, `${dir}/tls/tls.${ext}`);
  }
}

/** The serial of the certificate a fresh TLS connection is served. */
const servedSerial = (port: number): Promise<string> =>
  new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().serialNumber.toUpperCase());
      socket.end();
    });
    socket.on("error", reject);
  });

let webhook: Bun.Subprocess<"ignore", "pipe", "pipe">;
let logged = "";
let port = 0;
let metricsPort = 0;
let serials: { first: string; second: string };
const ca = () => Bun.file(`${dir}/ca.crt`).text();

beforeAll(async () => {
  Bun.spawnSync(["mkdir", "-p", `${dir}/tls`]);
  serials = { first: makeCertificate("first"), second: makeCertificate("second") };
  install("first");
  writeFileSync(`${dir}/webhook.toml`, 'image = "registry.example/domainwall:test"\n');
  // Ports chosen by the test (the webhook's flags need numbers): free ones from the kernel.
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const probe2 = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  [port, metricsPort] = [probe.port, probe2.port];
  probe.stop(true);
  probe2.stop(true);
  webhook = Bun.spawn(
    [
      ...command,
      "webhook",
      `--listen=127.0.0.1:${port}`,
      `--metrics-addr=127.0.0.1:${metricsPort}`,
      `--tls-cert=${dir}/tls/tls.crt`,
      `--tls-key=${dir}/tls/tls.key`,
      `--config=${dir}/webhook.toml`,
      "--log-format=json",
    ],
    { stdin: "ignore", stdout: "pipe", stderr: "pipe" },
  );
  void (async () => {
    for await (const chunk of webhook.stderr) logged += new TextDecoder().decode(chunk);
  })();
  const started = Date.now();
  while (Date.now() - started < 30_000) {
    const ok = await fetch(`http://127.0.0.1:${metricsPort}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await Bun.sleep(100);
  }
  webhook.kill();
  throw new Error(`webhook did not become healthy: ${await new Response(webhook.stderr).text()}`);
});

afterAll(() => webhook?.kill());

const post = async (body: string | Uint8Array, path = "/mutate") =>
  fetch(`https://127.0.0.1:${port}${path}`, {
    method: "POST",
    body,
    headers: { "content-type": "application/json" },
    tls: { ca: await ca() },
  });

describe("domainwall webhook over HTTPS", () => {
  test("a Deployment's pod is answered with a patch, verified against the test CA", async () => {
    const answer = await post(JSON.stringify(review(deploymentPod())));
    expect(answer.status).toBe(200);
    const body = (await answer.json()) as { response: { allowed: boolean; patchType: string; uid: string } };
    expect(body.response).toMatchObject({ allowed: true, patchType: "JSONPatch", uid: "705ab4f5-6393-11e8-b7cc-42010a800002" });
  });
  test("malformed JSON, a body that is no AdmissionReview, an oversized body: 400, and the webhook keeps answering", async () => {
    expect((await post("{not json")).status).toBe(400);
    expect((await post("{}")).status).toBe(400);
    for (const size of [MAX_REVIEW_BYTES, 4 * MAX_REVIEW_BYTES]) {
      const huge = JSON.stringify(review({ ...deploymentPod(), padding: "x".repeat(size) }));
      const answer = await post(huge);
      expect(answer.status).toBe(400);
      expect(await answer.text()).toBe(`the request body is over ${MAX_REVIEW_BYTES} bytes\n`);
    }
    expect((await post(JSON.stringify(review(deploymentPod())))).status).toBe(200);
  });
  test("one JSON log line per decision: outcome, uid, namespace, pod, time taken", async () => {
    const uid = "3c1e9a52-0000-4000-8000-000000000001";
    await post(JSON.stringify(review(deploymentPod(), { uid })));
    const lines = () =>
      logged
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((line) => line.uid === uid);
    const started = Date.now();
    while (lines().length === 0 && Date.now() - started < 10_000) await Bun.sleep(50);
    await Bun.sleep(200);
    expect(lines()).toHaveLength(1);
    expect(lines()[0]).toMatchObject({ level: "info", outcome: "injected", uid, namespace: "shop", pod: "web-7d4b9c-*", mode: "proxy" });
    expect(typeof lines()[0]?.ms).toBe("number");
  });
  test("/metrics counts requests by outcome and has the latency histogram", async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(text).toMatch(/domainwall_webhook_requests_total\{outcome="injected"\} [1-9]/);
    expect(text).toMatch(/domainwall_webhook_requests_total\{outcome="bad-request"\} [1-9]/);
    expect(text).toContain('domainwall_webhook_request_duration_seconds_bucket{le="+Inf"}');
  });
  test("the certificate is replaced while requests run: none fails, new connections get the new one", async () => {
    expect(await servedSerial(port)).toBe(serials.first);
    let running = true;
    let ok = 0;
    const failures: string[] = [];
    const body = JSON.stringify(review(deploymentPod()));
    const client = async () => {
      while (running) {
        try {
          const answer = await fetch(`https://127.0.0.1:${port}/mutate`, { method: "POST", body, tls: { ca: await ca() } });
          if (answer.status === 200) ok++;
          else failures.push(`status ${answer.status}`);
          await answer.arrayBuffer();
        } catch (error) {
          failures.push(String(error));
        }
      }
    };
    const clients = Array.from({ length: 4 }, client);
    await Bun.sleep(300);
    install("second");
    const started = Date.now();
    while ((await servedSerial(port)) !== serials.second) {
      if (Date.now() - started > 20_000) throw new Error("the new certificate was not served within 20 s");
      await Bun.sleep(100);
    }
    await Bun.sleep(300);
    running = false;
    await Promise.all(clients);
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(0);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toContain('domainwall_webhook_reloads_total{file="certificate",result="ok"} 1');
  });
  test("a broken certificate file is refused: the loaded one stays served", async () => {
    writeFileSync(`${dir}/tls/.next.crt`, "not a certificate\n");
    renameSync(`${dir}/tls/.next.crt`, `${dir}/tls/tls.crt`);
    const started = Date.now();
    while (!(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()).includes('file="certificate",result="error"} 1')) {
      if (Date.now() - started > 20_000) throw new Error("the broken certificate was not noticed within 20 s");
      await Bun.sleep(100);
    }
    expect(await servedSerial(port)).toBe(serials.second);
    expect((await post(JSON.stringify(review(deploymentPod())))).status).toBe(200);
  });
  test("the --config file is reloaded live: a new image is injected; a file that does not validate keeps the loaded one", async () => {
    const injectedImage = async () => {
      const body = (await (await post(JSON.stringify(review(deploymentPod())))).json()) as { response: { patch: string } };
      const patch = JSON.parse(Buffer.from(body.response.patch, "base64").toString()) as { path: string; value: { image?: string }[] }[];
      return patch.find((op) => op.path === "/spec/initContainers")?.value[0]?.image;
    };
    const metrics = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(await injectedImage()).toBe("registry.example/domainwall:test");
    writeFileSync(`${dir}/webhook.toml.next`, 'image = "registry.example/domainwall:next"\nmode = "apply"\n');
    renameSync(`${dir}/webhook.toml.next`, `${dir}/webhook.toml`);
    const started = Date.now();
    while ((await injectedImage()) !== "registry.example/domainwall:next") {
      if (Date.now() - started > 20_000) throw new Error("the new image was not injected within 20 s");
      await Bun.sleep(100);
    }
    writeFileSync(`${dir}/webhook.toml`, 'image = "registry.example/domainwall:next"\nmode = "enforce"\n');
    while (!(await metrics()).includes('domainwall_webhook_reloads_total{file="config",result="error"} 1')) {
      if (Date.now() - started > 20_000) throw new Error("the bad config was not noticed within 20 s");
      await Bun.sleep(100);
    }
    expect(await injectedImage()).toBe("registry.example/domainwall:next");
    expect(await metrics()).toContain('domainwall_webhook_reloads_total{file="config",result="ok"} 1');
  });
  test("/healthz connects afresh: while idle sockets fill the front it says 503, and recovers once they are closed at the deadline", async () => {
    const health = () => fetch(`http://127.0.0.1:${metricsPort}/healthz`).then((r) => r.status);
    expect(await health()).toBe(200); // a connection the old check would have kept and reused
    const sockets = Array.from({ length: 1030 }, () => {
      const socket = tcpConnect({ host: "127.0.0.1", port });
      socket.on("error", () => {});
      return socket;
    });
    try {
      await Bun.sleep(1500);
      expect(await health()).toBe(503);
      const started = Date.now();
      while ((await health()) !== 200) {
        if (Date.now() - started > 40_000) throw new Error("/healthz did not recover within 40 s of the flood");
        await Bun.sleep(250);
      }
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  }, 90_000);
});
