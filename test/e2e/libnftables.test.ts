// The in-process executor against the real kernel, next to the nft binary. Each run is a driver
// process (test/support/nft-executor-driver.ts) in a fresh network namespace of its own
// (`unshare --net`): the library acts on the namespace of the process that calls it.
import { expect, setDefaultTimeout, test } from "bun:test";
import { readdirSync } from "node:fs";
import { resolve } from "node:path";
import type { NftResult } from "../../src/backends/nft/executor.ts";
import { describeNetns } from "../lab/lab.ts";
import { tempDirs } from "../support/temp-dirs.ts";

// Namespaces and child processes under a loaded machine: beyond bun's 5 s default.
setDefaultTimeout(120_000);

const DRIVER = resolve(import.meta.dir, "../support/nft-executor-driver.ts");
const GOLDEN = resolve(import.meta.dir, "../golden");
const goldens = readdirSync(GOLDEN).filter((f) => f.endsWith(".nft"));

interface Request {
  readonly script: string;
  readonly check?: boolean;
  readonly json?: boolean;
}
interface Driven {
  readonly name: string;
  readonly reason: string;
  readonly results: NftResult[];
  readonly ruleset: string;
}

async function drive(
  executor: "libnftables" | "nft" | "auto",
  requests: readonly Request[],
  opts: {
    env?: Record<string, string>;
    concurrent?: boolean;
    command?: string[];
    churn?: number;
    noDescriptors?: boolean;
    large?: number;
    noTrim?: boolean;
  } = {},
): Promise<Driven> {
  const command = opts.command ?? [process.execPath, DRIVER];
  const argv = [
    "unshare",
    "--net",
    ...command,
    executor,
    ...(opts.concurrent ? ["--concurrent"] : []),
    ...(opts.churn ? ["--churn", String(opts.churn)] : []),
    ...(opts.noDescriptors ? ["--no-descriptors"] : []),
    ...(opts.large ? ["--large", String(opts.large)] : []),
    ...(opts.noTrim ? ["--no-trim"] : []),
  ];
  const child = Bun.spawn(argv, {
    stdin: new Blob([JSON.stringify(requests)]),
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...opts.env },
  });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  if (code !== 0) throw new Error(`${argv.join(" ")} exited ${code}: ${stderr}`);
  return JSON.parse(stdout) as Driven;
}

const tempDir = tempDirs();
const golden = (name: string) => Bun.file(`${GOLDEN}/${name}`).text();

