// End-to-end: root with CAP_NET_RAW in the pod writes forged answers with an AF_PACKET socket on lo
// (below the output hook, where the loopback guard of the output filter never sees them), from the
// resolver's address and port 53 to each of the DNS proxy's upstream sockets (their ports are in
// /proc/net/udp), every id, while queries wait for a resolver that does not answer. The input guard
// drops them (a packet on lo from an address not of this host), and nothing forged is admitted.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { ADDR, createLab, describeNetns, killAndRemove, type Lab, spawnUntilReady } from "../lab/lab.ts";

setDefaultTimeout(120_000);

const NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
const FORGED = "192.0.2.99";

describeNetns("watch --dns-proxy: answers forged on lo below the output hook", () => {
  let lab: Lab;
  const running: Bun.Subprocess[] = [];
  const env = () => ({ DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: `${lab.dir}/run` });
  beforeAll(async () => {
    lab = await createLab({ cdn: { names: [], wildcards: ["w.example"] } });
  });
  afterEach(async () => {
    await killAndRemove(lab, running, env());
    await lab.startDns();
  });
  afterAll(() => lab.close());

  test("every id to every upstream socket for 6 s while 100 queries wait: all dropped by the input guard and counted, no forged answer reaches a client, nothing forged is admitted", async () => {
    const ready = `${lab.dir}/ready`;
    await spawnUntilReady(lab, running, ["watch", "--dns-proxy", "--hosts", "*.w.example", "--ready-file", ready], ready, env());
    // One answered query opens the pool; then the resolver stops answering, so the queries wait.
    // (The proxy's own answers arrive on lo from the resolver's address too: the guard must pass them.)
    const first = await lab.exec("app", [...NOBODY, "dig", "+short", "+tries=1", "+time=2", `@${ADDR.dnsV4}`, "first.w.example", "A"]);
    expect(first.stdout.trim()).toMatch(/^\d+\.\d+\.\d+\.\d+$/m);
    expect(first.stdout).not.toContain("timed out");
    await lab.stopDns();
    const clients = lab.exec(
      "app",
      [...NOBODY, process.execPath, `${import.meta.dir}/../lab/patient-clients.ts`, ADDR.dnsV4, "victim.w.example", "100", "6", FORGED],
      {
        timeoutMs: 60_000,
      },
    );
    await Bun.sleep(300);
    const spray = await lab.exec(
      "app",
      ["python3", `${import.meta.dir}/../lab/lo-packet-spray.py`, ADDR.dnsV4, ADDR.appV4, "victim.w.example", FORGED, "6"],
      {
        timeoutMs: 60_000,
      },
    );
    const sprayed = JSON.parse(spray.stdout) as { sent: number; ports: number };
    const victims = JSON.parse((await clients).stdout) as { sent: number; got: number; forged: number };
    console.log(`forged on lo: ${JSON.stringify(sprayed)}; clients: ${JSON.stringify(victims)}`);
    expect(sprayed.ports).toBeGreaterThan(0);
    expect(sprayed.sent).toBeGreaterThan(65_536);
    expect(victims.forged).toBe(0);
    expect((await lab.nft(["list", "set", "inet", "domainwall", "proxy_v4"])).stdout).not.toContain(FORGED);
    const guard = (await lab.nft(["list", "chain", "inet", "domainwall", "dns_guard_in"])).stdout;
    const dropped = Number(/iifname "lo" .* fib saddr type != local .*counter packets (\d+)/.exec(guard)?.[1] ?? 0);
    expect(dropped).toBeGreaterThan(65_536);
  });
});

describeNetns("watch --dns-proxy: an answer written on lo as the redirect's reply side (IPv6)", () => {
  let lab: Lab;
  const running: Bun.Subprocess[] = [];
  const env = () => ({ DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: `${lab.dir}/run` });
  beforeAll(async () => {
    lab = await createLab({});
  });
  afterEach(async () => {
    await killAndRemove(lab, running, env());
    await lab.startDns();
  });
  afterAll(() => lab.close());

  // An attacker's review: root with CAP_NET_RAW in the pod copies each upstream socket's flow into
  // the apps' conntrack zone (a raw datagram from the pool's port, which the redirect sends to the
  // proxy), then writes that copy's reply side ([::1]:15353 -> the pool's port) below the output
  // hook on lo. At the input hook it still comes from a local address and port 15353 (the NAT that
  // would make it the resolver's runs after the filter), so only a rule for that shape drops it.
  test("every id from [::1]:15353 to every upstream socket whose flow was copied, for 6 s while queries wait: dropped and counted, nothing forged reaches a client or is admitted", async () => {
    const ready = `${lab.dir}/ready`;
    await spawnUntilReady(
      lab,
      running,
      ["watch", "--dns-proxy", "--hosts", "*.w.example", "--dns-servers", ADDR.dnsV6, "--ready-file", ready],
      ready,
      env(),
    );
    const first = await lab.exec("app", [...NOBODY, "dig", "+tries=1", "+time=2", `@${ADDR.dnsV6}`, "first.w.example", "A"]);
    expect(first.stdout).toContain("status: NXDOMAIN"); // dnsmasq's answer for a name it does not know, through the proxy
    await lab.stopDns();
    const clients = lab.exec(
      "app",
      [...NOBODY, process.execPath, `${import.meta.dir}/../lab/patient-clients.ts`, ADDR.dnsV6, "victim.w.example", "100", "6", FORGED],
      { timeoutMs: 60_000 },
    );
    await Bun.sleep(300);
    const spray = await lab.exec(
      "app",
      ["python3", `${import.meta.dir}/../lab/lo6-copy-spray.py`, ADDR.dnsV6, ADDR.appV6, "15353", "victim.w.example", FORGED, "6"],
      { timeoutMs: 60_000 },
    );
    const sprayed = JSON.parse(spray.stdout) as { sent: number; copies: number; ports: number };
    const victims = JSON.parse((await clients).stdout) as { sent: number; got: number; forged: number };
    console.log(`copied flows, answers on lo: ${JSON.stringify(sprayed)}; clients: ${JSON.stringify(victims)}`);
    expect(sprayed.ports).toBeGreaterThan(0);
    expect(sprayed.copies).toBe(sprayed.ports);
    expect(sprayed.sent).toBeGreaterThan(65_536);
    expect(victims.forged).toBe(0);
    expect((await lab.nft(["list", "set", "inet", "domainwall", "proxy_v4"])).stdout).not.toContain(FORGED);
    const guard = (await lab.nft(["list", "chain", "inet", "domainwall", "dns_guard_in"])).stdout;
    const dropped = Number(/iifname "lo" ct direction reply .*counter packets (\d+)/.exec(guard)?.[1] ?? 0);
    expect(dropped).toBeGreaterThan(65_536);
  });
});
