// End-to-end, issue 12 items 1 and 8: the namespace lock. The binary (DOMAINWALL_BIN, else the
// source) against the kernel in lab namespaces, both backends.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createLab, describeNetns, type Lab } from "../lab/lab.ts";

setDefaultTimeout(300_000);

const RUNS = {
  a: { hosts: "a.example", v4: "203.0.113.1", v6: "2001:db8:ff::1", port: "3000" },
  b: { hosts: "b.example", v4: "203.0.113.2", v6: "2001:db8:ff::2", port: "3001" },
} as const;
type Run = keyof typeof RUNS;

const count = (text: string, line: string) => text.split("\n").filter((l) => l.trim() === line).length;

/** Which run's policy a text holds for each of its parts (addresses, port), or "none"/"both". */
function whose(_text: string, has: (run: (typeof RUNS)[Run]) => boolean): Run | "none" | "both" {
  const found = (Object.keys(RUNS) as Run[]).filter((run) => has(RUNS[run]));
  return found.length === 1 ? found[0]! : found.length === 0 ? "none" : "both";
}

describeNetns("the namespace lock (issue 12, items 1 and 8)", () => {
  let lab: Lab;
  let runDir: string;
  beforeAll(async () => {
    lab = await createLab();
    await lab.setRecords({ "a.example": [RUNS.a.v4, RUNS.a.v6], "b.example": [RUNS.b.v4, RUNS.b.v6] });
    runDir = mkdtempSync(`${tmpdir()}/dw-lock-`);
  });
  afterAll(async () => {
    await lab.close();
    rmSync(runDir, { recursive: true, force: true });
  });
  const env = () => ({ DOMAINWALL_RUN_DIR: runDir });
  const apply = (backend: string, run: Run) =>
    lab.domainwall(["apply", "--backend", backend, "--hosts", RUNS[run].hosts, "--ports", RUNS[run].port], { env: env() });

  describe.each(["iptables-legacy", "nft"])("%s", (backend) => {
    test("20 rounds of two concurrent applies: each round ends with one jump per hook and family, and one run's whole policy", async () => {
      const outcomes: string[] = [];
      for (let round = 0; round < 20; round++) {
        const [first, second] = await Promise.all([apply(backend, "a"), apply(backend, "b")]);
        expect([first.code, second.code, first.stderr, second.stderr]).toEqual([
          0,
          0,
          expect.stringContaining("applied"),
          expect.stringContaining("applied"),
        ]);
        if (backend === "nft") {
          const table = await lab.table();
          expect([
            count(table, "type filter hook output priority filter; policy drop;"),
            count(table, "type filter hook input priority filter; policy drop;"),
          ]).toEqual([1, 1]);
          const parts = [
            whose(table, (r) => table.includes(`${r.v4} `)),
            whose(table, (r) => table.includes(`${r.v6} `)),
            whose(table, (r) => table.includes(`dport ${r.port} `) || table.includes(`dport { ${r.port} }`)),
          ];
          expect(new Set(parts).size).toBe(1);
          outcomes.push(parts[0]!);
        } else {
          const v4 = (await lab.exec("app", ["iptables-legacy-save", "-t", "filter"])).stdout;
          const v6 = (await lab.exec("app", ["ip6tables-legacy-save", "-t", "filter"])).stdout;
          for (const saved of [v4, v6]) {
            expect([count(saved, "-A OUTPUT -j DOMAINWALL-OUTPUT"), count(saved, "-A INPUT -j DOMAINWALL-INPUT")]).toEqual([1, 1]);
            expect(saved.split("\n").filter((l) => l.startsWith("-A OUTPUT") || l.startsWith("-A INPUT"))[0]).toMatch(/-j DOMAINWALL-/);
          }
          const parts = [
            whose(v4, (r) => v4.includes(`-d ${r.v4}/32 -j ACCEPT`)),
            whose(v6, (r) => v6.includes(`-d ${r.v6}/128 -j ACCEPT`)),
            whose(v4, (r) => v4.includes(`--dport ${r.port} -j ACCEPT`)),
            whose(v6, (r) => v6.includes(`--dport ${r.port} -j ACCEPT`)),
          ];
          expect(new Set(parts).size).toBe(1);
          outcomes.push(parts[0]!);
        }
      }
      expect(outcomes.every((o) => o === "a" || o === "b")).toBe(true);
      await lab.domainwall(["remove", "--backend", backend]);
    });

    test("apply and remove are refused (exit 1) while a watch runs; the watch's rules stay", async () => {
      const ready = `${runDir}/ready-${backend}`;
      const watch = lab.spawnDomainwall(["watch", "--backend", backend, "--hosts", RUNS.a.hosts, "--ready-file", ready], { env: env() });
      try {
        for (let i = 0; i < 100 && !existsSync(ready); i++) await Bun.sleep(100);
        expect(existsSync(ready)).toBe(true);
        const refusedApply = await apply(backend, "b");
        const refusedRemove = await lab.domainwall(["remove", "--backend", backend], { env: env() });
        for (const refused of [refusedApply, refusedRemove]) {
          expect(refused.code).toBe(1);
          expect(refused.stderr).toContain(`a domainwall watch is running in this network namespace (pid ${watch.pid} (watch))`);
        }
        expect(
          await lab.canConnect([
            { host: RUNS.a.v4, port: 80 },
            { host: RUNS.b.v4, port: 80 },
          ]),
        ).toEqual([true, false]);
        const second = await lab.domainwall(["watch", "--backend", backend, "--hosts", RUNS.b.hosts], { env: env() });
        expect([second.code, second.stderr]).toEqual([
          1,
          expect.stringContaining(`another domainwall watch is running in this network namespace: pid ${watch.pid} (watch)`),
        ]);
      } finally {
        watch.kill("SIGTERM");
        await watch.exited;
      }
      expect((await lab.domainwall(["remove", "--backend", backend], { env: env() })).code).toBe(0);
    });
  });

  test("a second command waits a bounded time for the lock, then exits 1 naming the holder and changes nothing", async () => {
    const holder = Bun.spawn(
      [
        "ip",
        "netns",
        "exec",
        lab.app,
        process.execPath,
        `${import.meta.dir}/../support/hold-lock.ts`,
        "domainwall-lock",
        "holder-for-test",
        "0",
      ],
      { stdin: "pipe", stdout: "pipe" },
    );
    try {
      const reader = holder.stdout.getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toBe("held\n");
      const result = await apply("nft", "a");
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`pid ${holder.pid} (holder-for-test) still held the lock after 10s; nothing was changed`);
      expect(await lab.table()).toBe("");
    } finally {
      holder.kill("SIGKILL");
      await holder.exited;
    }
    expect((await apply("nft", "a")).code).toBe(0); // the kernel freed the lock with its holder
    await lab.domainwall(["remove", "--backend", "nft"], { env: env() });
  });

  test("a SIGKILLed apply --confirm-within leaves a stale pending file: confirm says nothing waits, the next apply proceeds (item 8)", async () => {
    const waiting = lab.spawnDomainwall(["apply", "--backend", "nft", "--hosts", RUNS.a.hosts, "--confirm-within", "60s"], { env: env() });
    for (let i = 0; i < 100 && !existsSync(`${runDir}/confirm.pending`); i++) await Bun.sleep(100);
    expect(existsSync(`${runDir}/confirm.pending`)).toBe(true);
    waiting.kill("SIGKILL");
    await waiting.exited;
    const confirm = await lab.domainwall(["confirm"], { env: env() });
    expect([confirm.code, confirm.stderr]).toEqual([1, expect.stringContaining("no apply is waiting for confirmation")]);
    expect(confirm.stderr).toContain(`pid ${waiting.pid} is not running`);
    const next = lab.spawnDomainwall(["apply", "--backend", "nft", "--hosts", RUNS.b.hosts, "--confirm-within", "60s"], { env: env() });
    for (let i = 0; i < 100 && !existsSync(`${runDir}/confirm.pending`); i++) await Bun.sleep(100);
    const confirmed = await lab.domainwall(["confirm"], { env: env() });
    expect(confirmed.code).toBe(0);
    expect(await next.exited).toBe(0);
    await lab.domainwall(["remove", "--backend", "nft"], { env: env() });
  });
});
