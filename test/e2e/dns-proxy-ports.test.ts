// End-to-end: an innocent app's query that leaves from the same source port as one of the DNS
// proxy's own upstream flows still in conntrack (same 5-tuple: app address and port -> resolver
// port 53). Conntrack would place it in the proxy's entry, which NAT never redirects (NAT decides
// once per connection), and the first guard would drop it (EPERM). With the proxy's flows in their
// own conntrack zone the query is a new flow of its own: redirected and answered by the proxy.
// The lab's dnsmasq (IPv4 and IPv6) knows direct.example, which domainwall does not list: the
// resolver would answer NOERROR, the proxy answers NXDOMAIN.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { ADDR, createLab, describeNetns, killAndRemove, type Lab, until } from "../lab/lab.ts";

setDefaultTimeout(120_000);

const NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];

describeNetns("watch --dns-proxy: an app's query from the source port of a proxy upstream flow", () => {
  let lab: Lab;
  const running: Bun.Subprocess[] = [];
  const env = () => ({ DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: `${lab.dir}/run` });
  beforeAll(async () => {
    lab = await createLab();
    await lab.setRecords({ "listed.example": ["203.0.113.10", "2001:db8:ff::10"], "direct.example": ["203.0.113.11", "2001:db8:ff::11"] });
  });
  afterEach(async () => {
    await killAndRemove(lab, running, env());
  });
  afterAll(() => lab.close());

  const start = async (extra: string[] = []) => {
    const ready = `${lab.dir}/ready-${Math.random().toString(36).slice(2)}`;
    const child = lab.spawnDomainwall(["watch", "--dns-proxy", "--hosts", "listed.example", "--ready-file", ready, ...extra], {
      env: env(),
    });
    running.push(child);
    await until("the ready file", 30, async () => (await Bun.file(ready).exists()) || child.exitCode !== null);
    if (child.exitCode !== null) throw new Error(`watch exited ${child.exitCode}`);
  };
  const dig = async (server: string, name: string, type: string) =>
    JSON.parse(
      (await lab.exec("app", [...NOBODY, process.execPath, `${import.meta.dir}/../lab/dig.ts`, server, name, type, "udp"])).stdout,
    ) as { rcode?: string; error?: string };

  for (const [family, resolver, type] of [
    ["IPv4", ADDR.dnsV4, "A"],
    ["IPv6", ADDR.dnsV6, "AAAA"],
  ] as const) {
    test(`${family}: each query is answered by the proxy (never dropped, never by the resolver directly)`, async () => {
      writeFileSync(lab.resolvConf, `nameserver ${resolver}\n`);
      await start();
      expect((await dig(resolver, "direct.example", type)).rcode).toBe("NXDOMAIN");
      // The app watches the proxy's upstream sockets (uid 0; the digs run as nobody) while listed
      // queries make the proxy open them, then asks from each port once the socket is closed.
      const app = Bun.spawn(
        [
          "ip",
          "netns",
          "exec",
          lab.app,
          ...NOBODY,
          process.execPath,
          `${import.meta.dir}/../lab/same-port.ts`,
          resolver,
          "3000",
          "direct.example",
          "8",
          "0",
        ],
        {
          stdout: "pipe",
          stderr: "pipe",
        },
      );
      running.push(app);
      for (let i = 0; i < 30; i++) expect((await dig(resolver, "listed.example", type)).rcode).toBe("NOERROR");
      const outcome = JSON.parse(await new Response(app.stdout).text()) as {
        seen: number;
        replies: { port: number; rcode?: string; error?: string }[];
      };
      console.log(`dns-proxy-ports e2e ${family}: saw ${outcome.seen} upstream ports; ${JSON.stringify(outcome.replies)}`);
      expect(outcome.replies.length).toBeGreaterThan(0);
      for (const reply of outcome.replies) expect(reply).toEqual({ port: reply.port, rcode: "NXDOMAIN" });
    });
  }

  // Every packet of the proxy's flows must be in its zone, also those the kernel sends without the
  // proxy's socket (no group to match): an orderly close would leave the last ACK to a TIME_WAIT
  // socket, whose packet fell into zone 0, was redirected to the proxy's own port, and never reached
  // the resolver (measured: each of its connections stuck in LAST-ACK). The proxy resets instead.
  test("DNS over TCP: each upstream connection is over for the resolver too (none left waiting for a last ACK)", async () => {
    writeFileSync(lab.resolvConf, `nameserver ${ADDR.dnsV4}\n`);
    await start();
    const tcp = async () =>
      JSON.parse(
        (await lab.exec("app", [...NOBODY, process.execPath, `${import.meta.dir}/../lab/dig.ts`, ADDR.dnsV4, "listed.example", "A", "tcp"]))
          .stdout,
      ) as { rcode?: string };
    for (let i = 0; i < 5; i++) expect((await tcp()).rcode).toBe("NOERROR");
    await Bun.sleep(1000);
    const waiting = (await lab.exec("net", ["ss", "-Htn", "state", "last-ack", "src", ADDR.dnsV4])).stdout.trim();
    expect(waiting).toBe("");
  });

  // A datagram from outside forged as the resolver's (port 53) that matches none of the proxy's own
  // flows starts a new flow: the input guard drops it, --ports or not. Before any guard it made an
  // entry in zone 0, and the app's next query from that port was taken for its reply, never
  // redirected, and dropped (EPERM): anyone able to forge the resolver's address could break the
  // pod's DNS port by port.
  for (const ports of [[], ["--ports", "3000"]]) {
    test(`a datagram forged as the resolver's to an app's port ${ports.length === 0 ? "(inbound otherwise untouched)" : "(--ports)"} is dropped, and the app's query from that port is answered by the proxy`, async () => {
      writeFileSync(lab.resolvConf, `nameserver ${ADDR.dnsV4}\n`);
      await start(ports);
      const port = 40000 + Math.floor(Math.random() * 10000);
      const app = Bun.spawn(
        [
          "ip",
          "netns",
          "exec",
          lab.app,
          ...NOBODY,
          process.execPath,
          `${import.meta.dir}/../lab/wait-then-ask.ts`,
          ADDR.dnsV4,
          String(port),
          "1500",
          "direct.example",
        ],
        {
          stdout: "pipe",
          stderr: "pipe",
        },
      );
      running.push(app);
      const lines = app.stdout.pipeThrough(new TextDecoderStream()).getReader();
      expect((await lines.read()).value).toBe("ready\n");
      expect(
        (await lab.exec("net", ["python3", `${import.meta.dir}/../lab/spoof-reply.py`, ADDR.dnsV4, ADDR.appV4, String(port)])).stdout,
      ).toBe("sent\n");
      const outcome = JSON.parse((await lines.read()).value ?? "") as { arrived: number; reply: string };
      console.log(`dns-proxy-ports e2e: forged answer to port ${port} ${ports.join(" ")}: ${JSON.stringify(outcome)}`);
      expect(outcome).toEqual({ arrived: 0, reply: "NXDOMAIN" });
    });
  }

  // A resolver on an address of this host (not loopback): its replies to the proxy leave through
  // the output hook on lo, never prerouting; they are the reply side of the proxy's entries, which
  // is in zone 0 (the zone is set for the original direction only), so they find them there.
  test("a resolver on an address of this host: UDP and TCP through the proxy", async () => {
    const local = Bun.spawn(
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
        `--listen-address=${ADDR.appV4}`,
        "--address=/listed.example/203.0.113.10",
        "--address=/direct.example/203.0.113.11",
      ],
      { stdin: "ignore", stdout: "ignore", stderr: "pipe" },
    );
    running.push(local);
    await until(
      "the local resolver answers",
      10,
      async () => (await dig(ADDR.appV4, "direct.example", "A")).rcode === "NOERROR" || local.exitCode !== null,
    );
    writeFileSync(lab.resolvConf, `nameserver ${ADDR.appV4}\n`);
    await start();
    const ask = async (name: string, transport: string) =>
      JSON.parse(
        (await lab.exec("app", [...NOBODY, process.execPath, `${import.meta.dir}/../lab/dig.ts`, ADDR.appV4, name, "A", transport])).stdout,
      ) as { rcode?: string; error?: string };
    expect([await ask("listed.example", "udp"), await ask("listed.example", "tcp")]).toMatchObject([
      { rcode: "NOERROR" },
      { rcode: "NOERROR" },
    ]);
    expect([await ask("direct.example", "udp"), await ask("direct.example", "tcp")]).toMatchObject([
      { rcode: "NXDOMAIN" },
      { rcode: "NXDOMAIN" },
    ]);
  });

  // A flow older than the ruleset has a conntrack entry in zone 0 that NAT never redirected, when
  // conntrack was on in the namespace before (the kernel tracks a namespace only once some rule
  // there needs it: here another tool's table, as a CNI's or a mesh's would be): the zones do not
  // help there; the first guard (port 53 to a non-loopback address only from the proxy's group)
  // drops the app's next query instead of letting it reach the resolver.
  for (const transport of ["udp", "tcp"] as const) {
    test(`a ${transport.toUpperCase()} flow opened before the ruleset, conntrack on: its next query is dropped, never answered by the resolver`, async () => {
      writeFileSync(lab.resolvConf, `nameserver ${ADDR.dnsV4}\n`);
      const other = await lab.exec("app", [
        "nft",
        "add table inet other_tool; add chain inet other_tool out { type filter hook output priority 0; policy accept; }; add rule inet other_tool out ct state new counter",
      ]);
      expect(other.code).toBe(0);
      const app = Bun.spawn(
        [
          "ip",
          "netns",
          "exec",
          lab.app,
          ...NOBODY,
          process.execPath,
          `${import.meta.dir}/../lab/early-flow.ts`,
          ADDR.dnsV4,
          transport,
          "direct.example",
        ],
        {
          stdin: "pipe",
          stdout: "pipe",
          stderr: "pipe",
        },
      );
      running.push(app);
      const lines = app.stdout.pipeThrough(new TextDecoderStream()).getReader();
      expect(JSON.parse((await lines.read()).value ?? "")).toEqual({ first: "NOERROR" });
      await start();
      app.stdin.write("again\n");
      app.stdin.flush();
      const { second } = JSON.parse((await lines.read()).value ?? "") as { second: string };
      console.log(`dns-proxy-ports e2e: ${transport} flow from before the ruleset, after it: ${second}`);
      await lab.exec("app", ["nft", "delete table inet other_tool"]);
      expect(second).toStartWith("error: ");
    });
  }
});
