// End-to-end: the live denial stream (watch, watch --dns-proxy, status --follow) and the Extended
// DNS Error an unlisted name's NXDOMAIN carries, with the binary (DOMAINWALL_BIN, else the source)
// in the lab's namespaces against the kernel's netfilter, a real dnsmasq and `dig`.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { ADDR, createLab, describeNetns, killAndRemove, type Lab, until } from "../lab/lab.ts";

setDefaultTimeout(120_000);

const BLOCKED = "203.0.113.20";
const at = (host: string, port = 80) => ({ host, port });

/** A process's output as it comes, read into a string. */
function collect(stream: ReadableStream<Uint8Array>): () => string {
  let text = "";
  const decoder = new TextDecoder();
  void (async () => {
    for await (const chunk of stream) text += decoder.decode(chunk);
  })();
  return () => text;
}

/** Wait (generously: the machine is shared) until `read()` matches. */
const shows = (read: () => string, pattern: RegExp, seconds = 10) =>
  until(`output ${pattern}`, seconds, async () => pattern.test(read())).catch(() => expect(read()).toMatch(pattern));

describeNetns("the live denial stream and Extended DNS Errors (nft), end to end", () => {
  let lab: Lab;
  const running: Bun.Subprocess[] = [];
  const env = () => ({ DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: `${lab.dir}/run` });
  beforeAll(async () => {
    lab = await createLab();
    await lab.setRecords({ "api.example": ["203.0.113.10"], "unlisted.example": [BLOCKED] });
  });
  afterEach(async () => {
    await killAndRemove(lab, running, env());
    writeFileSync(lab.resolvConf, `nameserver ${ADDR.dnsV4}\nnameserver ${ADDR.dnsV6}\n`);
  });
  afterAll(() => lab.close());

  const watch = async (args: string[], extraEnv: Record<string, string> = {}) => {
    const ready = `${lab.dir}/ready-${Math.random().toString(36).slice(2)}`;
    const child = lab.spawnDomainwall(["watch", "--ready-file", ready, ...args], { env: { ...env(), ...extraEnv } });
    running.push(child);
    const stderr = collect(child.stderr);
    await until("the ready file", 30, async () => (await Bun.file(ready).exists()) || child.exitCode !== null);
    if (child.exitCode !== null) throw new Error(`watch exited ${child.exitCode}: ${stderr()}`);
    return { child, stderr };
  };
  const stop = async (child: Bun.Subprocess) => {
    child.kill("SIGTERM");
    return child.exited;
  };

  for (const proxy of [false, true]) {
    const mode = proxy ? "watch --dns-proxy" : "watch";
    const proxyArgs = proxy ? ["--dns-proxy"] : [];

    test(`${mode}: a blocked connection attempt is one log line with its direction, address, protocol, port and packets`, async () => {
      const { child, stderr } = await watch(["--hosts", "api.example:443", ...proxyArgs]);
      expect(await lab.canConnect([at(BLOCKED), at("203.0.113.10", 80)], 500)).toEqual([false, false]);
      await shows(stderr, new RegExp(`denied: outbound to ${BLOCKED.replace(/\./g, "\\.")} tcp/80, \\d+ packets?`));
      // A listed name's address on a port it is not listed with: the line names it.
      await shows(stderr, /denied: outbound to 203\.0\.113\.10 tcp\/80 \(api\.example\), \d+ packets?/);
      await lab.canConnect([at(BLOCKED)], 300);
      await Bun.sleep(1500);
      expect(
        stderr()
          .split("\n")
          .filter((l) => l.includes(`outbound to ${BLOCKED} tcp/80`)),
      ).toHaveLength(1);
      console.log(
        `${mode}, a denial line:\n${stderr()
          .split("\n")
          .find((l) => l.includes(BLOCKED))}`,
      );
      expect(await stop(child)).toBe(0);
    });

    test(`${mode} --log-format json: the denial's facts are fields, the level is a standard one`, async () => {
      const { child, stderr } = await watch(["--hosts", "api.example", "--log-format", "json", ...proxyArgs]);
      await lab.canConnect([at(BLOCKED, 443)], 500);
      const line = () =>
        stderr()
          .split("\n")
          .filter((l) => l.startsWith("{"))
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .find((l) => l.event === "denied" && l.address === BLOCKED);
      await until("the JSON denial line", 10, async () => line() !== undefined);
      expect(line()).toMatchObject({ level: "warn", direction: "out", address: BLOCKED, protocol: "tcp", port: 443 });
      expect(line()?.packets).toBeGreaterThanOrEqual(1);
      const levels = new Set(
        stderr()
          .split("\n")
          .filter((l) => l.startsWith("{"))
          .map((l) => (JSON.parse(l) as { level: string }).level),
      );
      expect([...levels].every((l) => ["info", "warn", "error", "debug"].includes(l))).toBe(true);
      console.log(`${mode}, a JSON denial line:\n${JSON.stringify(line())}`);
      expect(await stop(child)).toBe(0);
    });
  }

  test("1,000 attempts a second at one destination for 10 s: a few lines, and on stop the count of what was not logged line by line", async () => {
    const { child, stderr } = await watch(["--hosts", "api.example"]);
    const flood = await lab.exec("app", [process.execPath, `${import.meta.dir}/../lab/flood-one.ts`, BLOCKED, "9999", "1000", "10"], {
      timeoutMs: 60_000,
    });
    const { sent, failed } = JSON.parse(flood.stdout) as { sent: number; failed: number };
    expect(sent + failed).toBeGreaterThanOrEqual(5000);
    expect(await stop(child)).toBe(0);
    const lines = stderr()
      .split("\n")
      .filter((l) => l.includes(`${BLOCKED} udp/9999`));
    console.log(`flood of ${sent + failed} datagrams:\n${lines.join("\n")}`);
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines.length).toBeLessThanOrEqual(3);
    expect(lines[0]).toMatch(/denied: outbound to 203\.0\.113\.20 udp\/9999, \d+ packets?/);
    const summary = /still denied: outbound to 203\.0\.113\.20 udp\/9999, (\d+) more packets since the last line \((\d+) in all\)/.exec(
      lines.at(-1) ?? "",
    );
    expect(summary).not.toBeNull();
    expect(Number(summary?.[2])).toBeGreaterThanOrEqual(5000);
  });

  test("watch --dns-proxy: a refused name is one line per rate window (with name and qtype), and dig shows EDE 15 (Blocked) with domainwall's text", async () => {
    const { child, stderr } = await watch(["--hosts", "api.example", "--dns-proxy", "--log-format", "json"]);
    const digs = [];
    for (let i = 0; i < 5; i++)
      digs.push(await lab.exec("app", ["dig", "+edns", "+tries=1", "+time=3", `@${ADDR.dnsV4}`, "unlisted.example", "A"]));
    const out = digs[0]?.stdout ?? "";
    expect(out).toContain("status: NXDOMAIN");
    expect(out).toContain("; EDE: 15 (Blocked): (not in the domainwall allowlist)");
    console.log(`dig against the pod's DNS for an unlisted name:\n${out}`);
    const noEdns = await lab.exec("app", ["dig", "+noedns", "+tries=1", "+time=3", `@${ADDR.dnsV4}`, "unlisted.example", "A"]);
    expect(noEdns.stdout).toContain("status: NXDOMAIN");
    expect(noEdns.stdout).not.toContain("EDE");
    const refused = () =>
      stderr()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.name === "unlisted.example");
    await until("the refused line", 10, async () => refused().length > 0);
    await Bun.sleep(500);
    expect(refused()).toHaveLength(1);
    expect(refused()[0]).toMatchObject({ level: "info", event: "refused", name: "unlisted.example", qtype: "A" });
    expect(await stop(child)).toBe(0);
  });

  test("status --follow after an apply-only run has exited: a new denial appears, SIGINT ends it with exit 0", async () => {
    expect((await lab.domainwall(["apply", "--hosts", "api.example"], { env: env() })).code).toBe(0);
    await lab.canConnect([at(BLOCKED, 443)], 300); // recorded before: the starting point, not a new line
    const child = lab.spawnDomainwall(["status", "--follow"], { env: env() });
    running.push(child);
    const stdout = collect(child.stdout);
    const stderr = collect(child.stderr);
    await shows(stdout, /following the denied destinations as the kernel records them \(1 recorded already/);
    expect(await lab.canConnect([at(BLOCKED)], 500)).toEqual([false]);
    await shows(stdout, /\n\d{4}-\d\d-\d\dT[\d:.]+Z denied: outbound to 203\.0\.113\.20 tcp\/80, \d+ packets?\n/);
    console.log(`status --follow:\n${stdout()}`);
    expect(stdout()).not.toContain("tcp/443");
    child.kill("SIGINT");
    expect(await child.exited).toBe(0);
    expect(stderr()).toBe("");
  });

  test("status, explain, suggest and remove at the default level print their answer and nothing else", async () => {
    expect((await lab.domainwall(["apply", "--hosts", "api.example,localhost"], { env: env() })).stderr).not.toContain("127.0.0.1");
    const status = await lab.domainwall(["status"], { env: env() });
    expect([status.code, status.stderr]).toEqual([0, ""]);
    expect(status.stdout).toStartWith("domainwall is loaded (nft)\n");
    for (const args of [["explain", "api.example:443"], ["suggest"]]) {
      const result = await lab.domainwall(args, { env: env() });
      expect([args, result.code, result.stderr]).toEqual([args, 0, ""]);
    }
    // remove's answer is its one line (a log line, as apply's summary is).
    const removed = await lab.domainwall(["remove"], { env: env() });
    expect([removed.code, removed.stderr.trim().split("\n")]).toEqual([0, [expect.stringContaining("removed domainwall's rules (nft)")]]);
  });

  test("suggest after DNS to an unlisted resolver in audit mode: not a host entry, but --dns-servers with a warning", async () => {
    expect((await lab.domainwall(["apply", "--hosts", "api.example", "--audit"], { env: env() })).code).toBe(0);
    const asked = await lab.exec("app", ["dig", "+tries=1", "+time=2", `@${ADDR.rogueDnsV4}`, "api.example", "A"]);
    expect(asked.stdout).toContain("status: NOERROR"); // audit mode lets it through, and records it
    const suggested = await lab.domainwall(["suggest"], { env: env() });
    expect(suggested.code).toBe(0);
    console.log(`suggest after DNS to ${ADDR.rogueDnsV4}:\n${suggested.stdout}`);
    expect(suggested.stdout).not.toContain(`${ADDR.rogueDnsV4}:53`);
    expect(suggested.stdout).toContain(`# WARNING: DNS (port 53) to ${ADDR.rogueDnsV4} (`);
    expect(suggested.stdout).toContain(`\n# --dns-servers ${ADDR.rogueDnsV4}\n`);
  });
});
