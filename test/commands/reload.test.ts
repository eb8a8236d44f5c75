import { describe, expect, test } from "bun:test";
import { Writable } from "node:stream";
import { reloadOnChange, sha256 } from "../../src/commands/reload.ts";
import { createLogger } from "../../src/log.ts";
import type { ConfigOf, ParsedConfig } from "../../src/config/config.ts";
import { usageError } from "../../src/errors.ts";
import type { Reconfiguration, Watcher } from "../../src/watch/watcher.ts";
import type { World } from "../../src/world.ts";
import { parseConfig } from "../support/config.ts";
import { fakeRuntime } from "../support/fake-runtime.ts";

const WATCH = { removeOnExit: false };
const watchConfig = (hosts: string, metrics?: string): ConfigOf<"watch"> => {
  const { config } = parseConfig({
    strict: false,
    reject: false,
    requireHosts: true,
    hosts: { from: "FILE: hosts", value: hosts },
    watch: { ...WATCH, ...(metrics && { metricsAddr: { from: "FILE: metrics-addr", value: metrics } }) },
  });
  const { watch, ...policy } = config;
  return { command: "watch", logFormat: "text", backend: "auto", policy, watch: watch! };
};

const proxied = (config: ConfigOf<"watch">, port = 15353): ConfigOf<"watch"> => ({
  ...config,
  policy: { ...config.policy, dnsProxy: { port, gid: 2000053 } },
});

/** A reloader over a fake world: `notify` stands for SIGHUP or a change in the directory. */
function setup(initial: string, loaded = watchConfig("a.example"), refuse: (next: Reconfiguration) => void = () => {}) {
  const files: Record<string, string> = { "/etc/dw/config.toml": initial };
  let notify: (reason: "SIGHUP" | "changed") => void = () => {};
  let log = "";
  const stream = new Writable({ write: (chunk, _enc, done) => ((log += chunk.toString()), done()) }) as unknown as NodeJS.WriteStream;
  const taken: Reconfiguration[] = [];
  const watcher = { reconfigure: (next: Reconfiguration) => (refuse(next), void taken.push(next)) } as unknown as Watcher;
  /** What the file means: `hosts = a,b`, `metrics = ADDR`, or anything else is a broken file. */
  const reread = async (): Promise<ParsedConfig> => {
    const text = files["/etc/dw/config.toml"] ?? "";
    const match = /^hosts = (\S+)(?: metrics = (\S+))?( dns-proxy(?:-port=(\d+))?)?$/.exec(text);
    if (!match) throw usageError(`invalid configuration:\n  - /etc/dw/config.toml:1: not valid TOML`);
    const config = watchConfig(match[1]!, match[2]);
    return { config: match[3] ? proxied(config, Number(match[4] ?? 15353)) : config, warnings: [] };
  };
  const world = {
    readFile: async (path: string) => files[path],
    sleep: async () => {},
    configChanges: (_path: string, n: typeof notify) => ((notify = n), { stop: () => {} }),
  } as unknown as World;
  const reloader = reloadOnChange(
    {
      world,
      runtime: fakeRuntime(),
      log: createLogger("text", stream),
      backend: async () => ({}) as never,
      others: async () => ({ backends: [] }),
      reread,
    },
    "/etc/dw/config.toml",
    loaded,
    initial,
    watcher,
    () => {},
  );
  const change = async (text: string | undefined, reason: "SIGHUP" | "changed" = "changed") => {
    if (text !== undefined) files["/etc/dw/config.toml"] = text;
    notify(reason);
    await reloader.stop();
  };
  return { reloader, change, taken, log: () => log };
}

describe("reloadOnChange", () => {
  test("a changed file is validated and handed to the loop; the hash follows the loaded file", async () => {
    const r = setup("hosts = a.example");
    await r.change("hosts = a.example,b.example");
    expect(r.taken.map((t) => t.config.hosts)).toEqual([["a.example", "b.example"]]);
    expect(r.reloader.stats()).toEqual({ ok: 1, failed: 0, lastOk: true, sha256: sha256("hosts = a.example,b.example") });
    expect(r.log()).toContain("/etc/dw/config.toml: reloaded (changed): names added: b.example; removed: none; loading the difference");
  });

  test("a change event for the same text (another file in the directory) does nothing; SIGHUP reloads anyway", async () => {
    const r = setup("hosts = a.example");
    await r.change(undefined);
    expect(r.taken).toEqual([]);
    await r.change(undefined, "SIGHUP");
    expect(r.taken).toHaveLength(1);
  });

  test("a broken file keeps the loaded policy, logs the problems and counts a failed reload, once per edit", async () => {
    const r = setup("hosts = a.example");
    await r.change("hosts = [\n");
    await r.change(undefined);
    expect(r.taken).toEqual([]);
    expect(r.reloader.stats()).toEqual({ ok: 0, failed: 1, lastOk: false, sha256: sha256("hosts = a.example") });
    expect(r.log()).toContain(
      "/etc/dw/config.toml: not reloaded; the loaded policy stays: invalid configuration:\n  - /etc/dw/config.toml:1: not valid TOML",
    );
  });

  test("an option that cannot change at run time refuses the whole file", async () => {
    const r = setup("hosts = a.example");
    await r.change("hosts = b.example metrics = 127.0.0.1:9464");
    expect(r.taken).toEqual([]);
    expect(r.reloader.stats().failed).toBe(1);
    expect(r.log()).toContain("metrics-addr cannot change while watch runs (restart it to change it)");
  });

  test("the DNS proxy cannot be turned on or off, nor moved to another port, at run time", async () => {
    const on = setup("hosts = a.example");
    await on.change("hosts = a.example dns-proxy");
    expect(on.taken).toEqual([]);
    expect(on.log()).toContain("dns-proxy cannot change while watch runs (restart it to change it)");
    const off = setup("hosts = a.example dns-proxy", proxied(watchConfig("a.example")));
    await off.change("hosts = b.example");
    expect(off.taken).toEqual([]);
    expect(off.log()).toContain("dns-proxy cannot change while watch runs");
    const port = setup("hosts = a.example dns-proxy", proxied(watchConfig("a.example")));
    await port.change("hosts = a.example dns-proxy-port=15354");
    expect(port.log()).toContain("dns-proxy-port cannot change while watch runs");
    await port.change("hosts = b.example dns-proxy");
    expect(port.taken.map((t) => t.config.hosts)).toEqual([["b.example"]]);
  });

  test("a configuration the running loop refuses (the DNS proxy's declared port sets) is a failed reload with its reason; a later one is taken", async () => {
    const r = setup("hosts = a.example:443 dns-proxy", proxied(watchConfig("a.example:443")), (next) => {
      if (next.config.hosts.includes("a.example") && next.config.hostPorts.get("a.example")?.[0]?.first === 8443)
        throw new Error("the ports of the DNS proxy's list cannot change while watch runs");
    });
    await r.change("hosts = a.example:8443 dns-proxy");
    expect(r.log()).toContain("not reloaded; the loaded policy stays: the ports of the DNS proxy's list cannot change while watch runs");
    expect(r.taken).toEqual([]);
    expect(r.reloader.stats().failed).toBe(1);
    await r.change("hosts = a.example:443,b.example:443,c.example dns-proxy");
    expect(r.taken.map((t) => t.config.hosts)).toEqual([["a.example", "b.example", "c.example"]]);
  });

  test("without the DNS proxy the ports of names may change", async () => {
    const plain = setup("hosts = a.example:443", watchConfig("a.example:443"));
    await plain.change("hosts = a.example:8443");
    expect(plain.taken).toHaveLength(1);
  });
});
