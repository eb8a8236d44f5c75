// End-to-end for standalone use on a VM: safe apply with rollback, the systemd-resolved stub,
// the configuration file.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { ADDR, createLab, describeNetns, domainwallCommand, type Lab } from "../lab/lab.ts";
import { tempDirs } from "../support/temp-dirs.ts";

// Namespaces, dnsmasq, real timeouts: far beyond bun's 5 s default, also when run as plain `bun test`.
setDefaultTimeout(120_000);

const tempDir = tempDirs();

const at = (host: string, port = 80) => ({ host, port });

async function until(predicate: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return true;
    await Bun.sleep(50);
  }
  return predicate();
}

describeNetns("on a VM, end to end", () => {
  let lab: Lab;
  const runDir = tempDir("dw-run-");
  const env = { DOMAINWALL_RUN_DIR: runDir };
  beforeAll(async () => {
    lab = await createLab();
    await lab.setRecords({ "api.example": ["203.0.113.10", "2001:db8:ff::10"], "mirror.example": ["203.0.113.20"] });
  });
  afterEach(async () => {
    await lab.nft(["delete", "table", "inet", "domainwall"]);
  });
  afterAll(() => lab.close());

  test("an unconfirmed apply rolls back to the exact previous ruleset within the window plus a second", async () => {
    expect((await lab.domainwall(["apply", "--hosts", "api.example", "--ports", "3000"], { env })).code).toBe(0);
    await lab.canConnect([at("203.0.113.99")], 200); // make the counters non-zero: they come back too
    const previous = await lab.table();
    const child = lab.spawnDomainwall(["apply", "--hosts", "mirror.example", "--confirm-within", "2s"], { env });
    expect(await until(async () => (await lab.table()).includes("203.0.113.20"), 10_000)).toBe(true);
    const loadedAt = Date.now();
    // The same ruleset; its counters come back from the snapshot and may have counted a stray packet
    // since (an IPv6 multicast listener report is dropped and counted whenever the kernel sends one).
    const withoutCounters = (table: string) => table.replace(/packets \d+ bytes \d+/g, "packets N bytes N");
    expect(await until(async () => withoutCounters(await lab.table()) === withoutCounters(previous), 3000)).toBe(true);
    expect(Date.now() - loadedAt).toBeLessThanOrEqual(3000);
    const dropped = (table: string) => Number(/counter output_dropped \{\s*packets (\d+)/.exec(table)?.[1]);
    expect(dropped(previous)).toBeGreaterThan(0);
    expect(dropped(await lab.table())).toBeGreaterThanOrEqual(dropped(previous));
    expect(await child.exited).toBe(1);
    expect(await new Response(child.stderr).text()).toContain("not confirmed: the previous rules are back");
    expect(await lab.canConnect([at("203.0.113.10"), at("203.0.113.20")])).toEqual([true, false]);
  });

  test("with nothing loaded before, an unconfirmed apply leaves nothing loaded", async () => {
    const result = await lab.domainwall(["apply", "--hosts", "mirror.example", "--confirm-within", "1s"], { env });
    expect(result.code).toBe(1);
    expect(await lab.table()).toBe("");
  });

  test("a confirmed apply stays", async () => {
    const child = lab.spawnDomainwall(["apply", "--hosts", "mirror.example", "--confirm-within", "30s"], { env });
    expect(await until(async () => (await lab.table()).includes("203.0.113.20"), 10_000)).toBe(true);
    const confirm = await lab.domainwall(["confirm"], { env });
    expect(confirm.code).toBe(0);
    expect(await child.exited).toBe(0);
    expect(await new Response(child.stderr).text()).toContain("confirmed: the new rules stay");
    expect(await lab.canConnect([at("203.0.113.20")])).toEqual([true]);
    expect((await lab.domainwall(["confirm"], { env })).code).toBe(1); // nothing waits any more
  });

  test("behind a systemd-resolved style stub on 127.0.0.53, DNS goes to exactly its upstream servers", async () => {
    const dnsmasq = Bun.spawn(
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
        "--bind-interfaces",
        "--listen-address=127.0.0.53",
        `--server=${ADDR.dnsV4}`,
      ],
      { stdout: "ignore", stderr: "ignore" },
    );
    const original = readFileSync(lab.resolvConf, "utf8");
    try {
      writeFileSync(lab.resolvConf, "nameserver 127.0.0.53\noptions edns0 trust-ad\n");
      const upstream = `nameserver ${ADDR.dnsV4}\nnameserver ${ADDR.dnsV6}\n`;
      // systemd-resolved's upstream list, visible only to this command (private mount namespace).
      const script = `mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/resolve && printf '${upstream.replaceAll("\n", "\\n")}' > /run/systemd/resolve/resolv.conf && exec "$@"`;
      const result = await lab.exec(
        "app",
        ["unshare", "--mount", "sh", "-c", script, "sh", ...domainwallCommand(), "apply", "--hosts", "api.example"],
        {
          env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin" },
        },
      );
      expect(result.stderr).toContain(`allowing DNS to its upstream servers ${ADDR.dnsV4}, ${ADDR.dnsV6}`);
      expect(result.code).toBe(0);
      const table = await lab.table();
      expect(table).toContain(`ip daddr { 127.0.0.53, ${ADDR.dnsV4} } accept`);
      expect(table).toContain(`ip6 daddr ${ADDR.dnsV6} accept`);
      expect(await lab.dnsAnswers("127.0.0.53", "api.example")).toBe(true); // stub → upstream
      expect(await lab.dnsAnswers(ADDR.dnsV4, "api.example")).toBe(true);
      expect(await lab.dnsAnswers(ADDR.rogueDnsV4, "api.example")).toBe(false);
      expect(await lab.dnsAnswers(ADDR.rogueDnsV6, "api.example")).toBe(false);
    } finally {
      writeFileSync(lab.resolvConf, original);
      dnsmasq.kill();
      await dnsmasq.exited;
    }
  });

  test("the config file and flags combine as documented; a bad file exits 2 naming the field", async () => {
    const dir = tempDir("dw-config-");
    const file = `${dir}/domainwall.toml`;
    writeFileSync(file, `# egress for this VM\nhosts = ["api.example"]\nports = [3000]\n`);
    // The file beats hosts_csv; --ports beats the file.
    const result = await lab.domainwall(["apply", "--config", file, "--ports", "3001"], { env: { hosts_csv: "mirror.example" } });
    expect(result.code).toBe(0);
    expect(await lab.canConnect([at("203.0.113.10"), at("203.0.113.20")])).toEqual([true, false]);
    expect(await lab.canConnectInbound([at(ADDR.appV4, 3000), at(ADDR.appV4, 3001)])).toEqual([false, true]);
    const before = await lab.table();
    writeFileSync(file, `hosts = ["api.example"]\nports = [3000, "ssh"]\n`);
    const bad = await lab.domainwall(["apply", "--config", file]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${file}: ports: "ssh" is not a port number`);
    expect(await lab.table()).toBe(before);
  });
});