describeNetns("libnftables executor against the kernel (root)", () => {
  test("every golden policy is compared (the list is test/golden/*.nft, so a new golden file is covered)", () => {
    expect(goldens.length).toBeGreaterThanOrEqual(3);
  });

  test.each(goldens)("%s: byte-identical kernel state and results to the nft binary", async (name) => {
    const requests = [
      { script: await golden(name) },
      { script: "list table inet domainwall", json: true },
      { script: "list table inet domainwall\n" },
    ];
    const [inProcess, binary] = await Promise.all([drive("libnftables", requests), drive("nft", requests)]);
    expect(inProcess.name).toBe("libnftables");
    expect(binary.name).toBe("nft");
    expect(inProcess.results.map((r) => r.code)).toEqual([0, 0, 0]);
    expect(inProcess.ruleset).toStartWith("table inet domainwall {\n");
    expect(inProcess.ruleset).toBe(binary.ruleset);
    expect(inProcess.results).toEqual(binary.results);
    expect(JSON.parse(inProcess.results[1]!.stdout).nftables).toBeArray();
  });

  test("errors read as nft's: same text, naming the line, for multi-line, one-line and JSON scripts", async () => {
    const requests = [
      { script: "table inet domainwall {\n\tchain c {\n\t\tfoo bar\n\t}\n}\n" },
      { script: "table inet domainwall {\n\tchain c {\n\t\tfoo bar\n\t}\n}\n", check: true },
      { script: "add element inet domainwall s { 192.0.2.1.5 }\n" },
      { script: "list table inet domainwall\n" },
      { script: "list table inet domainwall", json: true },
    ];
    const [inProcess, binary] = await Promise.all([drive("libnftables", requests), drive("nft", requests)]);
    expect(inProcess.results).toEqual(binary.results);
    expect(inProcess.results.map((r) => r.code)).toEqual([1, 1, 1, 1, 1]);
    expect(inProcess.results[0]!.stderr).toBe("/dev/stdin:3:3-5: Error: No symbol type information\n\t\tfoo bar\n\t\t^^^\n");
    expect(inProcess.results[2]!.stderr).toStartWith("/dev/stdin:1:42-43: Error: syntax error");
    expect(inProcess.results[3]!.stderr).toContain("No such file or directory");
    expect(inProcess.results[4]!.stderr).toBe("Error: No such file or directory\nlist table inet domainwall\n                ^^^^^^^^^^\n");
    expect(inProcess.ruleset).toBe("");
  });

  test("dry-run and JSON apply to their own run only", async () => {
    const { results, ruleset } = await drive("libnftables", [
      { script: "table inet dwfirst\n" },
      { script: "list table inet dwfirst", json: true },
      { script: "list table inet dwfirst\n" },
      { script: "table inet dwchecked\n", check: true },
      { script: "table inet dwloaded\n" },
    ]);
    expect(results.map((r) => r.code)).toEqual([0, 0, 0, 0, 0]);
    expect(results[1]!.stdout).toStartWith('{"nftables": [');
    expect(results[2]!.stdout).toBe("table inet dwfirst {\n}\n");
    expect(ruleset).toBe("table inet dwfirst {\n}\ntable inet dwloaded {\n}\n");
  });

  test("runs started together are serialised: each result is its own run's", async () => {
    const requests = Array.from({ length: 40 }, (_, i) =>
      i % 2 === 0 ? { script: `table inet dw${i}\n` } : { script: `list table inet dw${i - 1}`, json: true },
    );
    const { results, ruleset } = await drive("libnftables", requests, { concurrent: true });
    results.forEach((result, i) => {
      expect(result.code).toBe(0);
      if (i % 2 === 0) expect(result.stdout).toBe("");
      else expect(JSON.parse(result.stdout).nftables[1].table.name).toBe(`dw${i - 1}`);
    });
    expect(ruleset.match(/^table inet dw\d+ \{$/gm)).toHaveLength(20);
  });

  test("fallback: with the library unloadable, the nft binary loads every golden policy and the reason says so", async () => {
    const env = { DOMAINWALL_LIBNFTABLES: "/nonexistent/libnftables.so.1" };
    for (const name of goldens) {
      const [fallback, inProcess] = await Promise.all([
        drive("auto", [{ script: await golden(name) }], { env }),
        drive("auto", [{ script: await golden(name) }]),
      ]);
      expect(fallback.name).toBe("nft");
      expect(fallback.reason).toStartWith("nft transactions run the nft binary: cannot load /nonexistent/libnftables.so.1: ");
      expect(inProcess.name).toBe("libnftables");
      expect(fallback.results).toEqual([{ code: 0, stdout: "", stderr: "" }]);
      expect(fallback.ruleset).toBe(inProcess.ruleset);
    }
  });

  test("no netlink socket (descriptor table full): the chooser falls back to the binary, and a direct run fails instead of exit()", async () => {
    const chosen = (await drive("auto", [], { noDescriptors: true })) as unknown as { name: string; reason: string };
    expect(chosen.name).toBe("nft");
    expect(chosen.reason).toBe(
      "nft transactions run the nft binary: libnftables.so.1 loads, but cannot open a netfilter netlink socket: EMFILE",
    );
    const direct = (await drive("libnftables", [], { noDescriptors: true })) as unknown as { name: string; error: string };
    expect(direct).toEqual({
      name: "libnftables",
      reason: "asked for libnftables",
      error: "libnftables: cannot open a netfilter netlink socket: EMFILE",
    } as never);
  });

  test("memory: 10,000 add-element transactions with timeouts, RSS flat", async () => {
    const { name, rss } = (await drive("libnftables", [], { churn: 10_000 })) as unknown as { name: string; rss: [number, number][] };
    expect(name).toBe("libnftables");
    expect(rss).toHaveLength(10);
    const [, early] = rss[1]!; // after 2,000: warmed up
    const [, late] = rss[9]!;
    const growthMiB = (late - early) / 2 ** 20;
    console.info(`RSS ${(early / 2 ** 20).toFixed(1)} MiB after 2,000 transactions, ${(late / 2 ** 20).toFixed(1)} MiB after 10,000`);
    // A leak of 2 KiB per transaction would add 16 MiB.
    expect(growthMiB).toBeLessThan(16);
  });

  test("memory: after a 2 MB load the context is freed and the heap trimmed, so RSS comes back (control: without, it stays up)", async () => {
    type Large = { bytes: number; rss: { before: number; after: number; next: number } };
    const [released, kept] = (await Promise.all([
      drive("libnftables", [], { large: 100_000 }),
      drive("libnftables", [], { large: 100_000, noTrim: true }),
    ])) as unknown as [Large, Large];
    const mib = (bytes: number) => bytes / 2 ** 20;
    console.info(
      `RSS before/after/next add, MiB: released ${Object.values(released.rss)
        .map(mib)
        .map((v) => v.toFixed(1))}, kept ${Object.values(kept.rss)
        .map(mib)
        .map((v) => v.toFixed(1))}`,
    );
    expect(released.bytes).toBeGreaterThan(1 << 20);
    expect(mib(released.rss.next - released.rss.before)).toBeLessThan(8);
    expect(mib(kept.rss.after - released.rss.after)).toBeGreaterThan(16);
  });

  test("works in a compiled binary (bun build --compile): dlopen of the system library", async () => {
    const dir = tempDir("dwffi-");
    const bin = `${dir}/nft-executor-driver`;
    const build = Bun.spawnSync([process.execPath, "build", "--compile", `--outfile=${bin}`, DRIVER], { stdout: "pipe", stderr: "pipe" });
    expect(build.stderr.toString()).not.toContain("error");
    expect(build.exitCode).toBe(0);
    const requests = [{ script: await golden("egress-only.nft") }, { script: "list table inet domainwall", json: true }];
    const [compiled, binary] = await Promise.all([drive("auto", requests, { command: [bin] }), drive("nft", requests)]);
    expect(compiled.name).toBe("libnftables");
    expect(compiled.results).toEqual(binary.results);
    expect(compiled.ruleset).toBe(binary.ruleset);
  }, 60_000);
});
