// A network-namespace lab for end-to-end tests (root only):
//
//   [app]  198.51.100.1, 2001:db8:1::1  — where domainwall runs, like a pod; listeners on 3000, 3001
//     | veth
//   [net]  198.51.100.2/.3, 2001:db8:1::2/::3 — dnsmasq (resolver on .2/::2, a "rogue" one on .3/::3)
//          203.0.113.0/24 and 2001:db8:ff::/64 routed to lo: one listener answers on TCP 80, 443, 8081,
//          8082 and echoes UDP on 8082 for all
//   [inner] 192.0.2.2 — optional (addInner): a namespace routed through app, like a container on a VM
//
// Documentation addresses only; namespaces are unique per lab and deleted by close(); processes are
// stopped by the PID the lab started.
import { describe, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { resolve } from "node:path";
import type { CdnConfig } from "./cdn-dns.ts";

export const isRoot = process.getuid?.() === 0;
const REPO = resolve(import.meta.dir, "../..");
/** Absolute, so a test can give domainwall a PATH without nft and still enter the namespace. */
const IP = Bun.which("ip") ?? "/usr/sbin/ip";

/** `describe` as root; otherwise skipped with a message, or failing when DOMAINWALL_REQUIRE_NETNS=1 (CI). */
export function describeNetns(name: string, fn: () => void): void {
  if (isRoot) return describe(name, fn);
  if (process.env.DOMAINWALL_REQUIRE_NETNS === "1") {
    return describe(name, () =>
      test("needs root for network namespaces", () => {
        throw new Error("DOMAINWALL_REQUIRE_NETNS=1 but not running as root: the namespace tests cannot run");
      }),
    );
  }
  console.warn(`skipping "${name}": network-namespace tests need root`);
  describe.skip(name, fn);
}

/** Poll `check` every 50 ms until it holds; the seconds it took, or throw after `deadlineS`. */
export async function until(what: string, deadlineS: number, check: () => Promise<boolean>): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > deadlineS * 1000) throw new Error(`${what}: not within ${deadlineS}s`);
    await Bun.sleep(50);
  }
  return (performance.now() - started) / 1000;
}

export const ADDR = {
  appV4: "198.51.100.1",
  appV6: "2001:db8:1::1",
  dnsV4: "198.51.100.2",
  dnsV6: "2001:db8:1::2",
  rogueDnsV4: "198.51.100.3",
  rogueDnsV6: "2001:db8:1::3",
} as const;

export interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export type Probe = "connected" | "refused" | "timeout" | string;

export interface Target {
  readonly host: string;
  readonly port: number;
}

let counter = 0;

function sh(argv: string[]): string {
  const result = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")} failed (${result.exitCode}): ${result.stderr.toString()}`);
  return result.stdout.toString();
}

