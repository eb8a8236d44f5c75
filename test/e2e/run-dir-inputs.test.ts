// End-to-end, with the binary (DOMAINWALL_BIN, else the source) in namespaces the lab creates:
// files in the run directory are never written through a symlink, an unsafe run directory is
// refused, and inputs that are not regular files (a FIFO, /dev/zero) or too long never hang or
// flood the log.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, lstatSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createLab, describeNetns, domainwallCommand, killAndRemove, type Lab, collectStderr } from "../lab/lab.ts";
import { tempDirs } from "../support/temp-dirs.ts";

setDefaultTimeout(120_000);
const tempDir = tempDirs();
const API = { host: "203.0.113.10", port: 80 };
const MIRROR = { host: "203.0.113.20", port: 80 };

async function within(withinMs: number, check: () => Promise<boolean> | boolean): Promise<boolean> {
  const deadline = performance.now() + withinMs;
  do {
    if (await check()) return true;
    await Bun.sleep(100);
  } while (performance.now() < deadline);
  return false;
}

/** A run directory as domainwall would make it (0755, root's), with a victim file beside it. */
function runDirWithVictim(): { run: string; victim: string } {
  const base = tempDir("dw-rundir-");
  const run = `${base}/run`;
  mkdirSync(run, { mode: 0o755 });
  writeFileSync(`${base}/victim`, "precious\n");
  return { run, victim: `${base}/victim` };
}

test("render --config /dev/zero exits 2 at once, naming the device; a 17 MiB config is refused by its size", async () => {
  const started = performance.now();
  const zero = Bun.spawnSync([...domainwallCommand(), "render", "--config", "/dev/zero"], { stderr: "pipe", timeout: 10_000 });
  const elapsedMs = performance.now() - started;
  if (process.env.DEBUG_TIMING) console.log(`render --config /dev/zero: ${elapsedMs.toFixed(0)} ms`);
  expect(zero.exitCode).toBe(2);
  expect(zero.stderr.toString()).toContain('--config: "/dev/zero" cannot be read: is a character device, not a regular file');
  expect(elapsedMs).toBeLessThan(10_000);
  const big = `${tempDir("dw-big-")}/big.toml`;
  writeFileSync(big, `# ${"x".repeat(17 * 2 ** 20)}\n`);
  const refused = Bun.spawnSync([...domainwallCommand(), "render", "--config", big], { stderr: "pipe", timeout: 10_000 });
  expect(refused.exitCode).toBe(2);
  expect(refused.stderr.toString()).toContain("more than the 16 MiB a file may hold here");
});

test("a FIFO as --config or --allow-file is refused at once (nobody writes to it: a blocking read would wait forever)", async () => {
  const dir = tempDir("dw-fifo-");
  Bun.spawnSync(["mkfifo", `${dir}/fifo`]);
  for (const flag of ["--config", "--allow-file"]) {
    const result = Bun.spawnSync([...domainwallCommand(), "render", "--hosts", "api.example", flag, `${dir}/fifo`], {
      stderr: "pipe",
      timeout: 10_000,
    });
    expect({ flag, code: result.exitCode }).toEqual({ flag, code: 2 });
    expect(result.stderr.toString()).toContain(`${flag}: "${dir}/fifo" cannot be read: is a FIFO or pipe, not a regular file`);
  }
});

test("a 4.7 MB value in a config file makes a short error, not a 4.7 MB log line", async () => {
  const config = `${tempDir("dw-long-")}/long.toml`;
  writeFileSync(config, `ports = "${"1".repeat(4_700_000)}"\n`);
  const result = Bun.spawnSync([...domainwallCommand(), "render", "--config", config], { stderr: "pipe", timeout: 30_000 });
  expect(result.exitCode).toBe(2);
  expect(result.stderr.toString()).toContain("(4700000 characters)");
  expect(result.stderr.length).toBeLessThan(2000);
});

test("render refuses IPv4-mapped addresses in --allow, --hosts and the allow file, giving the IPv4 form", async () => {
  const file = `${tempDir("dw-mapped-")}/allow.txt`;
  writeFileSync(file, "198.51.100.0/24\n::ffff:192.0.2.0/120\n");
  const result = Bun.spawnSync(
    [...domainwallCommand(), "render", "--allow", "::ffff:10.0.0.1", "--hosts", "::ffff:169.254.169.254,api.example", "--allow-file", file],
    { stderr: "pipe", stdout: "pipe", timeout: 30_000 },
  );
  const stderr = result.stderr.toString();
  expect(result.exitCode).toBe(2);
  expect(stderr).toContain('--allow: "::ffff:10.0.0.1" is an IPv4-mapped IPv6 address');
  expect(stderr).toContain("write 10.0.0.1");
  expect(stderr).toContain('--hosts: "::ffff:169.254.169.254" is an IPv4-mapped IPv6 address');
  expect(stderr).toContain(`${file}:2: "::ffff:192.0.2.0/120" is an IPv4-mapped IPv6 address`);
  expect(stderr).toContain("write 192.0.2.0/24");
  expect(result.stdout.toString()).toBe("");
});

