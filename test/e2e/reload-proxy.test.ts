// End-to-end: a reloaded `--config` under `watch --dns-proxy`, with the binary, the kernel and a real
// dnsmasq in the lab. The proxy's port sets are declared in the loaded table, so a file that would
// change them is refused as a whole (nothing changes: the old list still answers); one that moves
// names between the declared sets is taken live.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { ADDR, createLab, describeNetns, killAndRemove, type Lab, spawnUntilReady, until } from "../lab/lab.ts";

setDefaultTimeout(120_000);
const METRICS = "127.0.0.1:9464";

describeNetns("watch --dns-proxy --config: a reload that would change the declared port sets (nft)", () => {
  let lab: Lab;
  const running: Bun.Subprocess[] = [];
  const env = () => ({ DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: `${lab.dir}/run` });
  beforeAll(async () => {
    lab = await createLab();
    await lab.setRecords({ "api.example": ["203.0.113.10"], "mirror.example": ["203.0.113.20"] });
  });
  afterEach(() => killAndRemove(lab, running, env()));
  afterAll(() => lab.close());

  /** The rcode the pod's DNS (redirected to the proxy) gives for `name`'s A record. */
  const rcode = async (name: string): Promise<string | undefined> =>
    (
      JSON.parse(
        (await lab.exec("app", [process.execPath, `${import.meta.dir}/../lab/dig.ts`, ADDR.dnsV4, name, "A", "udp", "53"])).stdout,
      ) as { rcode?: string }
    ).rcode;
  const metric = async (name: string) => {
    const { stdout } = await lab.exec("app", [
      process.execPath,
      "-e",
      `console.log(await (await fetch('http://${METRICS}/metrics')).text())`,
    ]);
    return new RegExp(`^${name.replace(/[{}"]/g, "\\$&")} (\\d+)$`, "m").exec(stdout)?.[1];
  };

  test("a new port spec is refused, logged, counted and changes nothing; names on the declared specs are taken", async () => {
    const config = `${lab.dir}/proxy.toml`;
    const ready = `${lab.dir}/ready-reload-proxy`;
    writeFileSync(config, 'hosts = ["api.example:80"]\ndns-proxy = true\n');
    const { child, stderr } = await spawnUntilReady(
      lab,
      running,
      ["watch", "--config", config, "--metrics-addr", METRICS, "--ready-file", ready],
      ready,
      env(),
    );
    expect(child.exitCode).toBeNull();
    expect(await rcode("api.example")).toBe("NOERROR");
    expect(await rcode("mirror.example")).toBe("NXDOMAIN");

    writeFileSync(config, 'hosts = ["api.example:8080", "mirror.example"]\ndns-proxy = true\n');
    await until("the refused reload counted", 10, async () => (await metric('domainwall_config_reloads_total{result="error"}')) === "1");
    expect(stderr()).toContain("not reloaded; the loaded policy stays: the ports of the DNS proxy's list cannot change while watch runs");
    // Nothing of the refused file was taken: the old list answers, the new name does not.
    expect(await rcode("mirror.example")).toBe("NXDOMAIN");
    expect(await rcode("api.example")).toBe("NOERROR");

    writeFileSync(config, 'hosts = ["api.example:80", "mirror.example:80"]\ndns-proxy = true\n');
    await until("the reload taken", 10, async () => (await metric('domainwall_config_reloads_total{result="ok"}')) === "1");
    expect(await rcode("mirror.example")).toBe("NOERROR");
  });

  /** The answering worker's PID from the watch state, once it is not `not`. */
  const workerPid = async (not?: number): Promise<number> => {
    let pid: number | undefined;
    await until("the state file names a new worker", 30, async () => {
      const text = await Bun.file(`${lab.dir}/run/watch.json`)
        .text()
        .catch(() => "{}");
      pid = (JSON.parse(text) as { proxy?: { workerPid?: number } }).proxy?.workerPid;
      return pid !== undefined && pid !== not;
    });
    return pid as number;
  };

  test("a new worker starts from the last accepted file: neither a refused port change nor a file that does not parse reaches it", async () => {
    const config = `${lab.dir}/proxy-restart.toml`;
    const ready = `${lab.dir}/ready-reload-restart`;
    writeFileSync(config, 'hosts = ["api.example:80"]\ndns-proxy = true\n');
    const { child, stderr } = await spawnUntilReady(
      lab,
      running,
      ["watch", "--config", config, "--metrics-addr", METRICS, "--ready-file", ready],
      ready,
      env(),
    );
    expect(child.exitCode).toBeNull();
    const first = await workerPid();

    writeFileSync(config, 'hosts = ["api.example:8080", "mirror.example"]\ndns-proxy = true\n');
    await until("the refused reload counted", 10, async () => (await metric('domainwall_config_reloads_total{result="error"}')) === "1");
    process.kill(first, "SIGKILL");
    const second = await workerPid(first);
    await until("the new worker answers", 30, async () => (await rcode("api.example")) === "NOERROR");
    expect(await rcode("mirror.example")).toBe("NXDOMAIN");

    writeFileSync(config, 'hosts = ["api.example:80"\n');
    await until("the refused reload counted", 10, async () => (await metric('domainwall_config_reloads_total{result="error"}')) === "1");
    process.kill(second, "SIGKILL");
    await workerPid(second);
    await until("the third worker answers", 30, async () => (await rcode("api.example")) === "NOERROR");
    expect(await rcode("mirror.example")).toBe("NXDOMAIN");
    expect(child.exitCode).toBeNull();
    expect(stderr()).not.toContain("exit 2");
  });

  test("--remove-on-exit set by an accepted reload (and a worker replaced since): SIGTERM to the supervisor removes the rules", async () => {
    const config = `${lab.dir}/proxy-remove.toml`;
    const ready = `${lab.dir}/ready-reload-remove`;
    writeFileSync(config, 'hosts = ["api.example:80"]\ndns-proxy = true\n');
    const child = lab.spawnDomainwall(["watch", "--config", config, "--metrics-addr", METRICS, "--ready-file", ready], { env: env() });
    running.push(child);
    await until("the ready file", 30, async () => (await Bun.file(ready).exists()) || child.exitCode !== null);
    expect(child.exitCode).toBeNull();
    const first = await workerPid();
    writeFileSync(config, 'hosts = ["api.example:80"]\ndns-proxy = true\nremove-on-exit = true\n');
    await until("the reload taken", 10, async () => (await metric('domainwall_config_reloads_total{result="ok"}')) === "1");
    process.kill(first, "SIGKILL");
    await workerPid(first);
    await until("the new worker answers", 30, async () => (await rcode("api.example")) === "NOERROR");
    child.kill("SIGTERM");
    expect(await child.exited).toBe(0);
    expect(await lab.table()).toBe("");
    expect(await Bun.file(ready).exists()).toBe(false);
  });
});
