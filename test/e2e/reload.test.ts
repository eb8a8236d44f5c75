// End-to-end: `watch --config FILE` reloads the file when it changes (an edit, or a ConfigMap-style
// symlink swap) and on SIGHUP, with the binary (DOMAINWALL_BIN, else the source), the kernel's
// netfilter and a real dnsmasq, in namespaces the lab creates and removes.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { createLab, describeNetns, type Lab } from "../lab/lab.ts";
import { tempDirs } from "../support/temp-dirs.ts";

setDefaultTimeout(120_000);
const tempDir = tempDirs();
const API = { host: "203.0.113.10", port: 80 };
const MIRROR = { host: "203.0.113.20", port: 80 };

/** Polls until `check` holds, for at most `withinMs`; returns whether it did. */
async function within(withinMs: number, check: () => Promise<boolean>): Promise<boolean> {
  const deadline = performance.now() + withinMs;
  do {
    if (await check()) return true;
    await Bun.sleep(100);
  } while (performance.now() < deadline);
  return false;
}

describeNetns("watch --config reloads (nft), end to end", () => {
  let lab: Lab;
  let watch: ReturnType<Lab["spawnDomainwall"]> | undefined;
  beforeAll(async () => {
    lab = await createLab();
    await lab.setRecords({ "api.example": [API.host], "mirror.example": [MIRROR.host] });
  });
  afterEach(async () => {
    watch?.kill("SIGTERM");
    await watch?.exited;
    if (process.env.DEBUG_RELOAD) console.log(await new Response(watch?.stderr).text());
    watch = undefined;
    await lab.domainwall(["remove", "--backend", "nft"]);
  });
  afterAll(() => lab.close());

  const start = async (config: string) => {
    const dir = tempDir("dw-reload-");
    const ready = `${dir}/ready`;
    watch = lab.spawnDomainwall(
      ["watch", "--backend", "nft", "--config", config, "--ready-file", ready, "--metrics-addr", "127.0.0.1:9464"],
      { env: { DOMAINWALL_RUN_DIR: dir } },
    );
    expect(await within(15_000, async () => Bun.file(ready).exists())).toBe(true);
  };
  /** Which of api.example and mirror.example connect now. */
  const reachable = async () => (await lab.canConnect([API, MIRROR], 300)).join(",");
  const metrics = async () =>
    (await lab.exec("app", [process.execPath, "-e", "console.log(await (await fetch('http://127.0.0.1:9464/metrics')).text())"])).stdout;

  test("an edit: within 2 s a newly listed name connects and a removed one does not; a broken edit keeps the policy and counts a failed reload", async () => {
    const config = `${tempDir("dw-conf-")}/domainwall.toml`;
    writeFileSync(config, 'hosts = ["api.example"]\n');
    await start(config);
    expect(await reachable()).toBe("true,false");
    writeFileSync(config, 'hosts = ["mirror.example"]\n');
    expect(await within(2_000, async () => (await reachable()) === "false,true")).toBe(true);
    writeFileSync(config, 'hosts = ["api.example", "mirror.example"\n'); // an unfinished array
    expect(await within(3_000, async () => (await metrics()).includes('domainwall_config_reloads_total{result="error"} 1\n'))).toBe(true);
    expect(await reachable()).toBe("false,true");
    const scraped = await metrics();
    expect(scraped).toContain('domainwall_config_reloads_total{result="ok"} 1\n');
    expect(scraped).toContain("domainwall_config_last_reload_successful 0\n");
    expect(scraped).toContain(
      `domainwall_config_info{sha256="${new Bun.CryptoHasher("sha256").update('hosts = ["mirror.example"]\n').digest("hex")}"} 1\n`,
    );
  });

  test("a ConfigMap-style update (the kubelet swaps the ..data symlink): within 2 s the new list is enforced", async () => {
    const volume = tempDir("dw-configmap-");
    const version = (name: string, text: string) => {
      mkdirSync(`${volume}/${name}`);
      writeFileSync(`${volume}/${name}/domainwall.toml`, text);
    };
    version("..2025_01_01_00_00_00.1", 'hosts = ["api.example"]\n');
    symlinkSync("..2025_01_01_00_00_00.1", `${volume}/..data`);
    symlinkSync("..data/domainwall.toml", `${volume}/domainwall.toml`);
    await start(`${volume}/domainwall.toml`);
    expect(await reachable()).toBe("true,false");
    version("..2025_01_01_00_01_00.2", 'hosts = ["mirror.example"]\n');
    symlinkSync("..2025_01_01_00_01_00.2", `${volume}/..data_tmp`);
    renameSync(`${volume}/..data_tmp`, `${volume}/..data`); // what the kubelet's atomic writer does
    expect(await within(2_000, async () => (await reachable()) === "false,true")).toBe(true);
  });

  test("SIGHUP reloads (and does not end the watch)", async () => {
    const config = `${tempDir("dw-conf-")}/domainwall.toml`;
    writeFileSync(config, 'hosts = ["api.example"]\n');
    await start(config);
    watch?.kill("SIGHUP");
    expect(await within(3_000, async () => (await metrics()).includes('domainwall_config_reloads_total{result="ok"} 1\n'))).toBe(true);
    expect(watch?.exitCode).toBeNull();
  });
});