async function run(argv: string[], opts: { env?: Record<string, string>; stdin?: string; timeoutMs?: number } = {}): Promise<Result> {
  const child = Bun.spawn(argv, {
    env: opts.env,
    stdin: opts.stdin === undefined ? "ignore" : new Blob([opts.stdin]),
    stdout: "pipe",
    stderr: "pipe",
    timeout: opts.timeoutMs ?? 60_000,
  });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

/** The command that runs domainwall: the compiled binary in DOMAINWALL_BIN, else the source. */
export function domainwallCommand(): string[] {
  return process.env.DOMAINWALL_BIN ? [process.env.DOMAINWALL_BIN] : [process.execPath, `${REPO}/src/main.ts`];
}

/** The optional inner namespace: behind app, which forwards its traffic (see `addInner`). */
export const INNER = { appSide: "192.0.2.1", inner: "192.0.2.2" } as const;

/** What the net namespace answers on, for every address of its ranges. */
export const NET_PORTS = { tcp: [80, 443, 8081, 8082], udp: [8082] } as const;

export interface Lab {
  readonly app: string;
  readonly net: string;
  readonly dir: string;
  readonly resolvConf: string;
  setRecords(records: Record<string, readonly string[]>, opts?: { cnames?: Record<string, string> }): Promise<void>;
  startDns(): Promise<void>;
  stopDns(): Promise<void>;
  exec(ns: "app" | "net", argv: string[], opts?: { env?: Record<string, string>; stdin?: string; timeoutMs?: number }): Promise<Result>;
  domainwall(args: string[], opts?: { env?: Record<string, string>; path?: string; timeoutMs?: number }): Promise<Result>;
  /** Start domainwall in app without waiting (watch, confirm); the caller stops it. */
  /** `command`: the binary to run instead of domainwallCommand()'s (a copy a test replaces, say). */
  spawnDomainwall(
    args: string[],
    opts?: { env?: Record<string, string>; command?: readonly string[] },
  ): Bun.Subprocess<"ignore", "pipe", "pipe">;
  probe(targets: readonly Target[], timeoutMs?: number): Promise<Probe[]>;
  /** From app: one UDP datagram to each target, "answered" when its echo came back. */
  probeUdp(targets: readonly Target[], timeoutMs?: number): Promise<string[]>;
  /**
   * A namespace behind app (192.0.2.2 on a veth to app's 192.0.2.1, default route via app, app
   * forwarding IPv4, net routing 192.0.2.0/24 back via app): traffic from it is forwarded by app.
   */
  addInner(): Promise<void>;
  /** From the inner namespace (after addInner): TCP connections. */
  probeInner(targets: readonly Target[], timeoutMs?: number): Promise<Probe[]>;
  canConnect(targets: readonly Target[], timeoutMs?: number): Promise<boolean[]>;
  canConnectInbound(targets: readonly Target[], timeoutMs?: number): Promise<boolean[]>;
  dnsAnswers(server: string, name: string, timeoutMs?: number): Promise<boolean>;
  nft(args: string[], stdin?: string): Promise<Result>;
  /** `nft list table inet domainwall` in app, without element timers (they tick); "" when there is none. */
  table(): Promise<string>;
  /** With `cdn`: the names the CDN server was asked (`NAME TYPE` per line). */
  cdnLog(): string;
  /** Count committed nft transactions in app until the returned function is called. */
  countTransactions(): Promise<() => Promise<number>>;
  close(): Promise<void>;
}

export interface LabOptions {
  /** dnsmasq's --local-ttl (default 30). */
  readonly ttl?: number;
  /**
   * Answer like a bare dnsmasq without upstream: REFUSED for a name or record type it has no data
   * for (an AAAA query for a name with only A records), where real resolvers say NXDOMAIN or NODATA.
   */
  readonly refuseUnknown?: boolean;
  /**
   * Instead of dnsmasq, test/lab/cdn-dns.ts answers on every address of net (port 53, UDP and
   * TCP, IPv4): each A/AAAA query for its names gets 2 random addresses of 100 in 203.0.113.0/24
   * (2001:db8:ff::/64), TTL 30 s; every query is logged. app's resolv.conf names 198.51.100.2 only.
   */
  readonly cdn?: CdnConfig;
}

export async function createLab(opts: LabOptions = {}): Promise<Lab> {
  const id = `dw${process.pid % 100000}x${counter++}`;
  const app = `${id}a`;
  const net = `${id}n`;
  const dir = mkdtempSync(`${tmpdir()}/${id}-`);
  chmodSync(dir, 0o755); // dnsmasq re-reads the hosts file as nobody
  const hostsFile = `${dir}/hosts`;
  const etc = `/etc/netns/${app}`;
  const children: Bun.Subprocess[] = [];
  let dns: Bun.Subprocess<"ignore", "ignore", "pipe"> | undefined;
  let cnames: Record<string, string> = {};
  let closed = false;

  const inner = `${id}i`;
  let innerAdded = false;
  const inNs = (ns: "app" | "net" | "inner") => [IP, "netns", "exec", ns === "app" ? app : ns === "net" ? net : inner];

  const close = async () => {
    if (closed) return;
    closed = true;
    for (const child of [...children, dns]) child?.kill("SIGKILL");
    await Promise.all([...children, dns].map((c) => c?.exited));
    for (const ns of [app, net, ...(innerAdded ? [inner] : [])]) Bun.spawnSync(["ip", "netns", "delete", ns], { stderr: "ignore" });
    rmSync(etc, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  };
  process.once("exit", () => {
    if (!closed)
      for (const ns of [app, net, ...(innerAdded ? [inner] : [])]) Bun.spawnSync(["ip", "netns", "delete", ns], { stderr: "ignore" });
  });

  const cdnLogFile = `${dir}/cdn.log`;
  const startDns = async () => {
    // A start over one still running (a test that restarts DNS) would orphan the first server.
    if (dns !== undefined) await stopDns();
    if (opts.cdn !== undefined) {
      writeFileSync(`${dir}/cdn.json`, JSON.stringify(opts.cdn));
      dns = Bun.spawn(
        [
          ...inNs("net"),
          process.execPath,
          `${import.meta.dir}/cdn-dns.ts`,
          "--listen",
          "0.0.0.0",
          "--port",
          "53",
          "--config",
          `${dir}/cdn.json`,
          "--log",
          cdnLogFile,
        ],
        {
          stdin: "ignore",
          stdout: "pipe",
          stderr: "pipe",
        },
      ) as unknown as Bun.Subprocess<"ignore", "ignore", "pipe">;
      const reader = (dns.stdout as unknown as ReadableStream<Uint8Array>).getReader();
      const first = await reader.read(); // "listening on ..."
      reader.releaseLock();
      if (first.done) throw new Error(`cdn-dns exited: ${await new Response(dns.stderr).text()}`);
      return;
    }
    const listen = [ADDR.dnsV4, ADDR.rogueDnsV4, ADDR.dnsV6, ADDR.rogueDnsV6].join(",");
    dns = Bun.spawn(
      [
        ...inNs("net"),
        "dnsmasq",
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--pid-file=",
        `--addn-hosts=${hostsFile}`,
        `--local-ttl=${opts.ttl ?? 30}`,
        "--bind-interfaces",
        `--listen-address=${listen}`,
        ...(opts.refuseUnknown ? [] : ["--local=/#/"]), // no upstream: unknown names get NXDOMAIN, not REFUSED
        ...Object.entries(cnames).map(([alias, target]) => `--cname=${alias},${target}`),
      ],
      { stdin: "ignore", stdout: "ignore", stderr: "pipe" },
    );
    // Ready when it answers.
    for (let i = 0; i < 50; i++) {
      const probe = await run([...inNs("net"), process.execPath, `${import.meta.dir}/probe.ts`, "dns", "200", ADDR.dnsV4, "ready.invalid"]);
      if (probe.stdout.trim() === "true") return;
      if (dns.exitCode !== null) throw new Error(`dnsmasq exited: ${await new Response(dns.stderr).text()}`);
    }
    throw new Error("dnsmasq did not start answering");
  };

  const stopDns = async () => {
    dns?.kill("SIGTERM");
    await dns?.exited;
    dns = undefined;
  };

  try {
    for (const ns of [app, net]) sh(["ip", "netns", "add", ns]);
    sh(["ip", "link", "add", `${id}va`, "netns", app, "type", "veth", "peer", "name", `${id}vn`, "netns", net]);
    const ipIn = (ns: string, ...args: string[]) => sh(["ip", "-n", ns, ...args]);
    ipIn(app, "link", "set", "lo", "up");
    ipIn(net, "link", "set", "lo", "up");
    ipIn(app, "link", "set", `${id}va`, "up");
    ipIn(net, "link", "set", `${id}vn`, "up");
    ipIn(app, "addr", "add", `${ADDR.appV4}/24`, "dev", `${id}va`);
    ipIn(app, "-6", "addr", "add", `${ADDR.appV6}/64`, "dev", `${id}va`, "nodad");
    for (const a of [ADDR.dnsV4, ADDR.rogueDnsV4]) ipIn(net, "addr", "add", `${a}/24`, "dev", `${id}vn`);
    for (const a of [ADDR.dnsV6, ADDR.rogueDnsV6]) ipIn(net, "-6", "addr", "add", `${a}/64`, "dev", `${id}vn`, "nodad");
    ipIn(app, "route", "add", "default", "via", ADDR.dnsV4);
    ipIn(app, "-6", "route", "add", "default", "via", ADDR.dnsV6);
    ipIn(net, "route", "add", "local", "203.0.113.0/24", "dev", "lo");
    ipIn(net, "-6", "route", "add", "local", "2001:db8:ff::/64", "dev", "lo");
    mkdirSync(etc, { recursive: true });
    writeFileSync(`${etc}/resolv.conf`, opts.cdn ? `nameserver ${ADDR.dnsV4}\n` : `nameserver ${ADDR.dnsV4}\nnameserver ${ADDR.dnsV6}\n`);
    writeFileSync(hostsFile, "");
    const netPorts = [...NET_PORTS.tcp.map(String), ...NET_PORTS.udp.map((p) => `udp:${p}`)];
    for (const [ns, ports] of [
      ["net", netPorts],
      ["app", ["3000", "3001"]],
    ] as const) {
      const listener = Bun.spawn([...inNs(ns), process.execPath, `${import.meta.dir}/listener.ts`, ...ports], {
        stdout: "pipe",
        stderr: "inherit",
      });
      children.push(listener);
      const reader = listener.stdout.getReader();
      await reader.read(); // "listening"
      reader.releaseLock();
    }
    await startDns();
  } catch (error) {
    await close();
    throw error;
  }

  const probeFrom = async (
    ns: "app" | "net" | "inner",
    targets: readonly Target[],
    timeoutMs = 1000,
    mode: "tcp" | "udp" = "tcp",
  ): Promise<Probe[]> => {
    const args = targets.map((t) => (t.host.includes(":") ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`));
    const result = await run([...inNs(ns), process.execPath, `${import.meta.dir}/probe.ts`, mode, String(timeoutMs), ...args]);
    if (result.code !== 0) throw new Error(`probe failed: ${result.stderr}`);
    return JSON.parse(result.stdout) as Probe[];
  };

  const lab: Lab = {
    app,
    net,
    dir,
    resolvConf: `${etc}/resolv.conf`,
    async setRecords(records, options = {}) {
      const lines = Object.entries(records).flatMap(([name, addresses]) => addresses.map((a) => `${a} ${name}`));
      writeFileSync(hostsFile, `${lines.join("\n")}\n`);
      const cnamesChanged = JSON.stringify(options.cnames ?? {}) !== JSON.stringify(cnames);
      if (cnamesChanged || dns === undefined) {
        cnames = options.cnames ?? {};
        if (dns !== undefined) await stopDns();
        await startDns();
      } else {
        dns.kill("SIGHUP"); // re-reads --addn-hosts and clears its cache
        await Bun.sleep(100);
      }
    },
    startDns,
    stopDns,
    exec: (ns, argv, options) => run([...inNs(ns), ...argv], options),
    domainwall: (args, options = {}) =>
      run([...inNs("app"), ...domainwallCommand(), ...args], {
        env: { PATH: options.path ?? process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...options.env },
        timeoutMs: options.timeoutMs,
      }),
    spawnDomainwall(args, options = {}) {
      const child = Bun.spawn([...inNs("app"), ...(options.command ?? domainwallCommand()), ...args], {
        env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...options.env },
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
      });
      children.push(child);
      return child;
    },
    probe: (targets, timeoutMs) => probeFrom("app", targets, timeoutMs),
    probeUdp: (targets, timeoutMs) => probeFrom("app", targets, timeoutMs, "udp"),
    async addInner() {
      if (innerAdded) return;
      sh(["ip", "netns", "add", inner]);
      innerAdded = true;
      sh(["ip", "link", "add", `${id}vi`, "netns", app, "type", "veth", "peer", "name", `${id}vj`, "netns", inner]);
      const ipIn = (ns: string, ...args: string[]) => sh(["ip", "-n", ns, ...args]);
      ipIn(inner, "link", "set", "lo", "up");
      ipIn(app, "link", "set", `${id}vi`, "up");
      ipIn(inner, "link", "set", `${id}vj`, "up");
      ipIn(app, "addr", "add", `${INNER.appSide}/24`, "dev", `${id}vi`);
      ipIn(inner, "addr", "add", `${INNER.inner}/24`, "dev", `${id}vj`);
      ipIn(inner, "route", "add", "default", "via", INNER.appSide);
      ipIn(net, "route", "add", "192.0.2.0/24", "via", ADDR.appV4);
      sh([...inNs("app"), "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    },
    probeInner: (targets, timeoutMs) => probeFrom("inner", targets, timeoutMs),
    canConnect: async (targets, timeoutMs) => (await probeFrom("app", targets, timeoutMs)).map((r) => r === "connected"),
    canConnectInbound: async (targets, timeoutMs) => (await probeFrom("net", targets, timeoutMs)).map((r) => r === "connected"),
    async dnsAnswers(server, name, timeoutMs = 1000) {
      const result = await run([...inNs("app"), process.execPath, `${import.meta.dir}/probe.ts`, "dns", String(timeoutMs), server, name]);
      return result.stdout.trim() === "true";
    },
    cdnLog: () => {
      try {
        return readFileSync(cdnLogFile, "utf8");
      } catch {
        return "";
      }
    },
    nft: (args, stdin) => run([...inNs("app"), "nft", ...args], { stdin }),
    async table() {
      const result = await run([...inNs("app"), "nft", "list", "table", "inet", "domainwall"]);
      // Element timers (`expires 59m57s960ms`) tick between two listings: a ruleset is compared without them.
      return result.code === 0 ? result.stdout.replace(/ expires [0-9dhms]+/g, "") : "";
    },
    async countTransactions() {
      const monitor = Bun.spawn([...inNs("app"), "nft", "monitor"], { stdout: "pipe", stderr: "ignore" });
      children.push(monitor);
      await Bun.sleep(300); // let it subscribe before anything is committed
      return async () => {
        await Bun.sleep(300);
        monitor.kill("SIGTERM");
        const output = await new Response(monitor.stdout).text();
        return output.split("\n").filter((line) => line.startsWith("# new generation")).length;
      };
    },
    close,
  };
  return lab;
}

/** All a child's stderr so far, read as it comes. */
export function collectStderr(child: { readonly stderr: ReadableStream<Uint8Array> }): () => string {
  let text = "";
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) text += decoder.decode(chunk, { stream: true });
  })();
  return () => text;
}

/**
 * Start domainwall in app with `args` (which name `ready` as its --ready-file), keep it in `running`
 * for killAndRemove, and wait for the ready file; throws with its stderr when it exits first.
 */
export async function spawnUntilReady(
  lab: Lab,
  running: Bun.Subprocess[],
  args: string[],
  ready: string,
  env: Record<string, string>,
  deadlineS = 30,
) {
  const child = lab.spawnDomainwall(args, { env });
  running.push(child);
  const stderr = collectStderr(child);
  await until("the ready file", deadlineS, async () => (await Bun.file(ready).exists()) || child.exitCode !== null);
  if (child.exitCode !== null) throw new Error(`watch exited ${child.exitCode}: ${stderr()}`);
  return { child, stderr };
}

/** After each test: SIGKILL the domainwall processes it started, wait for them, and lift what they loaded. */
export async function killAndRemove(lab: Lab, running: Bun.Subprocess[], env: Record<string, string>): Promise<void> {
  for (const child of running.splice(0)) {
    child.kill("SIGKILL");
    await child.exited;
  }
  // A supervised proxy's worker dies with its supervisor (PR_SET_PDEATHSIG) a moment after it: until
  // then it holds the watch lock and `remove` is refused beside it. Retry, and fail loudly if it never goes.
  let last = await lab.domainwall(["remove"], { env });
  for (let tries = 0; last.code !== 0 && tries < 50; tries++) {
    await Bun.sleep(100);
    last = await lab.domainwall(["remove"], { env });
  }
  if (last.code !== 0) throw new Error(`domainwall remove failed after the test: ${last.stderr}`);
}

/** The DNS proxy part of `watch`'s state file in `lab`'s run directory, once it names a worker other than `not`. */
export async function proxyStateOf(lab: Lab, not?: number): Promise<{ workerPid: number; supervisorPid?: number }> {
  let state: { workerPid?: number; supervisorPid?: number } | undefined;
  await until("the state file names a new worker", 30, async () => {
    const text = await Bun.file(`${lab.dir}/run/watch.json`)
      .text()
      .catch(() => "{}");
    state = (JSON.parse(text) as { proxy?: typeof state }).proxy;
    return state?.workerPid !== undefined && state.workerPid !== not;
  });
  return state as { workerPid: number; supervisorPid?: number };
}
