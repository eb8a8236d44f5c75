// End-to-end: the binary (DOMAINWALL_BIN, else the source) against the kernel's netfilter and a real
// dnsmasq, in namespaces the lab creates and removes.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { ADDR, createLab, describeNetns, domainwallCommand, type Lab } from "../lab/lab.ts";
import { tempDirs } from "../support/temp-dirs.ts";

// Namespaces, dnsmasq, real timeouts: far beyond bun's 5 s default, also when run as plain `bun test`.
setDefaultTimeout(120_000);

const tempDir = tempDirs();

const API = { v4: ["203.0.113.10", "203.0.113.11"], v6: ["2001:db8:ff::10", "2001:db8:ff::11"] };
const at = (host: string, port = 80) => ({ host, port });
/** A scenario about one backend's mechanics is registered for that backend only, not skipped for the other. */
const onlyFor = (applies: boolean): typeof test => (applies ? test : ((() => {}) as unknown as typeof test));

/** Both backends pass the same scenarios; the few that are about one backend's mechanics say so. */
for (const backend of ["nft", "iptables-legacy"] as const) {
  describeNetns(`apply with ${backend}, end to end`, () => {
    let lab: Lab;
    const isNft = backend === "nft";
    /** Everything domainwall owns in the kernel, as text: nft's table, or both families' filter tables. */
    const loaded = async (): Promise<string> => {
      if (isNft) return lab.table();
      const v4 = await lab.exec("app", ["iptables-legacy-save", "-t", "filter"]);
      const v6 = await lab.exec("app", ["ip6tables-legacy-save", "-t", "filter"]);
      // Comments carry timestamps and built-in chains carry live packet counters: neither is state we own.
      const strip = (text: string) =>
        text
          .split("\n")
          .filter((l) => !l.startsWith("#"))
          .join("\n")
          .replace(/\[\d+:\d+\]/g, "[0:0]");
      const ours = strip(v4.stdout) + strip(v6.stdout);
      return ours.includes("DOMAINWALL-OUTPUT") ? ours : "";
    };
    const dw = (args: string[], options: { env?: Record<string, string>; path?: string } = {}) =>
      lab.domainwall(args, { ...options, env: { DOMAINWALL_BACKEND: backend, ...options.env } });
    beforeAll(async () => {
      lab = await createLab();
      await lab.setRecords({ "api.example": [...API.v4, ...API.v6], "mirror.example": ["203.0.113.20"] });
    });
    afterEach(async () => {
      await lab.domainwall(["remove", "--backend", backend]);
    });
    afterAll(() => lab.close());

    const apply = (args: string[], env?: Record<string, string>) => dw(["apply", ...args], { env });

    test("an allowed name's IPv4 and IPv6 addresses are reachable; unlisted ones are not", async () => {
      const result = await apply([], { hosts_csv: "api.example" });
      expect(result.stderr).toContain("applied: 1 name resolved, 0 skipped; 2 IPv4 and 2 IPv6 allowed");
      expect(result.code).toBe(0);
      const allowed = [...API.v4, ...API.v6].map((h) => at(h));
      expect(await lab.canConnect([...allowed, at("203.0.113.99"), at("2001:db8:ff::99"), at("203.0.113.20")])).toEqual([
        true,
        true,
        true,
        true,
        false,
        false,
        false,
      ]);
    });

    test("an allowed IPv6 /64 is reachable at any address inside it (nft: the /64s' hash set, looked up without the interface id)", async () => {
      expect((await apply(["--hosts", "mirror.example", "--allow", "2001:db8:ff::/64"])).code).toBe(0);
      expect(await lab.canConnect([at("2001:db8:ff::99"), at("2001:db8:ff::abcd:1"), at("203.0.113.20"), at("203.0.113.99")])).toEqual([
        true,
        true,
        true,
        false,
      ]);
    });

    test("DNS reaches the resolvers and nothing else; --dns-servers any reopens it", async () => {
      expect((await apply(["--hosts", "api.example"])).code).toBe(0);
      expect(await lab.dnsAnswers(ADDR.dnsV4, "api.example")).toBe(true);
      expect(await lab.dnsAnswers(ADDR.dnsV6, "api.example")).toBe(true);
      expect(await lab.dnsAnswers(ADDR.rogueDnsV4, "api.example")).toBe(false);
      expect(await lab.dnsAnswers(ADDR.rogueDnsV6, "api.example")).toBe(false);
      expect((await apply(["--hosts", "api.example", "--dns-servers", "any"])).code).toBe(0);
      expect(await lab.dnsAnswers(ADDR.rogueDnsV4, "api.example")).toBe(true);
    });

    test("with ports, only those are reachable inbound (v4 and v6); without, inbound is untouched", async () => {
      const withPorts = await apply(["--hosts", "api.example"], { listening_ports_csv: "3000" });
      expect(withPorts.code).toBe(0);
      const inbound = [at(ADDR.appV4, 3000), at(ADDR.appV6, 3000), at(ADDR.appV4, 3001), at(ADDR.appV6, 3001)];
      expect(await lab.canConnectInbound(inbound)).toEqual([true, true, false, false]);
      const without = await apply(["--hosts", "api.example"]);
      expect(without.stderr).toContain("inbound traffic is left untouched");
      expect(await lab.canConnectInbound(inbound)).toEqual([true, true, true, true]);
    });

    test("re-applying loads an identical ruleset", async () => {
      expect((await apply(["--hosts", "api.example,mirror.example", "--ports", "3000"])).code).toBe(0);
      const first = await loaded();
      expect((await apply(["--hosts", "api.example,mirror.example", "--ports", "3000"])).code).toBe(0);
      expect(first).toContain(isNft ? "table inet domainwall" : "-A OUTPUT -j DOMAINWALL-OUTPUT");
      expect(await loaded()).toBe(first);
    });

    onlyFor(isNft)("each apply is exactly one kernel transaction", async () => {
      const stop = await lab.countTransactions();
      expect((await apply(["--hosts", "api.example"])).code).toBe(0);
      expect((await apply(["--hosts", "api.example"])).code).toBe(0);
      expect(await stop()).toBe(2);
    });

    onlyFor(!isNft)("an unrelated rule in the same table and chain survives apply and remove", async () => {
      const rule = ["-A", "OUTPUT", "-d", "192.0.2.77", "-p", "tcp", "--dport", "9", "-j", "ACCEPT"];
      expect((await lab.exec("app", ["iptables-legacy", ...rule])).code).toBe(0);
      const save = async () =>
        (await lab.exec("app", ["iptables-legacy-save", "-t", "filter"])).stdout
          .split("\n")
          .filter((l) => !l.startsWith("#"))
          .join("\n");
      const before = await save();
      expect((await apply(["--hosts", "api.example"])).code).toBe(0);
      expect(await save()).toContain("-A OUTPUT -d 192.0.2.77/32 -p tcp -m tcp --dport 9 -j ACCEPT");
      expect((await dw(["remove"])).code).toBe(0);
      expect(await save()).toBe(before);
      await lab.exec("app", ["iptables-legacy", "-D", ...rule.slice(1)]);
    });

    onlyFor(!isNft)("a failing IPv6 restore leaves IPv4 as it was and exits 1", async () => {
      expect((await apply(["--hosts", "api.example"])).code).toBe(0);
      const before = await loaded();
      const fakeBin = tempDir("dw-fake-ip6-");
      chmodSync(fakeBin, 0o755);
      for (const tool of ["iptables-legacy-save", "ip6tables-legacy-save", "iptables-legacy-restore", "iptables-legacy"]) {
        writeFileSync(`${fakeBin}/${tool}`, `#!/bin/sh\nexec ${Bun.which(tool)} "$@"\n`);
        chmodSync(`${fakeBin}/${tool}`, 0o755);
      }
      writeFileSync(`${fakeBin}/ip6tables-legacy-restore`, "#!/bin/sh\necho 'ip6tables-restore: simulated failure' >&2\nexit 1\n");
      chmodSync(`${fakeBin}/ip6tables-legacy-restore`, 0o755);
      const failing = await dw(["apply", "--hosts", "mirror.example"], { path: fakeBin });
      expect(failing.stderr).toContain("simulated failure; IPv4 was rolled back to what it was");
      expect(failing.code).toBe(1);
      expect(await loaded()).toBe(before);
    });

    onlyFor(!isNft)("an unconfirmed apply puts back only our chains: what others changed while it waited stays", async () => {
      /** Both families' filter tables, split into our lines (counters kept) and everyone else's (counters normalised). */
      const tables = async () => {
        const lines: string[] = [];
        for (const tool of ["iptables-legacy-save", "ip6tables-legacy-save"])
          lines.push(...(await lab.exec("app", [tool, "-c", "-t", "filter"])).stdout.split("\n"));
        const kept = lines.filter((l) => l !== "" && !l.startsWith("#"));
        return {
          ours: kept.filter((l) => l.includes("DOMAINWALL")),
          others: kept.filter((l) => !l.includes("DOMAINWALL")).map((l) => l.replace(/\[\d+:\d+\]/g, "[0:0]")),
        };
      };
      const uncounted = (lines: string[]) => lines.map((l) => l.replace(/\[\d+:\d+\]/g, "[0:0]"));
      expect((await apply(["--hosts", "api.example", "--ports", "3000"])).code).toBe(0);
      await lab.canConnect([at("203.0.113.99")], 200); // non-zero counters: they come back too
      const previous = await tables();
      expect(previous.ours.find((l) => l.endsWith("-A DOMAINWALL-OUTPUT -j DROP"))).not.toStartWith("[0:0]");
      const foreign = [
        ["iptables-legacy", "-A", "OUTPUT", "-d", "192.0.2.99", "-j", "ACCEPT", "-m", "comment", "--comment", "fail2ban"],
        ["iptables-legacy", "-N", "f2b-dwtest"],
        ["iptables-legacy", "-A", "f2b-dwtest", "-s", "192.0.2.5", "-j", "REJECT"],
        ["iptables-legacy", "-I", "INPUT", "1", "-j", "f2b-dwtest"],
        ["ip6tables-legacy", "-A", "OUTPUT", "-d", "2001:db8::99", "-j", "ACCEPT"],
      ];
      const runDir = tempDir("dw-run-");
      const child = lab.spawnDomainwall(["apply", "--hosts", "mirror.example", "--confirm-within", "3s"], {
        env: { DOMAINWALL_BACKEND: backend, DOMAINWALL_RUN_DIR: runDir },
      });
      try {
        const deadline = Date.now() + 10_000;
        while (!(await tables()).ours.some((l) => l.includes("203.0.113.20")) && Date.now() < deadline) await Bun.sleep(50);
        // While it waits for a confirmation (after its snapshot), other tools change the table.
        for (const argv of foreign) expect((await lab.exec("app", argv)).code).toBe(0);
        const changed = await tables();
        expect(changed.ours.some((l) => l.includes("203.0.113.20"))).toBe(true);
        expect(await child.exited).toBe(1);
        expect(await new Response(child.stderr).text()).toContain("not confirmed: the previous rules are back");
        const after = await tables();
        expect(uncounted(after.ours)).toEqual(uncounted(previous.ours));
        expect(after.ours.find((l) => l.endsWith("-A DOMAINWALL-OUTPUT -j DROP"))).toBe(
          previous.ours.find((l) => l.endsWith("-A DOMAINWALL-OUTPUT -j DROP")),
        );
        expect(after.others).toEqual(changed.others);
        expect(after.others).toContain("[0:0] -A OUTPUT -d 192.0.2.99/32 -m comment --comment fail2ban -j ACCEPT");
        expect(after.others).toContain("[0:0] -A INPUT -j f2b-dwtest");
        expect(after.others).toContain("[0:0] -A OUTPUT -d 2001:db8::99/128 -j ACCEPT");
        expect(await lab.canConnect([at("203.0.113.10"), at("203.0.113.20")])).toEqual([true, false]);
      } finally {
        child.kill();
        await child.exited;
        const cleanup = [
          ["ip6tables-legacy", "-D", "OUTPUT", "-d", "2001:db8::99", "-j", "ACCEPT"],
          ["iptables-legacy", "-D", "INPUT", "-j", "f2b-dwtest"],
          ["iptables-legacy", "-F", "f2b-dwtest"],
          ["iptables-legacy", "-X", "f2b-dwtest"],
          ["iptables-legacy", "-D", "OUTPUT", "-d", "192.0.2.99", "-j", "ACCEPT", "-m", "comment", "--comment", "fail2ban"],
        ];
        for (const argv of cleanup) await lab.exec("app", argv);
      }
    });

    onlyFor(isNft)("an unrelated table survives apply and remove byte for byte", async () => {
      const other =
        "table ip other {\n\tset keep {\n\t\ttype ipv4_addr\n\t\telements = { 192.0.2.1 }\n\t}\n\tchain c {\n\t\ttype filter hook output priority 10; policy accept;\n\t\tip daddr @keep counter accept\n\t}\n}\n";
      expect((await lab.nft(["-f", "-"], other)).code).toBe(0);
      const before = (await lab.nft(["list", "table", "ip", "other"])).stdout;
      expect((await apply(["--hosts", "api.example"])).code).toBe(0);
      expect((await dw(["remove"])).code).toBe(0);
      expect(await lab.table()).toBe("");
      expect((await lab.nft(["list", "table", "ip", "other"])).stdout).toBe(before);
      await lab.nft(["delete", "table", "ip", "other"]);
    });

    test.each([
      { name: "a bad port", args: ["--ports", "70000"], message: '--ports: "70000" is not a port number' },
      {
        name: "nft syntax in a name",
        args: [],
        env: { hosts_csv: "api.example;drop" },
        message: 'hosts_csv: "api.example;drop" is not a valid host name',
      },
      { name: "a bad CIDR", args: ["--allow", "192.0.2.0/33"], message: '--allow: "192.0.2.0/33"' },
      { name: "an unknown flag", args: ["--hostz", "x"], message: "--hostz" },
    ])("bad configuration ($name) exits 2 and leaves the previous ruleset exactly as it was", async ({ args, env, message }) => {
      expect((await apply(["--hosts", "api.example", "--ports", "3000"])).code).toBe(0);
      const before = await loaded();
      const result = await apply(env ? [...args] : ["--hosts", "api.example", ...args], env);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(message);
      expect(await loaded()).toBe(before);
    });

    onlyFor(isNft)(
      "with libnftables unloadable, a failing nft load exits 1 and leaves the previous ruleset; so does a missing nft",
      async () => {
        expect((await apply(["--hosts", "api.example"])).code).toBe(0);
        const before = await lab.table();
        const fakeBin = tempDir("dw-fake-nft-");
        chmodSync(fakeBin, 0o755);
        // The fake nft passes the probe (--check) and fails the load.
        writeFileSync(
          `${fakeBin}/nft`,
          `#!/bin/sh\ncase "$1" in --check) exec ${Bun.which("nft")} "$@";; esac\necho 'Error: simulated failure' >&2\nexit 1\n`,
        );
        chmodSync(`${fakeBin}/nft`, 0o755);
        // By default the library runs in process: the nft on PATH is never run.
        const inProcess = await dw(["apply", "--hosts", "mirror.example"], { path: fakeBin });
        expect(inProcess.stderr).toContain("nft transactions run in process through libnftables.so.1");
        expect(inProcess.code).toBe(0);
        expect((await apply(["--hosts", "api.example"])).code).toBe(0);
        const unloadable = { DOMAINWALL_LIBNFTABLES: "/nonexistent/libnftables.so.1" };
        const failing = await dw(["apply", "--hosts", "mirror.example"], { path: fakeBin, env: unloadable });
        expect(failing.stderr).toContain("nft transactions run the nft binary: cannot load /nonexistent/libnftables.so.1");
        expect(failing.stderr).toContain("nft -f failed: Error: simulated failure");
        expect(failing.code).toBe(1);
        expect(await lab.table()).toBe(before);
        const emptyBin = tempDir("dw-no-nft-");
        const missing = await dw(["apply", "--hosts", "mirror.example"], { path: emptyBin, env: unloadable });
        expect(missing.code).toBe(1);
        expect(missing.stderr).toContain("--backend nft does not work here: cannot run nft");
        expect(await lab.table()).toBe(before);
      },
    );

    onlyFor(isNft)(
      "with libnftables unloadable, apply, check, status and remove work through the nft binary and the log says so",
      async () => {
        const unloadable = { DOMAINWALL_LIBNFTABLES: "/nonexistent/libnftables.so.1" };
        expect((await apply(["--hosts", "api.example,mirror.example", "--ports", "3000"])).code).toBe(0);
        const inProcess = await lab.table();
        expect((await dw(["remove"])).code).toBe(0);
        const applied = await dw(["apply", "--hosts", "api.example,mirror.example", "--ports", "3000"], { env: unloadable });
        expect(applied.stderr).toContain("nft transactions run the nft binary: cannot load /nonexistent/libnftables.so.1: ");
        expect(applied.code).toBe(0);
        expect(await lab.table()).toBe(inProcess);
        expect(await lab.canConnect([at("203.0.113.20"), at("203.0.113.99")])).toEqual([true, false]);
        const checked = await dw(["check", "--hosts", "api.example"], { env: unloadable });
        expect(checked.stderr).toContain("the kernel accepts the ruleset");
        expect(checked.stderr).toContain("nft transactions run the nft binary");
        // Read commands say which executor answered at --log-level debug only.
        const debug = { ...unloadable, DOMAINWALL_LOG_LEVEL: "debug" };
        const status = await dw(["status"], { env: debug });
        expect(status.stdout).toContain("set allow_addr_v4: 3 entries"); // api.example 203.0.113.10 and .11, mirror.example .20: a hash set keeps adjacent addresses apart
        expect(status.stderr).toContain("nft transactions run the nft binary");
        const removed = await dw(["remove"], { env: debug });
        expect(removed.code).toBe(0);
        expect(removed.stderr).toContain("nft transactions run the nft binary");
        expect(await lab.table()).toBe("");
      },
    );

    onlyFor(isNft)("a script of 1 MiB or more loads through the nft binary, and in process when there is none", async () => {
      // 30,000 IPv6 documentation addresses, not adjacent (no merging): about 1.5 MB of ruleset.
      const file = `${tempDir("dw-large-")}/allow.txt`;
      writeFileSync(
        file,
        Array.from({ length: 30_000 }, (_, i) => `2001:db8:${(i >> 8).toString(16)}::${(2 * (i & 255) + 1).toString(16)}`).join("\n"),
      );
      const rendered = await dw(["render", "--hosts", "api.example", "--allow-file", file]);
      expect(rendered.stdout.length).toBeGreaterThan(1 << 20);
      const spy = tempDir("dw-spy-nft-");
      chmodSync(spy, 0o755);
      writeFileSync(`${spy}/nft`, `#!/bin/sh\necho "nft $*" >> ${spy}/calls\nexec ${Bun.which("nft")} "$@"\n`);
      chmodSync(`${spy}/nft`, 0o755);
      const viaBinary = await dw(["apply", "--hosts", "api.example", "--allow-file", file], { path: spy });
      expect(viaBinary.code).toBe(0);
      expect(await Bun.file(`${spy}/calls`).text()).toBe("nft -f -\n"); // the probe ran in process
      const loaded = await lab.table();
      expect(loaded).toContain("2001:db8:75::5f,"); // the last of the file
      expect((await dw(["remove"])).code).toBe(0);
      const inProcess = await dw(["apply", "--hosts", "api.example", "--allow-file", file], { path: tempDir("dw-no-nft-") });
      expect(inProcess.code).toBe(0);
      expect(await lab.table()).toBe(loaded);
    });

    onlyFor(isNft)("the kernel's refusal reads the same through libnftables as through the nft binary (no CAP_NET_ADMIN)", async () => {
      const unprivileged = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"];
      const run = (env: Record<string, string> = {}) =>
        lab.exec("app", [
          ...unprivileged,
          "env",
          ...Object.entries({ DOMAINWALL_BACKEND: "nft", ...env }).map(([k, v]) => `${k}=${v}`),
          ...domainwallCommand(),
          "apply",
          "--hosts",
          "192.0.2.10",
        ]);
      // One line at the default level; nft's own words at --log-level debug.
      const debug = { DOMAINWALL_LOG_LEVEL: "debug" };
      const [library, binary] = [await run(debug), await run({ ...debug, DOMAINWALL_LIBNFTABLES: "/nonexistent/libnftables.so.1" })];
      const refusal = (stderr: string) => stderr.slice(stderr.indexOf("/dev/stdin:"));
      expect(library.code).toBe(1);
      expect(binary.code).toBe(1);
      for (const { stderr } of [library, binary])
        expect(stderr).toContain("domainwall needs root with CAP_NET_ADMIN in this network namespace (nft: Operation not permitted)");
      expect(library.stderr).toContain(
        "libnftables --check: /dev/stdin:1:1-28: Error: Could not process rule: Operation not permitted\ntable inet domainwall_probe\n^^^",
      );
      expect(binary.stderr).toContain("nft --check -f -: /dev/stdin:1:1-28: Error: Could not process rule: Operation not permitted");
      const plain = await run();
      expect([plain.code, plain.stderr]).toEqual([1, expect.not.stringContaining("^^^")]);
      expect(refusal(library.stderr)).toBe(refusal(binary.stderr));
    });

    test("--reject makes refused connections fail at once (reset), not time out", async () => {
      expect((await apply(["--hosts", "api.example"])).code).toBe(0);
      expect(await lab.probe([at("203.0.113.99")], 3000)).toEqual(["timeout"]);
      expect((await apply(["--hosts", "api.example", "--reject"])).code).toBe(0);
      expect(await lab.probe([at("203.0.113.99"), at("2001:db8:ff::99")], 3000)).toEqual(["refused", "refused"]);
    });

    test("a name that does not exist is skipped with a warning; --strict fails and loads nothing", async () => {
      const skipped = await apply(["--hosts", "api.example,nx.example"]);
      expect(skipped.code).toBe(0);
      expect(skipped.stderr).toContain("nx.example: no such name or no addresses; skipped");
      await dw(["remove"]);
      const strict = await apply(["--hosts", "api.example,nx.example", "--strict"]);
      expect(strict.code).toBe(1);
      expect(strict.stderr).toContain("--strict: nx.example has no addresses");
      expect(await loaded()).toBe("");
    });

    test("CNAME chains are followed", async () => {
      await lab.setRecords(
        { "api.example": [...API.v4, ...API.v6], "mirror.example": ["203.0.113.20"] },
        { cnames: { "cdn.example": "mirror.example" } },
      );
      expect((await apply(["--hosts", "cdn.example"])).code).toBe(0);
      expect(await lab.canConnect([at("203.0.113.20"), at("203.0.113.10")])).toEqual([true, false]);
    });

    test("IPv6 multicast listener reports leave (RFC 4890): sent, not dropped, not counted", async () => {
      expect((await apply(["--ports", "3000"], { hosts_csv: "api.example" })).code).toBe(0);
      const snmp6 = async (key: string) =>
        Number(new RegExp(`^${key}\\s+(\\d+)$`, "m").exec((await lab.exec("app", ["cat", "/proc/net/snmp6"])).stdout)?.[1]);
      const dropped = async () =>
        [...(await dw(["status"])).stdout.matchAll(/counter output_dropped\S*: (\d+) packets/g)].reduce((n, m) => n + Number(m[1]), 0);
      const iface = /^\d+: (\S+?)@/m.exec((await lab.exec("app", ["ip", "-o", "link", "show", "type", "veth"])).stdout)?.[1] ?? "";
      const [reports, discards, drops] = [await snmp6("Icmp6OutType143"), await snmp6("Ip6OutDiscards"), await dropped()];
      // A new address joins its solicited-node group: the kernel sends MLDv2 reports for it. It counts
      // one as sent only when the output hook let it through, else as an output discard.
      await lab.exec("app", ["ip", "-6", "addr", "add", "2001:db8:1::77/64", "dev", iface, "nodad"]);
      try {
        await Bun.sleep(1500);
        expect(await snmp6("Icmp6OutType143")).toBeGreaterThan(reports);
        expect(await snmp6("Ip6OutDiscards")).toBe(discards);
        expect(await dropped()).toBe(drops);
      } finally {
        await lab.exec("app", ["ip", "-6", "addr", "del", "2001:db8:1::77/64", "dev", iface]);
      }
    });

    test("status shows the sets and counters, remove takes them away and is idempotent", async () => {
      expect((await dw(["status"])).stdout).toContain("nothing loaded");
      expect((await apply(["--hosts", "api.example"])).code).toBe(0);
      await lab.canConnect([at("203.0.113.99")], 300); // one dropped connection attempt
      const status = await dw(["status"]);
      // nft: the names' addresses are in the hash sets (the interval sets hold networks, here none).
      expect(status.stdout).toContain(isNft ? "set allow_addr_v4: 2 entries" : "set allow_v4 (rules): 2 entries");
      expect(status.stdout).toContain(isNft ? "set allow_addr_v6: 2 entries" : "set allow_v6 (rules): 2 entries");
      expect(status.stdout).toMatch(isNft ? /counter output_dropped: [1-9]\d* packets/ : /counter output_dropped_v4: [1-9]\d* packets/);
      expect((await dw(["remove"])).code).toBe(0);
      expect((await dw(["remove"])).code).toBe(0);
      expect((await dw(["status"])).stdout).toContain("nothing loaded");
    });

    test("check validates with the kernel and changes nothing", async () => {
      const result = await dw(["check", "--hosts", "api.example"]);
      expect(result.stderr).toContain("the kernel accepts the ruleset");
      expect(result.code).toBe(0);
      expect(await loaded()).toBe("");
    });
  });
}

