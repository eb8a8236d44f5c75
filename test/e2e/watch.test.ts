// End-to-end: `domainwall watch` (DOMAINWALL_BIN, else the source) in the lab's namespaces, against
// the kernel's netfilter and a real dnsmasq whose answers change while it runs.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { createLab, describeNetns, killAndRemove, type Lab, until, spawnUntilReady } from "../lab/lab.ts";
// Namespaces, dnsmasq, real timeouts: far beyond bun's 5 s default, also when run as plain `bun test`.
setDefaultTimeout(120_000);

const TTL_S = 2;
const GRACE_S = 4; // above TTL + jitter + one cycle gap (1 s), so the update adding NEW still finds OLD on a loaded machine
const OLD = "203.0.113.10";
const NEW = "203.0.113.20";
const V6 = "2001:db8:ff::10";
const METRICS = "127.0.0.1:9464";
const at = (host: string, port = 80) => ({ host, port });

/** Wait (briefly: the pipe may lag) until watch's log matches. */
async function logged(watch: { stderr: () => string }, pattern: RegExp): Promise<void> {
  await until(`log ${pattern}`, 3, async () => pattern.test(watch.stderr())).catch(() => expect(watch.stderr()).toMatch(pattern));
}

/**
 * A TCP client (run in app) that keeps one connection to `host`:80 open: it sends a line and prints
 * the answer at once and then each time it reads a line on stdin.
 */
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