describeNetns("the run directory and inputs, end to end (nft)", () => {
  let lab: Lab;
  const running: Bun.Subprocess[] = [];
  beforeAll(async () => {
    lab = await createLab();
    await lab.setRecords({ "api.example": [API.host], "mirror.example": [MIRROR.host] });
  });
  afterEach(() => killAndRemove(lab, running, { DOMAINWALL_BACKEND: "nft" }));
  afterAll(() => lab.close());

  test("apply: a symlinked names.json is replaced, its target left untouched", async () => {
    const { run, victim } = runDirWithVictim();
    symlinkSync(victim, `${run}/names.json`);
    const result = await lab.domainwall(["apply", "--backend", "nft", "--hosts", "api.example"], { env: { DOMAINWALL_RUN_DIR: run } });
    expect(result.code).toBe(0);
    expect(readFileSync(victim, "utf8")).toBe("precious\n");
    expect(lstatSync(`${run}/names.json`).isSymbolicLink()).toBe(false);
    expect(JSON.parse(readFileSync(`${run}/names.json`, "utf8")).names).toMatchObject([{ name: "api.example", addresses: [API.host] }]);
  });

  test("watch: a symlinked watch.json (and names.json, written when it stops) is replaced, its target left untouched", async () => {
    const { run, victim } = runDirWithVictim();
    symlinkSync(victim, `${run}/watch.json`);
    symlinkSync(victim, `${run}/names.json`);
    const ready = `${tempDir("dw-ready-")}/ready`;
    const watch = lab.spawnDomainwall(["watch", "--backend", "nft", "--hosts", "api.example", "--ready-file", ready], {
      env: { DOMAINWALL_RUN_DIR: run },
    });
    running.push(watch);
    expect(await within(15_000, () => Bun.file(ready).exists())).toBe(true);
    expect(await within(5_000, () => !lstatSync(`${run}/watch.json`).isSymbolicLink())).toBe(true);
    expect(JSON.parse(readFileSync(`${run}/watch.json`, "utf8")).pid).toBeGreaterThan(0);
    watch.kill("SIGTERM");
    expect(await watch.exited).toBe(0);
    expect(lstatSync(`${run}/names.json`).isSymbolicLink()).toBe(false);
    expect(readFileSync(victim, "utf8")).toBe("precious\n");
  });

  test("a group-writable run directory, or a symlink as the run directory: exit 2 naming it, nothing loaded", async () => {
    const { run } = runDirWithVictim();
    chmodSync(run, 0o775);
    const writable = await lab.domainwall(["apply", "--backend", "nft", "--hosts", "api.example"], { env: { DOMAINWALL_RUN_DIR: run } });
    expect(writable.code).toBe(2);
    expect(writable.stderr).toContain(`run directory "${run}" (DOMAINWALL_RUN_DIR) is writable by its group (mode 0775)`);
    expect(await lab.table()).toBe("");
    const linked = `${run}-link`;
    chmodSync(run, 0o755);
    symlinkSync(run, linked);
    const watch = await lab.domainwall(["watch", "--backend", "nft", "--hosts", "api.example"], { env: { DOMAINWALL_RUN_DIR: linked } });
    expect(watch.code).toBe(2);
    expect(watch.stderr).toContain(`run directory "${linked}" (DOMAINWALL_RUN_DIR) is a symlink`);
    expect(await lab.table()).toBe("");
  });

  test("watch --config: a FIFO swapped in is refused with a logged error at once; a valid file after it is reloaded on SIGHUP", async () => {
    const dir = tempDir("dw-conf-");
    const config = `${dir}/domainwall.toml`;
    writeFileSync(config, 'hosts = ["api.example"]\n');
    const ready = `${dir}/ready`;
    const watch = lab.spawnDomainwall(["watch", "--backend", "nft", "--config", config, "--ready-file", ready], {
      env: { DOMAINWALL_RUN_DIR: `${dir}/run` },
    });
    running.push(watch);
    const stderr = collectStderr(watch);
    expect(await within(15_000, () => Bun.file(ready).exists())).toBe(true);
    expect(await lab.canConnect([API, MIRROR], 300)).toEqual([true, false]);
    rmSync(config);
    Bun.spawnSync(["mkfifo", config]);
    watch.kill("SIGHUP");
    expect(await within(5_000, () => stderr().includes("is a FIFO or pipe, not a regular file"))).toBe(true);
    expect(stderr()).toContain(`${config}: not reloaded; the loaded policy stays`);
    rmSync(config);
    writeFileSync(config, 'hosts = ["mirror.example"]\n');
    watch.kill("SIGHUP");
    expect(await within(5_000, async () => (await lab.canConnect([API, MIRROR], 300)).join() === "false,true")).toBe(true);
    expect(stderr()).toContain(`${config}: reloaded`);
    expect(watch.exitCode).toBeNull();
  });

  test("apply --allow with an IPv4-mapped address: exit 2 with the IPv4 form, nothing loaded", async () => {
    const result = await lab.domainwall(["apply", "--backend", "nft", "--hosts", "api.example", "--allow", "::ffff:203.0.113.20"], {
      env: { DOMAINWALL_RUN_DIR: `${tempDir("dw-run-")}/run` },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("write 203.0.113.20");
    expect(await lab.table()).toBe("");
  });
});
