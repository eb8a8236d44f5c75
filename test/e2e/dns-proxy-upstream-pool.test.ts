// End-to-end: the DNS proxy's pool of upstream sockets (src/proxy/upstream-pool.ts) with the
// compiled binary in the namespace lab, against the CDN-like resolver (every name under w.example).
// What an attacker could try against sockets that live longer than one query: find their ports
// and forge answers into them (an app in the pod can read the ports in /proc/net/udp), or get one
// client's answer delivered to another (clients share the sockets). The pool must stay bounded and
// keep changing its ports.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { ADDR, createLab, describeNetns, killAndRemove, type Lab, spawnUntilReady, until } from "../lab/lab.ts";

setDefaultTimeout(120_000);

const NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
/** /proc/net/udp's remote column for the resolver, port 53. */
const RESOLVER_HEX = `${ADDR.dnsV4
  .split(".")
  .map((b) => Number(b).toString(16).toUpperCase().padStart(2, "0"))
  .reverse()
  .join("")}:0035`;
/** Not in the CDN's pool (203.0.113.0/24): only a forged answer could admit it. */
const FORGED = "192.0.2.99";

describeNetns("watch --dns-proxy: the pool of upstream sockets", () => {
  let lab: Lab;
  const running: Bun.Subprocess[] = [];
  const env = () => ({ DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: `${lab.dir}/run` });
  beforeAll(async () => {
    lab = await createLab({ cdn: { names: [], wildcards: ["w.example"] } });
  });
  let dnsStopped = false;
  afterEach(async () => {
    await killAndRemove(lab, running, env());
    if (dnsStopped) await lab.startDns();
    dnsStopped = false;
  });
  afterAll(() => lab.close());

  const start = () => {
    const ready = `${lab.dir}/ready-${Math.random().toString(36).slice(2)}`;
    return spawnUntilReady(lab, running, ["watch", "--dns-proxy", "--hosts", "*.w.example", "--ready-file", ready], ready, env());
  };
  /** The local ports of domainwall's (uid 0) UDP sockets connected to the resolver; the apps here run as nobody. */
  const upstreamPorts = async (): Promise<number[]> =>
    (await lab.exec("app", ["cat", "/proc/net/udp"])).stdout
      .split("\n")
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      .filter((columns) => columns[2] === RESOLVER_HEX && columns[7] === "0")
      .map((columns) => parseInt(columns[1]?.split(":")[1] ?? "", 16));
  /** The source ports of the proxy's flows to the resolver that conntrack holds (its zone; entries last 30 s or more). */
  const flowPorts = async (): Promise<Set<number>> =>
    new Set(
      (await lab.exec("app", ["cat", "/proc/net/nf_conntrack"])).stdout
        .split("\n")
        .filter((line) => line.includes("zone-orig=") && line.includes(`dst=${ADDR.dnsV4} `))
        .map((line) => Number(line.match(/ sport=(\d+) dport=53 /)?.[1])),
    );
  const admitted = async () => (await lab.nft(["list", "set", "inet", "domainwall", "proxy_v4"])).stdout;

  test("3,000 new names at 1,000 q/s: at most 16 sockets take queries at a time, each retired after 100, so the source ports keep changing", async () => {
    await start();
    const before = await flowPorts();
    const load = lab.exec(
      "app",
      [...NOBODY, process.execPath, `${import.meta.dir}/../../bench/dns-load.ts`, "rate", ADDR.dnsV4, "53", "1000", "3", "w.example"],
      {
        timeoutMs: 60_000,
      },
    );
    let done = false;
    void load.finally(() => (done = true));
    const seen = new Set<number>();
    let most = 0;
    while (!done) {
      const ports = await upstreamPorts();
      for (const port of ports) seen.add(port);
      most = Math.max(most, ports.length);
      await Bun.sleep(20);
    }
    const result = JSON.parse((await load).stdout) as { sent: number; answered: number };
    const flows = [...(await flowPorts())].filter((port) => !before.has(port)).length;
    console.log(
      `upstream-pool e2e: ${result.answered}/${result.sent} answered, ${flows} upstream flows (source ports), ${seen.size} sockets seen, at most ${most} at once`,
    );
    expect(result.answered).toBe(result.sent);
    // 16 taking queries, plus retired ones waiting for their last answers (they close within milliseconds).
    expect(most).toBeLessThanOrEqual(32);
    // One source port per 100 queries, and the 16 of the pool (a fresh socket per query: one per query).
    expect(flows).toBeGreaterThanOrEqual(result.sent / 100);
    expect(flows).toBeLessThanOrEqual(result.sent / 100 + 16 + 16);
    // Idle, every socket is retired within its 10 s and closed.
    await until("the pool's sockets closed", 30, async () => (await upstreamPorts()).length === 0);
  });

  test("4 clients asking 300 names each at once over the shared sockets: every client gets only the answers to its own questions", async () => {
    await start();
    const outcome = JSON.parse(
      (
        await lab.exec(
          "app",
          [...NOBODY, process.execPath, `${import.meta.dir}/../lab/crossed-answers.ts`, ADDR.dnsV4, "53", "4", "300", "w.example"],
          {
            timeoutMs: 60_000,
          },
        )
      ).stdout,
    ) as { sent: number; answered: number; crossed: number; example?: string };
    console.log(`upstream-pool e2e: crossed answers ${JSON.stringify(outcome)}`);
    expect(outcome).toEqual({ sent: 1200, answered: 1200, crossed: 0 });
  });

  test("an app in the pod that reads the pool's ports and forges an answer with every id into each is dropped on loopback; nothing forged is admitted", async () => {
    await start();
    // One answered query opens the pool; then the resolver goes silent, so the next query waits (2 x 1.5 s).
    expect(
      (await lab.exec("app", [...NOBODY, process.execPath, `${import.meta.dir}/../lab/dig.ts`, ADDR.dnsV4, "first.w.example", "A"])).stdout,
    ).toContain("NOERROR");
    await lab.stopDns();
    dnsStopped = true;
    const victim = lab.exec("app", [...NOBODY, process.execPath, `${import.meta.dir}/../lab/dig.ts`, ADDR.dnsV4, "victim.w.example", "A"]);
    const ports = await upstreamPorts();
    expect(ports.length).toBeGreaterThan(0);
    // Root with CAP_NET_RAW in the pod: its own IPv4 header, the resolver's address and port 53 as source.
    const spray = JSON.parse(
      (
        await lab.exec(
          "app",
          [
            "python3",
            `${import.meta.dir}/../lab/spray-answers.py`,
            ADDR.dnsV4,
            ADDR.appV4,
            "victim.w.example",
            FORGED,
            ...ports.map(String),
          ],
          {
            timeoutMs: 60_000,
          },
        )
      ).stdout,
    ) as { sent: number; errors: Record<string, number> };
    console.log(`upstream-pool e2e: in-pod spray to ports ${ports.join(" ")}: ${JSON.stringify(spray)}`);
    expect(spray).toEqual({ sent: 0, errors: { EPERM: 65536 * ports.length } });
    const reply = JSON.parse((await victim).stdout) as { rcode?: string; error?: string };
    console.log(`upstream-pool e2e: the victim's query: ${JSON.stringify(reply)}`);
    expect(reply.rcode).not.toBe("NOERROR");
    expect(await admitted()).not.toContain(FORGED);
  });
});