describeNetns("backend selection, end to end", () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await createLab();
    await lab.setRecords({ "api.example": ["203.0.113.10"] });
  });
  afterAll(() => lab.close());

  test("auto picks nft where it works, and iptables-legacy (enforcing) where nft is absent", async () => {
    const withNft = await lab.domainwall(["apply", "--hosts", "api.example"]);
    expect(withNft.stderr).toContain("backend nft (auto: nft works in this network namespace)");
    expect(withNft.stderr).toContain("nft transactions run in process through libnftables.so.1");
    expect((await lab.domainwall(["remove"])).code).toBe(0);
    const noNft = tempDir("dw-no-nft-");
    chmodSync(noNft, 0o755);
    for (const tool of ["iptables-legacy-save", "ip6tables-legacy-save", "iptables-legacy-restore", "ip6tables-legacy-restore"]) {
      writeFileSync(`${noNft}/${tool}`, `#!/bin/sh\nexec ${Bun.which(tool)} "$@"\n`);
      chmodSync(`${noNft}/${tool}`, 0o755);
    }
    // nft is absent: no binary on PATH, and the library does not load.
    const unloadable = { DOMAINWALL_LIBNFTABLES: "/nonexistent/libnftables.so.1" };
    const withoutNft = await lab.domainwall(["apply", "--hosts", "api.example"], { path: noNft, env: unloadable });
    expect(withoutNft.stderr).toContain("backend iptables-legacy (auto: nft is not usable");
    expect(withoutNft.code).toBe(0);
    expect(await lab.table()).toBe("");
    expect(await lab.canConnect([at("203.0.113.10"), at("203.0.113.99")])).toEqual([true, false]);
    expect((await lab.domainwall(["remove"], { path: noNft, env: unloadable })).code).toBe(0);
    expect(await lab.canConnect([at("203.0.113.99")])).toEqual([true]);
  });

  test("an explicit backend that does not work is an error, not a switch", async () => {
    const empty = tempDir("dw-empty-");
    const result = await lab.domainwall(["apply", "--hosts", "api.example", "--backend", "nft"], {
      path: empty,
      env: { DOMAINWALL_LIBNFTABLES: "/nonexistent/libnftables.so.1" },
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("--backend nft does not work here");
  });
});

test("render works without root, nft or a namespace", async () => {
  const { domainwallCommand } = await import("../lab/lab.ts");
  const child = Bun.spawnSync([...domainwallCommand(), "render", "--dns-servers", "192.0.2.53", "--hosts", "192.0.2.10"], {
    env: { PATH: "/nonexistent" },
    stderr: "pipe",
  });
  expect(child.exitCode).toBe(0);
  expect(child.stdout.toString()).toContain("table inet domainwall {");
  expect(child.stdout.toString()).toContain("192.0.2.10, # --hosts");
});
