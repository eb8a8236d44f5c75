// The supervisor's decisions with a stand-in worker (a short Bun script): as root (it switches group).
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { supervise } from "../../src/proxy/supervisor.ts";

const root = process.getuid?.() === 0;
const gid = process.getgid?.() ?? 0;

/** A worker that records its pid and inherited sockets, signals ready when `ready`, and exits `code` after `ms`. */
const worker = (log: string, ready: boolean, code: number, ms: number) => [
  process.execPath,
  "-e",
  `require("node:fs").appendFileSync(${JSON.stringify(log)}, process.pid + " " + process.env.DOMAINWALL_PROXY_SOCKETS + "\\n");
   ${ready ? 'process.kill(Number(process.env.DOMAINWALL_PROXY_SUPERVISOR), "SIGUSR2");' : ""}
   setTimeout(() => process.exit(${code}), ${ms});`,
];

describe.if(root)("supervise", () => {
  test("a worker that ends before it was ever ready ends the supervisor with its exit code; it got the sockets at 3..6", async () => {
    const log = `${mkdtempSync(`${tmpdir()}/dw-sup-`)}/log`;
    const warnings: string[] = [];
    const code = await supervise({ port: 0, gid, command: worker(log, false, 3, 10), env: process.env, warn: (m) => warnings.push(m) });
    expect(code).toBe(3);
    expect(
      readFileSync(log, "utf8")
        .trim()
        .split("\n")
        .map((l) => l.split(" ")[1]),
    ).toEqual(["127.0.0.1=3/4,::1=5/6"]);
    expect(warnings).toEqual([]);
  });

  test("a worker that dies after it was ready is started again on the same sockets; SIGTERM is passed on and ends it", async () => {
    const log = `${mkdtempSync(`${tmpdir()}/dw-sup-`)}/log`;
    const warnings: string[] = [];
    const running = supervise({ port: 0, gid, command: worker(log, true, 1, 300), env: process.env, warn: (m) => warnings.push(m) });
    for (let i = 0; i < 200; i++) {
      await Bun.sleep(25);
      if ((readFileSync(log, { encoding: "utf8", flag: "a+" }).match(/\n/g)?.length ?? 0) >= 2) break;
    }
    process.kill(process.pid, "SIGTERM"); // the supervisor's handler takes it: passed to the worker
    const code = await running;
    const starts = readFileSync(log, "utf8").trim().split("\n");
    expect(starts.length).toBeGreaterThanOrEqual(2);
    expect(new Set(starts.map((l) => l.split(" ")[1]))).toEqual(new Set(["127.0.0.1=3/4,::1=5/6"]));
    expect(warnings[0]).toMatch(/^the DNS proxy's worker \(pid \d+\) ended \(exit 1\); starting another on the same sockets/);
    expect(code).toBe(143);
  }, 20_000);

  test("a stop passed on calls `stopped` once, after the worker exited; a worker that ends alone does not", async () => {
    const log = `${mkdtempSync(`${tmpdir()}/dw-sup-`)}/log`;
    const calls: string[] = [];
    const running = supervise({
      port: 0,
      gid,
      command: worker(log, true, 0, 300),
      env: process.env,
      warn: () => {},
      stopped: async (signal) => void calls.push(`${signal} after ${readFileSync(log, "utf8").trim().split("\n").length} starts`),
    });
    for (let i = 0; i < 200; i++) {
      await Bun.sleep(25);
      if ((readFileSync(log, { encoding: "utf8", flag: "a+" }).match(/\n/g)?.length ?? 0) >= 2) break;
    }
    expect(calls).toEqual([]);
    process.kill(process.pid, "SIGINT");
    await running;
    expect(calls.length).toBe(1);
    expect(calls[0]).toMatch(/^SIGINT after \d+ starts$/);
  }, 20_000);

  test("a worker that exits 2 after the first was ready ends the supervisor with 2 (no endless restarts)", async () => {
    const log = `${mkdtempSync(`${tmpdir()}/dw-sup-`)}/log`;
    const warnings: string[] = [];
    // The first start is ready and crashes; each later one exits 2 at once (a configuration it refuses).
    const command = [
      process.execPath,
      "-e",
      `const fs = require("node:fs");
       const first = !fs.existsSync(${JSON.stringify(log)});
       fs.appendFileSync(${JSON.stringify(log)}, process.pid + "\\n");
       if (first) { process.kill(Number(process.env.DOMAINWALL_PROXY_SUPERVISOR), "SIGUSR2"); setTimeout(() => process.exit(1), 200); }
       else process.exit(2);`,
    ];
    const code = await Promise.race([
      supervise({ port: 0, gid, command, env: process.env, warn: (m) => warnings.push(m) }),
      Bun.sleep(10_000).then(() => "still running"),
    ]);
    expect(code).toBe(2);
    expect(readFileSync(log, "utf8").trim().split("\n").length).toBe(2);
    expect(warnings.at(-1)).toMatch(/ended with a usage error \(exit 2\) before it was ready: the supervisor stops/);
  }, 20_000);
});
