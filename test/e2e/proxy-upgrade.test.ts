// End-to-end: an upgrade of `watch --dns-proxy` in place (SIGUSR1 to the supervisor) with the
// compiled binary in the namespace lab: the binary on disk is replaced under load, and the
// supervisor starts it again in its own process, the proxy's sockets held open across.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { copyFileSync, mkdirSync, readFileSync, renameSync, statSync, symlinkSync } from "node:fs";
import { readlink } from "node:fs/promises";
import {
  ADDR,
  collectStderr,
  createLab,
  describeNetns,
  domainwallCommand,
  killAndRemove,
  type Lab,
  proxyStateOf,
  until,
} from "../lab/lab.ts";

setDefaultTimeout(120_000);

describeNetns("watch --dns-proxy: an upgrade in place", () => {
  let lab: Lab;
  const running: Bun.Subprocess[] = [];
  const env = () => ({ DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: `${lab.dir}/run` });
  beforeAll(async () => {
    lab = await createLab({ cdn: { names: ["cdn.example", "unlisted.example"] } });
  });
  afterEach(() => killAndRemove(lab, running, env()));
  afterAll(() => lab.close());

  const proxyState = (not?: number) => proxyStateOf(lab, not);

  test("SIGUSR1 to the supervisor under 200 q/s, after the binary was replaced: the same PID runs the new binary on the same sockets, at most 0.5 % lost, every answer domainwall's, admissions kept", async () => {
    // A copy this test replaces, as a package upgrade does (a new file renamed over the old).
    const compiled = process.env.DOMAINWALL_BIN !== undefined;
    const bin = `${lab.dir}/domainwall`;
    if (compiled) copyFileSync(process.env.DOMAINWALL_BIN as string, bin);
    const command = compiled ? [bin] : domainwallCommand();
    const ready = `${lab.dir}/ready`;
    const child = lab.spawnDomainwall(["watch", "--dns-proxy", "--hosts", "cdn.example", "--ready-file", ready], { env: env(), command });
    running.push(child);
    const stderr = collectStderr(child);
    await until("the ready file", 30, async () => (await Bun.file(ready).exists()) || child.exitCode !== null);
    expect(child.exitCode).toBeNull();
    const before = await proxyState();
    expect(before.supervisorPid).toBe(child.pid);
    const admitted = (await lab.exec("app", ["dig", "+short", `@${ADDR.dnsV4}`, "cdn.example", "A"])).stdout.trim().split("\n");
    expect(admitted.length).toBe(2);

    const load = lab.exec("app", [
      process.execPath,
      `${import.meta.dir}/../lab/steady-load.ts`,
      ADDR.dnsV4,
      "cdn.example",
      "unlisted.example",
      "200",
      "5",
    ]);
    await Bun.sleep(1500);
    if (compiled) {
      copyFileSync(bin, `${bin}.new`);
      renameSync(`${bin}.new`, bin);
      expect(await readlink(`/proc/${child.pid}/exe`)).toEndWith("(deleted)");
    }
    process.kill(child.pid, "SIGUSR1");
    const result = JSON.parse((await load).stdout) as { sent: number; answered: number; lost: number; wrong: string[] };
    console.log(`upgrade in place under load: ${JSON.stringify(result)}`);
    expect(result.sent).toBeGreaterThan(800);
    expect(result.wrong).toEqual([]);
    expect(result.lost).toBeLessThanOrEqual(result.sent * 0.005);

    const after = await proxyState(before.workerPid);
    expect(after.supervisorPid).toBe(child.pid);
    expect(child.exitCode).toBeNull();
    if (compiled) {
      expect(await readlink(`/proc/${child.pid}/exe`)).toBe(bin);
      expect(statSync(`/proc/${child.pid}/exe`).ino).toBe(statSync(bin).ino);
    }
    expect(stderr()).toContain(`SIGUSR1: starting domainwall again in place (pid ${child.pid})`);
    expect(await lab.canConnect(admitted.map((host) => ({ host, port: 80 })))).toEqual([true, true]);
    expect(await lab.canConnect([{ host: "203.0.113.250", port: 80 }])).toEqual([false]);

    // The upgraded supervisor still stops as one: its worker too, the rules stay.
    process.kill(child.pid, "SIGTERM");
    expect(await child.exited).toBe(0);
    await until("the worker is gone", 10, async () => !(await Bun.file(`/proc/${after.workerPid}/stat`).exists()));
    expect(await lab.table()).not.toBe("");
  });

  test("a watch told it holds sockets it does not (DOMAINWALL_PROXY_HELD naming other descriptors) refuses to start, naming the descriptor; nothing is loaded", async () => {
    const result = await lab.domainwall(["watch", "--dns-proxy", "--hosts", "cdn.example"], {
      env: { ...env(), DOMAINWALL_PROXY_HELD: "127.0.0.1=0/1,::1=2/2" },
      timeoutMs: 30_000,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("descriptor 0 is not the UDP socket on 127.0.0.1 port 15353; nothing was loaded");
    expect(await lab.table()).toBe("");
  });

  /** Whether `pid` catches `signal` now (its SigCgt mask): false between an execve and the new image's handlers. */
  const catches = (pid: number, signal: number): boolean => {
    const mask = /^SigCgt:\s+([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? "0";
    return (BigInt(`0x${mask}`) & (1n << BigInt(signal - 1))) !== 0n;
  };
  /** Whether `pid` runs the image started again in place (its environment names the held sockets). */
  const newImage = (pid: number): boolean => {
    try {
      return readFileSync(`/proc/${pid}/environ`, "utf8").includes("DOMAINWALL_PROXY_HELD=");
    } catch {
      return false;
    }
  };
  const startWatch = async (extra: string[], command = domainwallCommand()) => {
    const ready = `${lab.dir}/ready-${Math.random().toString(36).slice(2)}`;
    const child = lab.spawnDomainwall(["watch", "--dns-proxy", "--hosts", "cdn.example", "--ready-file", ready, ...extra], {
      env: env(),
      command,
    });
    running.push(child);
    const stderr = collectStderr(child);
    await until("the ready file", 30, async () => (await Bun.file(ready).exists()) || child.exitCode !== null);
    expect(child.exitCode).toBeNull();
    return { child, stderr };
  };

  test("SIGTERM while the new image starts (before it catches the other signals) is not lost: with --remove-on-exit the watch stops and removes its rules", async () => {
    const { child, stderr } = await startWatch(["--remove-on-exit"]);
    const before = await proxyState();
    process.kill(child.pid, "SIGUSR1");
    // The window: the new image runs and catches SIGTERM (15) early, but not SIGUSR1 (10) yet; polled every millisecond.
    let inWindow = false;
    const deadline = performance.now() + 10_000;
    while (!inWindow && performance.now() < deadline && !stderr().includes("started again in place")) {
      inWindow = newImage(child.pid) && catches(child.pid, 15) && !catches(child.pid, 10);
      if (!inWindow) await Bun.sleep(1);
    }
    process.kill(child.pid, "SIGTERM");
    console.log(`SIGTERM sent ${inWindow ? "inside" : "after"} the window`);
    expect(inWindow).toBe(true);
    expect(await child.exited).toBe(0);
    expect(await lab.table()).toBe("");
    expect(stderr()).toContain("stopped and removed domainwall's rules (--remove-on-exit)");
    await until("the worker is gone", 10, async () => !(await Bun.file(`/proc/${before.workerPid}/stat`).exists()));
  });

  test("SIGUSR1 twice at once, through a symlink switched to a new version: the supervisor lives on and runs the version the symlink names", async () => {
    const compiled = process.env.DOMAINWALL_BIN !== undefined;
    mkdirSync(`${lab.dir}/v1`);
    mkdirSync(`${lab.dir}/v2`);
    if (compiled) {
      copyFileSync(process.env.DOMAINWALL_BIN as string, `${lab.dir}/v1/domainwall`);
      copyFileSync(process.env.DOMAINWALL_BIN as string, `${lab.dir}/v2/domainwall`);
      symlinkSync(`${lab.dir}/v1/domainwall`, `${lab.dir}/current`);
    }
    const { child, stderr } = await startWatch([], compiled ? [`${lab.dir}/current`] : domainwallCommand());
    const before = await proxyState();
    if (compiled) {
      symlinkSync(`${lab.dir}/v2/domainwall`, `${lab.dir}/next`);
      renameSync(`${lab.dir}/next`, `${lab.dir}/current`);
    }
    process.kill(child.pid, "SIGUSR1");
    await Bun.sleep(10);
    process.kill(child.pid, "SIGUSR1");
    const after = await proxyState(before.workerPid);
    await until(
      "a worker is ready again",
      30,
      async () => (await lab.exec("app", ["dig", "+short", `@${ADDR.dnsV4}`, "cdn.example", "A"])).stdout.trim() !== "",
    );
    expect(child.exitCode).toBeNull();
    expect(after.supervisorPid).toBe(child.pid);
    if (compiled) expect(await readlink(`/proc/${child.pid}/exe`)).toBe(`${lab.dir}/v2/domainwall`);
    expect(stderr()).toContain("started again in place");
    process.kill(child.pid, "SIGTERM");
    expect(await child.exited).toBe(0);
  });
});