for (const backend of ["nft", "iptables-legacy"] as const) {
  describeNetns(`watch with ${backend}, end to end`, () => {
    let lab: Lab;
    const env = () => ({ DOMAINWALL_BACKEND: backend, DOMAINWALL_RUN_DIR: `${lab.dir}/run` });
    /** Processes a test started; killed after it whatever happened. */
    const running: Bun.Subprocess[] = [];
    let dnsDown = false;
    beforeAll(async () => {
      lab = await createLab({ ttl: TTL_S });
    });
    afterEach(async () => {
      await killAndRemove(lab, running, env());
      if (dnsDown) await lab.startDns(); // only when stopped: a second dnsmasq would not bind
      dnsDown = false;
    });
    afterAll(() => lab.close());

    const start = async (extra: string[] = [], hosts = "api.example") => {
      const ready = `${lab.dir}/ready-${Math.random().toString(36).slice(2)}`;
      const args = [
        "watch",
        "--hosts",
        hosts,
        "--min-ttl",
        "1s",
        "--grace",
        `${GRACE_S}s`,
        "--metrics-addr",
        METRICS,
        "--ready-file",
        ready,
        ...extra,
      ];
      const { child, stderr } = await spawnUntilReady(lab, running, args, ready, env(), 20);
      return { child, stderr, ready };
    };
    const fetchIn = async (path: string) => {
      const script = `const r = await fetch("http://${METRICS}${path}"); console.log(r.status); console.log(await r.text());`;
      const result = await lab.exec("app", [process.execPath, "-e", script]);
      const [status = "", ...body] = result.stdout.split("\n");
      return { status: Number(status), body: body.join("\n") };
    };
    /** The IPv4 addresses the loaded rules allow, sorted: nft's allow_addr_v4 and allow_v4 sets, or the ACCEPT rules of DOMAINWALL-OUTPUT. */
    const allowV4 = async (): Promise<string[]> => {
      if (backend === "nft") {
        const elements = async (set: string) => {
          const listed = JSON.parse((await lab.nft(["-j", "list", "set", "inet", "domainwall", set])).stdout);
          return (listed.nftables.find((o: { set?: unknown }) => o.set).set.elem ?? []).map(String);
        };
        return [...(await elements("allow_addr_v4")), ...(await elements("allow_v4"))].sort();
      }
      const saved = (await lab.exec("app", ["iptables-legacy-save", "-t", "filter"])).stdout;
      return [...saved.matchAll(/^-A DOMAINWALL-OUTPUT -d (\S+?)(?:\/32)? (?:-m comment --comment \S+ )?-j ACCEPT$/gm)]
        .map((m) => m[1] ?? "")
        .sort();
    };
    /** The whole of what is loaded, as text (nft's table, or both families' domainwall chains). */
    /** The allow rules: nft's allow sets (not the denied_* sets, which record the attempts to OLD), or our iptables chains. */
    const loaded = async (): Promise<string> => {
      if (backend === "nft") {
        const sets = await Promise.all(
          ["allow_addr_v4", "allow_addr_v6", "allow_v4", "allow_v6", "allow_ports_v4", "allow_ports_v6"].map((set) =>
            lab.nft(["list", "set", "inet", "domainwall", set]),
          ),
        );
        return sets.map((listed) => listed.stdout).join("");
      }
      const chains = async (tool: string) =>
        (await lab.exec("app", [tool, "-t", "filter"])).stdout
          .split("\n")
          .filter((l) => l.includes("DOMAINWALL"))
          .join("\n");
      return (await chains("iptables-legacy-save")) + (await chains("ip6tables-legacy-save"));
    };

    test("a name with a port keeps it when its answer changes: the new address opens on that port only, the port sets follow", async () => {
      await lab.setRecords({ "api.example": [OLD, V6] });
      const watch = await start([], "api.example:80");
      expect(await lab.canConnect([at(OLD), at(OLD, 8081), at(V6), at(NEW)], 500)).toEqual([true, false, true, false]);
      await lab.setRecords({ "api.example": [NEW, V6] });
      await until(`${NEW}:80 connects`, TTL_S + 2, async () => (await lab.canConnect([at(NEW)], 200))[0] === true);
      expect(await lab.canConnect([at(NEW, 8081)], 500)).toEqual([false]);
      await logged(watch, new RegExp(`\\+${NEW.replaceAll(".", "\\.")} 80/tcp \\(api\\.example\\)`));
      await until(`${OLD} stops connecting`, TTL_S + GRACE_S + 2, async () => (await lab.canConnect([at(OLD)], 200))[0] === false);
      expect(await loaded()).not.toContain(OLD);
      const status = await lab.domainwall(["status"], { env: env() });
      expect(status.stdout).toMatch(new RegExp(`^  api\\.example \\(80/tcp\\): ${NEW.replaceAll(".", "\\.")}, ${V6}; resolved`, "m"));
    });

    test("a changed answer connects within TTL + 1 s, the old address goes after the grace period, and an open connection survives", async () => {
      await lab.setRecords({ "api.example": [OLD, V6] });
      const watch = await start();
      expect(await lab.canConnect([at(OLD), at(V6), at(NEW)], 500)).toEqual([true, true, false]);
      expect((await fetchIn("/healthz")).status).toBe(200);

      // A connection opened before any update, kept open across them.
      const client = Bun.spawn(["ip", "netns", "exec", lab.app, process.execPath, "-e", hold(OLD)], {
        stdin: "pipe",
        stdout: "pipe",
        stderr: "pipe",
      });
      running.push(client);
      const lines = client.stdout.pipeThrough(new TextDecoderStream()).getReader();
      expect((await lines.read()).value).toBe("got ok\n");

      const transactions = backend === "nft" ? await lab.countTransactions() : undefined;
      await lab.setRecords({ "api.example": [NEW, V6] });
      const tookS = await until(`${NEW} connects`, TTL_S + 1, async () => (await lab.canConnect([at(NEW)], 200))[0] === true);
      console.log(`watch e2e: the new address connected ${tookS.toFixed(2)}s after the DNS change (TTL ${TTL_S}s)`);
      // The update that added NEW kept OLD (two IPv4 allowed), for the grace period.
      await logged(
        watch,
        new RegExp(`allowlist updated in \\d+ ms: \\+${NEW.replaceAll(".", "\\.")} \\(api\\.example\\); 2 IPv4 and 1 IPv6 allowed`),
      );

      await until(`${OLD} stops connecting`, TTL_S + GRACE_S + 2, async () => (await lab.canConnect([at(OLD)], 200))[0] === false);
      await logged(watch, new RegExp(`-${OLD.replaceAll(".", "\\.")} \\(api\\.example, last seen [4-6](\\.\\d)?s ago\\)`));
      expect(await allowV4()).toEqual([NEW]);
      if (transactions !== undefined) expect(await transactions()).toBe(2); // one transaction per update: +NEW, then -OLD

      // `status` from another process shows each name's addresses while the watch runs.
      const status = await lab.domainwall(["status"], { env: env() });
      expect(status.stdout).toMatch(
        new RegExp(`^  api\\.example: ${NEW.replaceAll(".", "\\.")}, ${V6}; resolved \\d+(\\.\\d)?s ago at \\d{4}-`, "m"),
      );

      // The connection to OLD, opened before both updates, still exchanges data.
      client.stdin.write("again\n");
      client.stdin.flush();
      expect((await lines.read()).value).toBe("got ok\n");

      const metrics = (await fetchIn("/metrics")).body;
      expect(metrics).toContain('domainwall_ruleset_updates_total{result="ok"} 2\n');
      expect(metrics).toContain('domainwall_allowed_addresses{family="ipv4"} 1\n');

      watch.child.kill("SIGTERM");
      expect(await watch.child.exited).toBe(0);
    });

    test("with DNS down the allowlist stays as it was across refresh cycles, and the failures show in /metrics", async () => {
      await lab.setRecords({ "api.example": [OLD, V6] });
      const watch = await start();
      const before = await allowV4();
      await lab.stopDns();
      dnsDown = true;
      const failures = async () =>
        Number(/domainwall_resolution_failures_total\{name="api\.example"\} (\d+)/.exec((await fetchIn("/metrics")).body)?.[1] ?? 0);
      // Lookups fail, then back off from --min-ttl (1 s, 2 s, 4 s, ...): wait for several failed cycles.
      await until("three failed refreshes", 60, async () => (await failures()) >= 3);
      const metrics = (await fetchIn("/metrics")).body;
      expect(metrics).toContain("domainwall_names_failing 1\n");
      expect(Number(/^domainwall_seconds_since_last_successful_refresh (\S+)$/m.exec(metrics)?.[1])).toBeGreaterThan(TTL_S);
      expect(await allowV4()).toEqual(before);
      expect(await lab.canConnect([at(OLD), at(V6)], 500)).toEqual([true, true]);
      expect((await fetchIn("/healthz")).status).toBe(200); // DNS trouble alone is not unhealthy
      await logged(watch, /api\.example: lookup failed \(.*\); keeping its 2 known addresses, last seen \d+(\.\d)?s ago/);

      await lab.startDns();
      dnsDown = false;
      await until("the name resolves again", 90, async () => (await fetchIn("/metrics")).body.includes("domainwall_names_failing 0\n"));
      expect(await allowV4()).toEqual(before);
      watch.child.kill("SIGTERM");
      expect(await watch.child.exited).toBe(0);
    });

    test("SIGTERM: exit 0 with the rules still loaded; --remove-on-exit with SIGINT removes them", async () => {
      await lab.setRecords({ "api.example": [OLD] });
      const kept = await start();
      kept.child.kill("SIGTERM");
      expect(await kept.child.exited).toBe(0);
      await logged(kept, /SIGTERM: stopped; the rules stay loaded/);
      expect(await loaded()).toContain(OLD);
      expect((await lab.domainwall(["status"], { env: env() })).stdout).toContain("no domainwall watch is running here");
      expect(await lab.canConnect([at(OLD), at(NEW)], 500)).toEqual([true, false]);
      expect(await Bun.file(kept.ready).exists()).toBe(true);

      const removed = await start(["--remove-on-exit"]);
      removed.child.kill("SIGINT");
      expect(await removed.child.exited).toBe(0);
      await logged(removed, /SIGINT: stopped and removed domainwall's rules \(--remove-on-exit\)/);
      expect(await loaded()).toBe("");
      expect(await Bun.file(removed.ready).exists()).toBe(false);
    });
  });
}
