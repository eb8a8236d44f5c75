// End-to-end: `domainwall watch --dns-proxy` (DOMAINWALL_BIN, else the source) in the lab's
// namespaces, the app running as root, against the kernel's netfilter and a CDN-like DNS server
// (test/lab/cdn-dns.ts: 2 random addresses out of 100 per query, TTL 30 s, a log of every query).
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { ADDR, createLab, describeNetns, killAndRemove, type Lab, until, spawnUntilReady } from "../lab/lab.ts";
import { POOL_V4 } from "../lab/cdn-dns.ts";
import { withTimeout } from "../support/dns-client.ts";

setDefaultTimeout(120_000);

const HOSTS = ["cdn.example", "*.wild.example", "**.deep.example", "alias.example", "hints.example", "api.svc.example"];
const CDN = {
  names: [
    "cdn.example",
    "a.wild.example",
    "a.b.wild.example",
    "wild.example",
    "a.deep.example",
    "a.b.deep.example",
    "deep.example",
    "unlisted.example",
    "target.cdnprovider.example",
    "api.svc.example",
  ],
  cnames: { "alias.example": "target.cdnprovider.example" },
  https: { "hints.example": { v4: ["203.0.113.201"], v6: ["2001:db8:ff::201"] } },
};
const HINT = "203.0.113.201";
const METRICS = "127.0.0.1:9464";
const GID = 2000053;
const PORT = 15353;

interface Dig {
  readonly rcode?: string;
  readonly answers?: readonly { readonly type: string; readonly data: string }[];
  readonly error?: string;
}

