// End-to-end: `domainwall watch --dns-proxy` on a VM whose resolv.conf names only a local stub
// resolver (systemd-resolved's 127.0.0.53), started as root with nothing else set up. The stub is a
// real dnsmasq on 127.0.0.53 in the app namespace, running as nobody:nogroup like any resolver
// daemon (not the proxy's group), forwarding to the lab's CDN-like server (198.51.100.2, which logs
// every query). domainwall learns the stub's upstream servers from systemd-resolved's
// /run/systemd/resolve/resolv.conf, written in a private mount namespace for domainwall alone
// (`ip netns exec` remaps /etc only, not /run). The app's queries reach the stub (loopback
// destinations are not redirected); the stub's upstream queries are what the proxy intercepts.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { ADDR, createLab, describeNetns, domainwallCommand, killAndRemove, type Lab, until } from "../lab/lab.ts";

setDefaultTimeout(120_000);

const STUB = "127.0.0.53";
const WILD = ["b", "c", "d", "e", "f"].map((label) => `${label}.wild.example`);
const CDN = { names: ["cdn.example", "a.wild.example", ...WILD, "unlisted.example", "later.example"] };
const PROXY_GID = 2000053;
const HOSTS = "cdn.example,*.wild.example";

describeNetns("watch --dns-proxy behind a local stub resolver (systemd-resolved style, 127.0.0.53)", () => {
  let lab: Lab;
  let stub: Bun.Subprocess;
  const running: Bun.Subprocess[] = [];
  const env = () => ({
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    DOMAINWALL_BACKEND: "nft",
    DOMAINWALL_RUN_DIR: `${lab.dir}/run`,
  });

  beforeAll(async () => {
    lab = await createLab({ cdn: CDN });
    // The stub caches every answer for 10 minutes (--min-cache-ttl): the rounds below are served
    // from its cache, not by a fresh upstream query each.
    stub = Bun.spawn(
      [
        "ip",
        "netns",
        "exec",
        lab.app,
        "dnsmasq",
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--pid-file=",
        "--user=nobody",
        "--group=nogroup",
        "--bind-interfaces",
        `--listen-address=${STUB}`,
        `--server=${ADDR.dnsV4}`,
        "--min-cache-ttl=600",
      ],
      { stdin: "ignore", stdout: "ignore", stderr: "pipe" },
    );
    writeFileSync(lab.resolvConf, `nameserver ${STUB}\noptions edns0 trust-ad\n`);
    await until("the stub answers", 10, async () => (await dig("later.example")).rcode === "NOERROR" || stub.exitCode !== null);
    if (stub.exitCode !== null) throw new Error(`dnsmasq exited: ${await new Response(stub.stderr as ReadableStream).text()}`);
  });
  afterEach(async () => {
    await killAndRemove(lab, running, env());
    stub.kill("SIGHUP"); // clears the stub's cache: each test starts from a fresh stub
    await Bun.sleep(100);
  });
  afterAll(async () => {
    stub?.kill("SIGTERM");
    await stub?.exited;
    await lab.close();
  });

  /**
   * `domainwall watch --dns-proxy` as root in app, nothing else set up; systemd-resolved's upstream
   * list (198.51.100.2) exists in a private mount namespace for this process only.
   */
  const start = async (extra: string[] = []) => {
    const ready = `${lab.dir}/ready-${Math.random().toString(36).slice(2)}`;
    const script = `mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/resolve && printf 'nameserver ${ADDR.dnsV4}\\n' > /run/systemd/resolve/resolv.conf && exec "$@"`;
    const argv = [...domainwallCommand(), "watch", "--dns-proxy", "--hosts", HOSTS, "--ready-file", ready, ...extra];
    // ip netns exec, unshare and sh each exec the next: the PID is domainwall's.
    const child = Bun.spawn(["ip", "netns", "exec", lab.app, "unshare", "--mount", "sh", "-c", script, "sh", ...argv], {
      env: env(),
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    running.push(child);
    let stderr = "";
    const decoder = new TextDecoder();
    void (async () => {
      for await (const chunk of child.stderr) stderr += decoder.decode(chunk);
    })();
    await until("the ready file", 30, async () => (await Bun.file(ready).exists()) || child.exitCode !== null);
    if (child.exitCode !== null) throw new Error(`watch exited ${child.exitCode}: ${stderr}`);
    return { child, stderr: () => stderr };
  };
  const dig = async (name: string, server = STUB) =>
    JSON.parse((await lab.exec("app", [process.execPath, `${import.meta.dir}/../lab/dig.ts`, server, name, "A", "udp", "53"])).stdout) as {
      rcode?: string;
      answers?: { type: string; data: string }[];
    };
  /** getaddrinfo (`getent ahostsv4`, through resolv.conf: the stub) and a connection to port 80, `rounds` times. */
  const resolveConnect = async (name: string, rounds: number) =>
    JSON.parse(
      (await lab.exec("app", [process.execPath, `${import.meta.dir}/../lab/resolve-connect.ts`, name, String(rounds), "80", "4"])).stdout,
    ) as { connected: number; failures: string[] };
  const getent = async (name: string) => (await lab.exec("app", ["getent", "ahostsv4", name])).stdout.split(/\s+/)[0] ?? "";
  const connects = async (host: string) => (await lab.canConnect([{ host, port: 80 }], 500))[0] === true;
  const proxySet = async () => (await lab.nft(["list", "set", "inet", "domainwall", "proxy_v4"])).stdout;
  const asked = (since: string, query: string) => lab.cdnLog().slice(since.length).split("\n").includes(query);

  test("the stub's upstream queries go through the proxy: apps resolve through the stub (cached rounds too) and connect", async () => {
    const watch = await start();
    expect(watch.stderr()).toContain(`allowing DNS to its upstream servers ${ADDR.dnsV4}`);
    const before = lab.cdnLog();
    // A wildcard name is never resolved at start: only the proxy, seeing the stub's upstream query, can admit it.
    expect(await resolveConnect("a.wild.example", 10)).toEqual({ connected: 10, failures: [] });
    expect(await resolveConnect("cdn.example", 10)).toEqual({ connected: 10, failures: [] });
    const address = await getent("a.wild.example");
    expect(await proxySet()).toContain(address);
    // The stub asked upstream (through the proxy) once, and answered the other rounds from its cache.
    const upstreamQueries = lab
      .cdnLog()
      .slice(before.length)
      .split("\n")
      .filter((line) => line === "a.wild.example A").length;
    expect(upstreamQueries).toBeGreaterThanOrEqual(1);
    expect(upstreamQueries).toBeLessThan(10);
    // The stub runs as nobody:nogroup: its sockets are neither root's nor the proxy's group.
    const ids = readFileSync(`/proc/${stub.pid}/status`, "utf8");
    expect(ids).toMatch(/^Uid:\t65534\t/m);
    expect(ids).toMatch(/^Gid:\t65534\t/m);
    expect(watch.stderr()).toContain(`(group ${PROXY_GID})`);
  });

  test("an unlisted name gets NXDOMAIN through the stub and never reaches the upstream server", async () => {
    await start();
    const before = lab.cdnLog();
    expect((await dig("unlisted.example")).rcode).toBe("NXDOMAIN");
    expect((await lab.exec("app", ["getent", "ahostsv4", "unlisted.example"])).code).toBe(2); // getaddrinfo: not found
    expect((await dig("a.wild.example")).rcode).toBe("NOERROR"); // the stub does reach upstream, for a listed name
    expect(asked(before, "a.wild.example A")).toBe(true);
    expect(asked(before, "unlisted.example A")).toBe(false);
  });

  test("--remove-on-exit: after domainwall stops, the stub keeps resolving (its upstream queries go out directly again)", async () => {
    const watch = await start(["--remove-on-exit"]);
    expect((await dig("cdn.example")).rcode).toBe("NOERROR");
    watch.child.kill("SIGTERM");
    expect(await watch.child.exited).toBe(0);
    expect(await lab.table()).toBe("");
    const before = lab.cdnLog();
    // A name the stub never saw: it must ask upstream, and is answered; one the proxy refused is now answered too.
    expect((await dig("later.example")).rcode).toBe("NOERROR");
    expect((await dig("unlisted.example")).rcode).toBe("NOERROR");
    expect(asked(before, "later.example A")).toBe(true);
    expect(await resolveConnect("cdn.example", 2)).toEqual({ connected: 2, failures: [] });
  });

  test("the documented limit: a wildcard name the stub cached before domainwall started is not admitted until the stub asks again (flush its cache)", async () => {
    // Before domainwall: the stub caches answers it got directly from upstream.
    const cdnBefore = await getent("cdn.example");
    const cdnAll = (await lab.exec("app", ["getent", "ahostsv4", "cdn.example"])).stdout;
    // A wildcard name whose cached address is not also one of cdn.example's (2 of the same 100).
    let wild = "";
    let wildBefore = "";
    for (const name of WILD) {
      wildBefore = await getent(name);
      wild = name;
      if (!cdnAll.includes(`${wildBefore} `)) break;
    }
    await start();
    // An exact name is resolved at start, through the stub: its cached answer is admitted.
    expect(await getent("cdn.example")).toBe(cdnBefore);
    expect(await connects(cdnBefore)).toBe(true);
    // A wildcard name is only admitted from an answer the proxy sees: the cached one never went through it.
    expect(await getent(wild)).toBe(wildBefore);
    expect(await proxySet()).not.toContain(`${wildBefore} `);
    expect(await connects(wildBefore)).toBe(false);
    // Flushing the stub's cache (`resolvectl flush-caches` for systemd-resolved; SIGHUP for dnsmasq) fixes it.
    stub.kill("SIGHUP");
    await Bun.sleep(100);
    expect(await resolveConnect(wild, 3)).toEqual({ connected: 3, failures: [] });
  });
});
