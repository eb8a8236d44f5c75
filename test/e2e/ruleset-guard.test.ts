// End-to-end: a running `watch` (plain and --dns-proxy) puts its rules back when they are removed
// from outside, /healthz and `status` say so while they are gone, and SIGTERM says what is loaded.
// Against the compiled binary (DOMAINWALL_BIN, else the source), the kernel's netfilter and dnsmasq.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { ADDR, createLab, describeNetns, killAndRemove, type Lab, until, spawnUntilReady } from "../lab/lab.ts";

setDefaultTimeout(120_000);

const LISTED = "203.0.113.10";
const BLOCKED = "203.0.113.99";
const UNLISTED_ADDRESS = "203.0.113.50";
const METRICS = "127.0.0.1:9465";
/** Generous: the restore takes milliseconds; this only bounds a broken run. */
const DEADLINE_S = 10;

interface Dig {
  readonly rcode?: string;
  readonly answers?: readonly { readonly type: string; readonly data: string }[];
  readonly error?: string;
}

/** The removals from outside, each as one `nft` command line run in the lab's app namespace only. */
const REMOVALS = {
  "delete the table": () => ["delete table inet domainwall"],
  "flush the whole ruleset": () => ["flush ruleset"],
  // A chain with rules must be flushed before it can be deleted; one transaction.
  "delete one chain": (proxy: boolean) => {
    const chain = proxy ? "dns_redirect" : "output";
    return [`flush chain inet domainwall ${chain}; delete chain inet domainwall ${chain}`];
  },
} as const;

