// End-to-end, with the binary (DOMAINWALL_BIN, else the source), the kernel's netfilter and a real
// dnsmasq in namespaces the lab creates: a policy that blocks this host's own resolvers is warned
// about, the lookups it then breaks say why and what to run, and `watch --dns-proxy` starts without
// its resolver and admits once it answers.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { ADDR, createLab, describeNetns, killAndRemove, type Lab, until } from "../lab/lab.ts";

setDefaultTimeout(120_000);
const API = { host: "203.0.113.10", port: 80 };

describeNetns("resolver safety, end to end (nft)", () => {
  let lab: Lab;
  const running: Bun.Subprocess[] = [];
  const env = () => ({ DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: `${lab.dir}/run` });
  beforeAll(async () => {
    lab = await createLab();
    await lab.setRecords({ "api.example": [API.host] });
  });
  afterEach(async () => {
    await killAndRemove(lab, running, env());
    await lab.stopDns(); // startDns does not stop a running one
    await lab.startDns();
  });
  afterAll(() => lab.close());

  test("--dns-servers leaving out resolv.conf's resolvers is warned about (both lists named); the next apply's failure names the fix", async () => {
    const first = await lab.domainwall(["apply", "--hosts", "api.example", "--dns-servers", "192.0.2.1"], { env: env() });
    expect(first.code).toBe(0);
    expect(first.stderr).toContain(
      `--dns-servers 192.0.2.1 leaves out the resolvers this host's lookups use (/etc/resolv.conf: ${ADDR.dnsV4}, ${ADDR.dnsV6}), ${ADDR.dnsV4}, ${ADDR.dnsV6}`,
    );
    const next = await lab.domainwall(["apply", "--hosts", "api.example", "--resolve-timeout", "2s"], { env: env() });
    expect(next.code).toBe(1);
    expect(next.stderr).toContain("could not resolve api.example");
    expect(next.stderr).toContain(
      `the domainwall policy loaded here lets DNS go only to 192.0.2.1, so it blocks this host's resolvers (/etc/resolv.conf) ${ADDR.dnsV4}, ${ADDR.dnsV6}`,
    );
    expect(next.stderr).toContain(`run 'domainwall remove'`);
    expect(next.stderr).toContain(`then apply again with --dns-servers including ${ADDR.dnsV4},${ADDR.dnsV6}`);
    // The fix it names works.
    expect((await lab.domainwall(["remove"], { env: env() })).code).toBe(0);
    const fixed = await lab.domainwall(["apply", "--hosts", "api.example", "--dns-servers", `${ADDR.dnsV4},${ADDR.dnsV6}`], {
      env: env(),
    });
    expect(fixed.code).toBe(0);
    expect(fixed.stderr).not.toContain("leaves out");
  });

  test("after watch --dns-proxy stopped (its rules stay), apply's failed lookups name the proxy policy and what to run", async () => {
    const ready = `${lab.dir}/ready-${Math.random().toString(36).slice(2)}`;
    const watch = lab.spawnDomainwall(["watch", "--dns-proxy", "--hosts", "api.example", "--ready-file", ready], { env: env() });
    running.push(watch);
    await until("the ready file", 60, async () => (await Bun.file(ready).exists()) || watch.exitCode !== null);
    watch.kill("SIGTERM");
    expect(await watch.exited).toBe(0);
    const next = await lab.domainwall(["apply", "--hosts", "api.example", "--resolve-timeout", "2s"], { env: env() });
    expect(next.code).toBe(1);
    expect(next.stderr).toContain("could not resolve api.example");
    expect(next.stderr).toContain("a domainwall policy with the DNS proxy is loaded here");
    expect(next.stderr).toContain("run 'domainwall remove'");
  });

  test("watch --dns-proxy starts and serves with the resolver unreachable at start-up, and admits once it answers", async () => {
    await lab.stopDns();
    const ready = `${lab.dir}/ready-${Math.random().toString(36).slice(2)}`;
    const child = lab.spawnDomainwall(
      ["watch", "--dns-proxy", "--hosts", "api.example", "--resolve-timeout", "2s", "--ready-file", ready],
      { env: env() },
    );
    running.push(child);
    let stderr = "";
    const decoder = new TextDecoder();
    void (async () => {
      for await (const chunk of child.stderr) stderr += decoder.decode(chunk);
    })();
    await until("the ready file", 60, async () => (await Bun.file(ready).exists()) || child.exitCode !== null);
    expect({ exit: child.exitCode, stderr }).toMatchObject({ exit: null });
    expect(stderr).toContain("--dns-proxy: could not resolve api.example");
    expect(stderr).toContain("starting with nothing admitted for it");
    expect(await lab.canConnect([API], 300)).toEqual([false]);
    await lab.startDns();
    const resolved = JSON.parse(
      (await lab.exec("app", [process.execPath, `${import.meta.dir}/../lab/resolve-connect.ts`, "api.example", "1", "80", "4"])).stdout,
    );
    expect(resolved).toEqual({ connected: 1, failures: [] });
    expect(child.exitCode).toBeNull();
  });
});