describeNetns("watch --dns-proxy, end to end", () => {
  let lab: Lab;
  const running: Bun.Subprocess[] = [];
  const env = () => ({ DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: `${lab.dir}/run` });
  beforeAll(async () => {
    lab = await createLab({ cdn: CDN });
  });
  afterEach(async () => {
    await killAndRemove(lab, running, env());
    writeFileSync(lab.resolvConf, `nameserver ${ADDR.dnsV4}\n`);
  });
  afterAll(() => lab.close());

  const start = async (extra: string[] = [], hosts: readonly string[] = HOSTS) => {
    const ready = `${lab.dir}/ready-${Math.random().toString(36).slice(2)}`;
    const args = ["watch", "--dns-proxy", "--hosts", hosts.join(","), "--metrics-addr", METRICS, "--ready-file", ready, ...extra];
    const { child, stderr } = await spawnUntilReady(lab, running, args, ready, env());
    return { child, stderr, ready };
  };
  /** A query from the app namespace (as root), to `server` port 53 unless said otherwise. */
  const dig = async (name: string, type = "A", transport: "udp" | "tcp" = "udp", server: string = ADDR.dnsV4, port = 53): Promise<Dig> =>
    JSON.parse(
      (await lab.exec("app", [process.execPath, `${import.meta.dir}/../lab/dig.ts`, server, name, type, transport, String(port)])).stdout,
    ) as Dig;
  const addressesOf = (reply: Dig, type = "A") => (reply.answers ?? []).filter((a) => a.type === type).map((a) => a.data);
  const resolveConnect = async (name: string, rounds: number, family: 4 | 6 = 4) =>
    JSON.parse(
      (
        await lab.exec("app", [
          process.execPath,
          `${import.meta.dir}/../lab/resolve-connect.ts`,
          name,
          String(rounds),
          "80",
          String(family),
        ])
      ).stdout,
    ) as { connected: number; failures: string[] };
  const proxySet = async (family: 4 | 6 = 4) =>
    (await lab.nft(["list", "set", "inet", "domainwall", family === 4 ? "proxy_v4" : "proxy_v6"])).stdout;
  const fetchIn = async (path: string) => {
    const script = `const r = await fetch("http://${METRICS}${path}"); console.log(r.status); console.log(await r.text());`;
    const result = await lab.exec("app", [process.execPath, "-e", script]);
    const [status = "", ...body] = result.stdout.split("\n");
    return { status: Number(status), body: body.join("\n") };
  };
  const connects = async (host: string) => (await lab.canConnect([{ host, port: 80 }], 500))[0] === true;

  test("a CDN name (2 random addresses of 100 per query) resolved with getaddrinfo and connected 40 times: 40 succeed", async () => {
    const watch = await start();
    expect((await fetchIn("/healthz")).status).toBe(200);
    const result = await resolveConnect("cdn.example", 40);
    console.log(`dns-proxy e2e: ${result.connected}/40 connected to cdn.example`);
    expect(result).toEqual({ connected: 40, failures: [] });
    // Each round got a fresh pair: far more than the 2 addresses a pre-resolution could have known.
    const admitted = (await proxySet()).match(/203\.0\.113\.\d+/g) ?? [];
    expect(new Set(admitted).size).toBeGreaterThan(10);
    expect(watch.stderr()).toContain(`DNS proxy listening on 127.0.0.1 and ::1 port ${PORT} (group ${GID})`);
    const metrics = (await fetchIn("/metrics")).body;
    expect(Number(/domainwall_dns_queries_total\{outcome="forwarded"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(40);
    expect(metrics).toMatch(/domainwall_dns_admission_duration_seconds_count [1-9]/);
    const status = await lab.domainwall(["status"], { env: env() });
    await until("status shows the proxy", 10, async () =>
      (await lab.domainwall(["status"], { env: env() })).stdout.includes(`DNS proxy: running on 127.0.0.1 and ::1 port ${PORT}`),
    );
    expect(status.code).toBe(0);
  });

  test("entries with ports: an answer opens only the ports of the entry that matched (the most specific), and a restart keeps every port set", async () => {
    const hosts = ["cdn.example:80", "**.deep.example:443", "*.b.deep.example:8081", "*.wild.example"];
    let watch = await start([], hosts);
    // The CDN answers 2 random addresses of 100: take, for each name, one address no other name was given.
    const told = new Map<string, string[]>();
    const own = async (name: string): Promise<string> => {
      for (let i = 0; i < 20; i++) {
        told.set(name, [...(told.get(name) ?? []), ...addressesOf(await dig(name))]);
        const others = new Set([...told].filter(([n]) => n !== name).flatMap(([, a]) => a));
        const mine = (told.get(name) ?? []).find((a) => !others.has(a));
        if (mine !== undefined) return mine;
      }
      throw new Error(`no address of ${name} apart from the others'`);
    };
    const names = ["cdn.example", "a.deep.example", "a.b.deep.example", "a.wild.example"];
    // Each pick must still be its name's alone once every name has been asked: a later dig for another
    // name can be told (and so admit, with that name's ports) an address picked earlier.
    const apart = (picked: string[]) => picked.every((address, i) => [...told].every(([n, a]) => n === names[i] || !a.includes(address)));
    let picked: string[] = [];
    for (let round = 0; round < 10 && (picked.length === 0 || !apart(picked)); round++) {
      picked = [];
      for (const name of names) picked.push(await own(name));
    }
    expect(apart(picked)).toBe(true);
    const [cdn, deep, deeper, wild] = picked as [string, string, string, string];
    const ports = (host: string) => [80, 443, 8081].map((port) => ({ host, port }));
    const holds = async (set: string, address: string) =>
      (await lab.nft(["list", "set", "inet", "domainwall", set])).stdout.split(/[\s,{}]+/).includes(address);
    const setsOf = { 80: "proxy_v4_tcp80", 443: "proxy_v4_tcp443", 8081: "proxy_v4_tcp8081" } as const;
    /** Per host and port (80, 443, 8081): whether a set of that port, or the every-port set, holds it. */
    const inSets = (hosts: string[]) =>
      Promise.all(
        hosts.flatMap((host) =>
          ([80, 443, 8081] as const).map(async (port) => (await holds(setsOf[port], host)) || (await holds("proxy_v4", host))),
        ),
      );
    // Each answer opened the ports of the entry that matched: a.b.deep.example's *.b.deep.example:8081
    // is more specific than **.deep.example:443. Port 80 is not checked for the others: watch looks
    // cdn.example up itself, and the CDN may tell it any address (2 random of 100).
    expect(await inSets([cdn, deep, deeper, wild])).toEqual([
      ...[true, false, false], // cdn.example:80
      ...[expect.any(Boolean), true, false], // **.deep.example:443
      ...[expect.any(Boolean), false, true], // a.b.deep.example: 8081 only
      ...[true, true, true], // *.wild.example: every port
    ]);
    // And the kernel enforces exactly the sets.
    expect(await lab.canConnect([...ports(cdn), ...ports(deep), ...ports(deeper), ...ports(wild)], 500)).toEqual(
      await inSets([cdn, deep, deeper, wild]),
    );
    expect((await proxySet()).includes(`${cdn},`) || (await proxySet()).includes(`${cdn} `)).toBe(false);
    // Killed and restarted: each port set is carried over, so the admitted address keeps its port.
    watch.child.kill("SIGKILL");
    await watch.child.exited;
    watch = await start([], hosts);
    expect(watch.stderr()).toContain("kept ");
    expect(await holds("proxy_v4_tcp80", cdn)).toBe(true);
    expect(await holds("proxy_v4_tcp8081", deeper)).toBe(true);
    // The restarted watch may be told more: a port is open exactly where the sets say.
    expect(await lab.canConnect([...ports(cdn), ...ports(deeper)], 500)).toEqual(await inSets([cdn, deeper]));
  });

  test("*.x matches one label, **.x one or more, neither x; unlisted names get NXDOMAIN and never reach the resolver", async () => {
    await start();
    const rcodes = async (names: string[]) => Promise.all(names.map(async (n) => `${n} ${(await dig(n)).rcode}`));
    expect(
      await rcodes([
        "a.wild.example",
        "a.b.wild.example",
        "wild.example",
        "a.deep.example",
        "a.b.deep.example",
        "deep.example",
        "unlisted.example",
      ]),
    ).toEqual([
      "a.wild.example NOERROR",
      "a.b.wild.example NXDOMAIN",
      "wild.example NXDOMAIN",
      "a.deep.example NOERROR",
      "a.b.deep.example NOERROR",
      "deep.example NXDOMAIN",
      "unlisted.example NXDOMAIN",
    ]);
    const deep = addressesOf(await dig("a.b.deep.example"));
    expect(await connects(deep[0] ?? "")).toBe(true);
    const asked = new Set(lab.cdnLog().split("\n"));
    for (const refused of ["a.b.wild.example A", "wild.example A", "deep.example A", "unlisted.example A"])
      expect(asked.has(refused)).toBe(false);
    expect(asked.has("a.b.deep.example A")).toBe(true);
    const status = await lab.domainwall(["status"], { env: env() });
    await until("status lists the refused names", 10, async () =>
      /refused names: .*unlisted\.example A/.test((await lab.domainwall(["status"], { env: env() })).stdout),
    );
    expect(status.code).toBe(0);
  });

  test("a search-list walk (ndots:5, cluster-like search domains) still reaches a listed name; the suffixed names never leave the pod", async () => {
    await start();
    writeFileSync(
      lab.resolvConf,
      `nameserver ${ADDR.dnsV4}\nsearch ns1.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n`,
    );
    expect(await resolveConnect("api.svc.example", 3)).toEqual({ connected: 3, failures: [] });
    expect(lab.cdnLog()).not.toContain("cluster.local");
  });

  test("DNS over TCP, AAAA, a CNAME to an unlisted name, HTTPS hints: admitted before the answer", async () => {
    await start();
    const tcp = await dig("cdn.example", "A", "tcp");
    expect(tcp.rcode).toBe("NOERROR");
    expect(await connects(addressesOf(tcp)[0] ?? "")).toBe(true);
    expect(await resolveConnect("cdn.example", 3, 6)).toEqual({ connected: 3, failures: [] });
    const alias = await dig("alias.example");
    expect(alias.answers?.[0]).toEqual({ type: "CNAME", data: "target.cdnprovider.example" });
    expect(await connects(addressesOf(alias)[0] ?? "")).toBe(true);
    expect(await connects(HINT)).toBe(false);
    const hints = await dig("hints.example", "HTTPS");
    expect(hints.answers?.map((a) => a.type)).toEqual(["UNKNOWN_65"]);
    expect(await connects(HINT)).toBe(true);
  });

  test("bypasses stay closed for an app running as root: another resolver address (UDP and TCP) gets the proxy's answer, port 853 is dropped", async () => {
    await start();
    const before = lab.cdnLog();
    expect((await dig("unlisted.example", "A", "udp", ADDR.rogueDnsV4)).rcode).toBe("NXDOMAIN");
    expect((await dig("unlisted.example", "A", "tcp", ADDR.rogueDnsV4)).rcode).toBe("NXDOMAIN");
    expect((await dig("unlisted.example", "A", "tcp", "203.0.113.99")).rcode).toBe("NXDOMAIN");
    expect(lab.cdnLog().slice(before.length)).not.toContain("unlisted.example");
    // A listed name asked of the other address is answered through the proxy (and admitted).
    const listed = await dig("cdn.example", "A", "udp", ADDR.rogueDnsV4);
    expect(await connects(addressesOf(listed)[0] ?? "")).toBe(true);
    expect((await lab.probe([{ host: ADDR.dnsV4, port: 853 }], 500))[0]).toBe("timeout");
    // The proxy's port is loopback only.
    expect(
      (await lab.exec("net", [process.execPath, `${import.meta.dir}/../lab/dig.ts`, ADDR.appV4, "cdn.example", "A", "udp", String(PORT)]))
        .stdout,
    ).toContain("error");
  });

  test("an app without privileges cannot ride the proxy's own upstream flows (same source port, an established conntrack entry) to the resolver", async () => {
    await start();
    const before = lab.cdnLog();
    // The attacker watches /proc/net/udp while listed queries make the proxy open upstream sockets.
    const attack = Bun.spawn(
      [
        "ip",
        "netns",
        "exec",
        lab.app,
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        process.execPath,
        `${import.meta.dir}/../lab/reuse-port.ts`,
        ADDR.dnsV4,
        "3000",
        "reused.unlisted.example",
      ],
      { stdout: "pipe", stderr: "pipe" },
    );
    running.push(attack);
    for (let i = 0; i < 40; i++) await dig(i % 2 === 0 ? "cdn.example" : "a.wild.example");
    const outcome = JSON.parse(await new Response(attack.stdout).text()) as { seen: number; answered: number; tried: number };
    console.log(
      `dns-proxy e2e: source-port reuse saw ${outcome.seen} upstream ports, tried ${outcome.tried}, answered ${outcome.answered}`,
    );
    expect(outcome.tried).toBeGreaterThan(0);
    // Every query was answered, and the resolver itself never saw the name: each became a flow of
    // its own (the proxy's flows are in a conntrack zone of their own) and was redirected to the
    // proxy (its NXDOMAIN). Without the zones they would meet the proxy's entries and the first
    // guard would drop them (no answer); without both, the resolver would see the name.
    expect(lab.cdnLog().slice(before.length)).not.toContain("reused.unlisted.example");
    expect(outcome.answered).toBe(outcome.tried);
  });

  test("while the proxy is down, a process that binds its port cannot answer the pod's DNS (replies from the port only from the proxy's group)", async () => {
    const watch = await start();
    watch.child.kill("SIGKILL");
    await watch.child.exited;
    // A squatter in the pod, root but not in the proxy's group, takes the port and answers every query with its own address.
    const squatter = Bun.spawn(["ip", "netns", "exec", lab.app, process.execPath, "-e", squat(PORT, "203.0.113.66")], {
      stdout: "pipe",
      stderr: "pipe",
    });
    running.push(squatter);
    const lines = squatter.stdout.pipeThrough(new TextDecoderStream()).getReader();
    expect((await withTimeout(lines.read(), 10_000, "the squatter did not start")).value).toBe("listening\n");
    // One query: even from the source port of a proxy upstream flow still in conntrack it is a new
    // flow (the proxy's flows are in a conntrack zone of their own), so it is redirected.
    const reply = await dig("cdn.example");
    // The query reached it (through the redirect, still loaded), its answer never reached the app.
    expect((await withTimeout(lines.read(), 10_000, "the squatter was not asked")).value).toBe("asked cdn.example\n");
    expect(reply).toEqual({ error: expect.stringContaining("no UDP reply") });
  });

  test("packets on loopback from port 53 with a source address that is not local are dropped (an answer forged as the resolver's with IPV6_FREEBIND)", async () => {
    const forge = async (local: string, resolver: string) =>
      JSON.parse((await lab.exec("app", ["python3", `${import.meta.dir}/../lab/forge-answer.py`, local, resolver])).stdout) as {
        received: string[];
        errors: string[];
      };
    // Without domainwall the forged datagram arrives: the attack works in this lab. (IPv4 refuses the
    // route for a source that is not local unless the socket has IP_TRANSPARENT, which needs CAP_NET_ADMIN.)
    expect(await forge(ADDR.appV6, ADDR.dnsV6)).toEqual({ received: ["control", "forged"], errors: [] });
    expect((await forge(ADDR.appV4, ADDR.dnsV4)).errors).toEqual(["forged: Network is unreachable", "control: Network is unreachable"]);
    await start();
    // From port 53 it is dropped in the output hook (the sender sees EPERM); the same packet from port
    // 54 still arrives (loopback is otherwise open).
    expect(await forge(ADDR.appV6, ADDR.dnsV6)).toEqual({ received: ["control"], errors: ["forged: Operation not permitted"] });
  });

  test("the documented limit: a root app that keeps CAP_SETGID can switch to the proxy's group and bypass it (the examples drop it)", async () => {
    await start();
    const bypass = await lab.exec("app", [
      "setpriv",
      `--regid=${GID}`,
      "--clear-groups",
      process.execPath,
      `${import.meta.dir}/../lab/dig.ts`,
      ADDR.dnsV4,
      "unlisted.example",
      "A",
      "udp",
    ]);
    expect(JSON.parse(bypass.stdout)).toMatchObject({ rcode: "NOERROR" });
    const dropped = await lab.exec("app", [
      "setpriv",
      "--bounding-set=-setgid",
      "--inh-caps=-setgid",
      "setpriv",
      `--regid=${GID}`,
      "--clear-groups",
      "true",
    ]);
    expect(dropped.code).not.toBe(0);
  });

  test("an admitted address expires after its TTL (clamped) + grace, while a connection opened before stays up", async () => {
    await start(["--min-ttl", "1s", "--max-ttl", "2s", "--grace", "1s"]);
    const address = addressesOf(await dig("cdn.example"))[0] ?? "";
    expect(POOL_V4).toContain(address);
    const client = Bun.spawn(["ip", "netns", "exec", lab.app, process.execPath, "-e", hold(address)], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    running.push(client);
    const lines = client.stdout.pipeThrough(new TextDecoderStream()).getReader();
    expect((await lines.read()).value).toBe("got ok\n");
    await until(
      `${address} leaves proxy_v4`,
      8,
      async () => !(await proxySet()).includes(`${address} `) && !(await proxySet()).includes(`${address},`),
    );
    expect(await connects(address)).toBe(false);
    client.stdin.write("again\n");
    client.stdin.flush();
    expect((await lines.read()).value).toBe("got ok\n");
    await until("the expiry counted", 10, async () => /domainwall_dns_elements_expired_total [1-9]/.test((await fetchIn("/metrics")).body));
  });

  test("killed (SIGKILL): DNS fails closed; restarted: service resumes and admitted addresses are kept", async () => {
    const first = await start();
    const address = addressesOf(await dig("cdn.example"))[0] ?? "";
    first.child.kill("SIGKILL");
    await first.child.exited;
    const down = await dig("cdn.example");
    expect(down.rcode).toBeUndefined(); // no answer at all: refused at the closed port, or nothing
    expect((await dig("unlisted.example")).rcode).toBeUndefined();
    expect(await resolveConnect("cdn.example", 1)).toMatchObject({ connected: 0 });
    expect(await connects(address)).toBe(true); // still admitted in the kernel

    const second = await start();
    expect(await proxySet()).toContain(address);
    expect(second.stderr()).toMatch(/kept \d+ addresses the DNS proxy had admitted before this start/);
    expect(await connects(address)).toBe(true);
    expect(await resolveConnect("cdn.example", 5)).toEqual({ connected: 5, failures: [] });
  });

  test("SIGTERM: the rules stay and the log says DNS now fails closed; --remove-on-exit: DNS goes to the resolver directly again", async () => {
    const kept = await start();
    kept.child.kill("SIGTERM");
    expect(await kept.child.exited).toBe(0);
    expect(kept.stderr()).toContain(`DNS here now fails closed (queries are redirected to port ${PORT}, where nothing listens`);
    expect((await dig("cdn.example")).rcode).toBeUndefined();
    const removed = await start(["--remove-on-exit"]);
    removed.child.kill("SIGTERM");
    expect(await removed.child.exited).toBe(0);
    expect(await lab.table()).toBe("");
    // No redirect any more: the resolver itself answers a name the proxy would have refused.
    expect((await dig("unlisted.example")).rcode).toBe("NOERROR");
    expect(lab.cdnLog()).toContain("unlisted.example A");
  });

  test("a malformed datagram and a stalled TCP client do not stop the running proxy", async () => {
    const watch = await start();
    const hostile = `
      import { connect } from "node:net";
      const udp = await Bun.udpSocket({});
      for (const bytes of [[1, 2, 3], Array(12).fill(255), [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]]) udp.send(new Uint8Array(bytes), 53, "${ADDR.dnsV4}");
      const stalled = connect({ host: "${ADDR.dnsV4}", port: 53 });
      await new Promise((r) => stalled.once("connect", r));
      stalled.write(Buffer.from([0, 200, 1, 2]));
      console.log("sent");
    `;
    const client = Bun.spawn(["ip", "netns", "exec", lab.app, process.execPath, "-e", hostile], { stdout: "pipe", stderr: "pipe" });
    running.push(client);
    const reader = client.stdout.pipeThrough(new TextDecoderStream()).getReader();
    expect((await reader.read()).value).toContain("sent");
    expect((await dig("cdn.example")).rcode).toBe("NOERROR");
    expect((await dig("cdn.example", "A", "tcp")).rcode).toBe("NOERROR");
    expect(watch.child.exitCode).toBeNull();
  });
});

/** A squatter (run in app) on 127.0.0.1 `port` UDP: prints "listening", then "asked NAME" for each query, and answers it with an A record of `address`. */
const squat = (port: number, address: string) => `
import { decode, encode } from "dns-packet";
await Bun.udpSocket({
  hostname: "127.0.0.1",
  port: ${port},
  socket: {
    data(socket, data, clientPort, clientAddress) {
      const query = decode(Buffer.from(data));
      const name = query.questions?.[0]?.name ?? "";
      console.log("asked " + name);
      socket.send(encode({ type: "response", id: query.id, flags: 0x8180, questions: query.questions, answers: [{ type: "A", name, ttl: 30, data: ${JSON.stringify(address)} }] }), clientPort, clientAddress);
    },
  },
});
console.log("listening");
`;

/** A TCP client (run in app) that keeps one connection to `host`:80 open and pings on each stdin line. */
const hold = (host: string) => `
import { connect } from "node:net";
const socket = connect({ host: ${JSON.stringify(host)}, port: 80 });
socket.setEncoding("utf8");
socket.on("data", (data) => process.stdout.write("got " + data));
socket.on("error", (error) => { console.log("error " + error.code); process.exit(1); });
socket.on("connect", () => socket.write("ping\\n"));
process.stdin.setEncoding("utf8");
process.stdin.on("data", () => socket.write("ping\\n"));
`;