describeNetns("a running watch keeps its rules in the kernel", () => {
  let lab: Lab;
  const running: Bun.Subprocess[] = [];
  const env = () => ({ DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: `${lab.dir}/run` });
  beforeAll(async () => {
    lab = await createLab({ ttl: 30 });
    await lab.setRecords({ "api.example": [LISTED], "unlisted.example": [UNLISTED_ADDRESS] });
  });
  afterEach(() => killAndRemove(lab, running, env()));
  afterAll(() => lab.close());

  const start = async (proxy: boolean) => {
    const ready = `${lab.dir}/ready-${Math.random().toString(36).slice(2)}`;
    const args = ["watch", ...(proxy ? ["--dns-proxy"] : []), "--hosts", "api.example", "--metrics-addr", METRICS, "--ready-file", ready];
    const { child, stderr } = await spawnUntilReady(lab, running, args, ready, env());
    return { child, stderr };
  };
  const dig = async (name: string): Promise<Dig> =>
    JSON.parse((await lab.exec("app", [process.execPath, `${import.meta.dir}/../lab/dig.ts`, ADDR.dnsV4, name, "A"])).stdout) as Dig;
  const fetchIn = async (path: string) => {
    const script = `const r = await fetch("http://${METRICS}${path}"); console.log(r.status); console.log(await r.text());`;
    const result = await lab.exec("app", [process.execPath, "-e", script]);
    const [status = "", ...body] = result.stdout.split("\n");
    return { status: Number(status), body: body.join("\n") };
  };
  const restoredTotal = async () => Number(/^domainwall_ruleset_restored_total (\d+)$/m.exec((await fetchIn("/metrics")).body)?.[1] ?? -1);
  const connects = async (host: string) => (await lab.canConnect([{ host, port: 80 }], 500))[0] === true;
  const removeFromOutside = async (command: string) => {
    const result = await lab.nft([command]);
    expect([result.code, result.stderr]).toEqual([0, ""]);
  };

  for (const proxy of [false, true]) {
    const mode = proxy ? "watch --dns-proxy" : "watch";
    for (const [what, command] of Object.entries(REMOVALS)) {
      test(`${mode}: ${what} from outside: the whole policy is back, blocked stays blocked, the metric counts it`, async () => {
        const watch = await start(proxy);
        if (proxy) expect((await dig("api.example")).answers?.map((a) => a.data)).toEqual([LISTED]);
        expect(await connects(LISTED)).toBe(true);
        expect(await connects(BLOCKED)).toBe(false);
        if (proxy) expect((await dig("unlisted.example")).rcode).toBe("NXDOMAIN");
        expect(await restoredTotal()).toBeLessThan(1); // 0, or absent (-1) where there is no such metric

        await removeFromOutside(command(proxy)[0]!);
        await until("the blocked destination is closed again", DEADLINE_S, async () => !(await connects(BLOCKED)));
        if (proxy) {
          await until("an unlisted name gets NXDOMAIN again", DEADLINE_S, async () => (await dig("unlisted.example")).rcode === "NXDOMAIN");
          // The admitted address was carried over (or is admitted again by the next answer).
          expect((await dig("api.example")).answers?.map((a) => a.data)).toEqual([LISTED]);
        }
        await until("the restore is counted", DEADLINE_S, async () => (await restoredTotal()) === 1);
        expect(await connects(LISTED)).toBe(true);
        expect(await lab.table()).toContain("chain output");
        if (proxy) expect(await lab.table()).toContain("chain dns_redirect");
        expect(watch.stderr()).toMatch(/domainwall's rules were changed from outside .*; missing: .*; loading the whole policy again/);
        expect(watch.stderr()).toContain("domainwall's rules restored in");
        expect((await fetchIn("/healthz")).status).toBe(200);
      });
    }
  }

  test("watch: the output chain's final drop replaced by an accept (same number of rules) is put back", async () => {
    const watch = await start(false);
    const chain = (await lab.nft(["-a", "list", "chain", "inet", "domainwall", "output"])).stdout;
    const handle = [...chain.matchAll(/ # handle (\d+)$/gm)].at(-1)?.[1];
    expect(chain).toMatch(/counter name "output_dropped" drop # handle \d+\n\s*}/);
    await removeFromOutside(`replace rule inet domainwall output handle ${handle} accept`);
    await until("the blocked destination is closed again", DEADLINE_S, async () => !(await connects(BLOCKED)));
    await until("the restore is counted", DEADLINE_S, async () => (await restoredTotal()) === 1);
    expect(watch.stderr()).toContain("missing: rules of chain output as loaded (one was replaced)");
    expect(await lab.table()).toContain('counter name "output_dropped" drop\n');
  });

  test("watch with iptables-legacy (no change events): a deleted jump and a flushed chain are put back by the 1 s check", async () => {
    const ready = `${lab.dir}/ready-legacy`;
    const legacyEnv = { ...env(), DOMAINWALL_BACKEND: "iptables-legacy" };
    const child = lab.spawnDomainwall(["watch", "--hosts", "api.example", "--metrics-addr", METRICS, "--ready-file", ready], {
      env: legacyEnv,
    });
    running.push(child);
    await until("the ready file", 30, async () => (await Bun.file(ready).exists()) || child.exitCode !== null);
    expect(await connects(BLOCKED)).toBe(false);
    const tables = async (tool: string) => (await lab.exec("app", [`${tool}-save`, "-t", "filter"])).stdout;
    for (const [tool, argv] of [
      ["iptables-legacy", ["-D", "OUTPUT", "-j", "DOMAINWALL-OUTPUT"]],
      ["ip6tables-legacy", ["-F", "DOMAINWALL-OUTPUT"]],
      ["iptables-legacy", ["-F", "DOMAINWALL-OUTPUT"]],
      // A rule put before our jump decides first: an ACCEPT there lets everything out.
      ["iptables-legacy", ["-I", "OUTPUT", "1", "-j", "ACCEPT"]],
    ] as const) {
      const before = await restoredTotal();
      expect((await lab.exec("app", [tool, ...argv])).code).toBe(0);
      await until("the restore is counted", DEADLINE_S, async () => (await restoredTotal()) === before + 1);
      expect(await tables(tool)).toContain("-A OUTPUT -j DOMAINWALL-OUTPUT");
      expect((await tables(tool)).split("\n").find((line) => line.startsWith("-A OUTPUT "))).toBe("-A OUTPUT -j DOMAINWALL-OUTPUT");
      expect(await tables(tool)).toContain("-A DOMAINWALL-OUTPUT -j DROP");
      expect(await connects(BLOCKED)).toBe(false);
    }
    expect(await connects(LISTED)).toBe(true);
    await lab.domainwall(["remove", "--backend", "iptables-legacy"], { env: env() });
  });

  test("/healthz is 503 naming what is missing while the table is gone (the restore held off by the kernel lock), 200 once it is back", async () => {
    const watch = await start(false);
    expect((await fetchIn("/healthz")).status).toBe(200);
    // Another command holding the kernel lock keeps the watch from restoring for 10 s at a time.
    const holder = Bun.spawn(
      ["ip", "netns", "exec", lab.app, process.execPath, `${import.meta.dir}/../support/hold-lock.ts`, "domainwall-lock", "holder", "0"],
      { stdin: "pipe", stdout: "pipe" },
    );
    running.push(holder);
    expect(new TextDecoder().decode((await holder.stdout.getReader().read()).value)).toBe("held\n");
    await removeFromOutside("delete table inet domainwall");
    const health = await fetchIn("/healthz");
    expect(health).toEqual({ status: 503, body: "domainwall's rules are not all loaded: missing table inet domainwall\n\n" });
    expect((await fetchIn("/metrics")).body).toContain("\ndomainwall_rules_loaded 0\n"); // the kernel's answer at the scrape
    holder.kill("SIGKILL");
    await holder.exited;
    await until("healthz is 200 again", 30, async () => (await fetchIn("/healthz")).status === 200);
    expect((await fetchIn("/metrics")).body).toContain("\ndomainwall_rules_loaded 1\n");
    expect(await restoredTotal()).toBe(1);
    // The restore waited for the lock (up to 10 s) and went through once the holder was gone.
    expect(watch.stderr()).toContain("missing: table inet domainwall; loading the whole policy again");
  });

  test("SIGTERM says the rules are not loaded when they are gone; status then exits 3 naming the table, also with --json", async () => {
    const watch = await start(false);
    const holder = Bun.spawn(
      ["ip", "netns", "exec", lab.app, process.execPath, `${import.meta.dir}/../support/hold-lock.ts`, "domainwall-lock", "holder", "0"],
      { stdin: "pipe", stdout: "pipe" },
    );
    running.push(holder);
    expect(new TextDecoder().decode((await holder.stdout.getReader().read()).value)).toBe("held\n");
    await removeFromOutside("delete table inet domainwall");
    watch.child.kill("SIGTERM");
    await watch.child.exited;
    await until("the last log line", 3, async () => watch.stderr().includes("SIGTERM"));
    expect(watch.stderr()).toContain(
      "SIGTERM: stopped; domainwall's rules are NOT loaded as they should be: missing table inet domainwall",
    );
    expect(watch.stderr()).not.toContain("the rules stay loaded");
    const status = await lab.domainwall(["status"], { env: env() });
    expect([status.code, status.stdout]).toEqual([3, expect.stringContaining("nothing loaded")]);
    expect(status.stderr).toContain("nothing of domainwall's is loaded here");
    const json = await lab.domainwall(["status", "--json"], { env: env() });
    expect([json.code, JSON.parse(json.stdout).loaded]).toEqual([3, false]);
  });

  test("a stopped watch --dns-proxy whose dns_redirect chain is deleted: status exits 3 naming the chain", async () => {
    const watch = await start(true);
    watch.child.kill("SIGTERM");
    await watch.child.exited;
    expect((await lab.domainwall(["status"], { env: env() })).code).toBe(0);
    for (const chain of ["dns_redirect", "dns_guard_in", "dns_zone_out"]) {
      await removeFromOutside(`flush chain inet domainwall ${chain}`);
      const flushed = await lab.domainwall(["status"], { env: env() });
      expect([flushed.code, flushed.stdout]).toEqual([3, expect.stringContaining(`rules of chain ${chain} (none held)`)]);
      await removeFromOutside(`delete chain inet domainwall ${chain}`);
      const status = await lab.domainwall(["status"], { env: env() });
      expect([status.code, status.stdout]).toEqual([3, expect.stringContaining(`chain ${chain}`)]);
      expect(status.stdout).toContain("NOT ENFORCING");
    }
  });
});
