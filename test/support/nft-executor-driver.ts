// Runs nft scripts through one NftExecutor in this process's network namespace, for tests that
// need root: `unshare --net bun test/support/nft-executor-driver.ts EXECUTOR [--churn N]`.
//   EXECUTOR: libnftables (must load), nft (the binary) or auto (createNftExecutor, honouring
//   DOMAINWALL_LIBNFTABLES).
//   stdin: JSON [{ script, check?, json? }], run in order (all queued at once with --concurrent).
//   stdout: JSON { name, reason, results: NftResult[], ruleset } where ruleset is `nft list ruleset`
//   by the binary afterwards.
//   --no-descriptors: the executor is chosen (and, for libnftables, one script run) while this
//   process may open no file descriptor (RLIMIT_NOFILE 0), so no netlink socket either: what
//   libnftables 1.0.6 answers by exit(); stdout: JSON { name, reason, error }.
//   --large N [--no-trim]: one transaction loading a set of N IPv6 documentation addresses (about
//   20 bytes each), then one `add element`, with the executor's release after large scripts (free
//   the context, malloc_trim) or without it; stdout: JSON { name, bytes, rss: { before, after,
//   next } } (RSS in bytes after Bun.gc: before, after the load, after the next add).
//   --churn N: instead, one table with a timeout set, then N `add element ... timeout` transactions
//   (distinct IPv6 documentation addresses); stdout: JSON { name, rss: [[transactions, bytes], ...] }.
import { dlopen, FFIType, ptr } from "bun:ffi";
import { parseArgs } from "node:util";
import { createNftExecutor } from "../../src/backends/nft/choose-executor.ts";
import type { NftExecutor, NftResult } from "../../src/backends/nft/executor.ts";
import { loadLibnftables } from "../../src/backends/nft/libnftables.ts";
import { processExecutor } from "../../src/backends/nft/process-executor.ts";
import { runProcess } from "../../src/run.ts";

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: {
    churn: { type: "string" },
    concurrent: { type: "boolean", default: false },
    "no-descriptors": { type: "boolean", default: false },
    large: { type: "string" },
    "no-trim": { type: "boolean", default: false },
  },
});

function choose(which: string | undefined): { executor: NftExecutor; reason: string } {
  if (which === "nft") return { executor: processExecutor(runProcess), reason: "asked for the nft binary" };
  if (which === "auto") return createNftExecutor({ run: runProcess, env: process.env });
  if (which !== "libnftables") throw new Error(`usage: nft-executor-driver.ts libnftables|nft|auto, not ${which}`);
  const loaded = loadLibnftables(undefined, values["no-trim"] ? { releaseAfterBytes: Number.POSITIVE_INFINITY } : {});
  if (!loaded.ok) throw new Error(loaded.reason);
  return { executor: loaded.executor, reason: "asked for libnftables" };
}

if (values["no-descriptors"]) {
  const RLIMIT_NOFILE = 7;
  const { symbols: libc } = dlopen("libc.so.6", {
    getrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
    setrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  });
  // Loaded before the limit (a loaded library opens again without a descriptor): only the socket is denied.
  dlopen("libnftables.so.1", { nft_ctx_free: { args: [FFIType.ptr], returns: FFIType.void } });
  const saved = new BigUint64Array(2);
  if (libc.getrlimit(RLIMIT_NOFILE, ptr(saved)) !== 0) throw new Error("getrlimit failed");
  if (libc.setrlimit(RLIMIT_NOFILE, ptr(new BigUint64Array([0n, saved[1]!]))) !== 0) throw new Error("setrlimit failed");
  const { executor, reason } = choose(positionals[0]);
  const error =
    executor.name === "libnftables"
      ? await executor.run("list tables\n").then(
          () => "",
          (e: Error) => e.message,
        )
      : "";
  libc.setrlimit(RLIMIT_NOFILE, ptr(saved));
  console.log(JSON.stringify({ name: executor.name, reason, error }));
  process.exit(0);
}

const { executor, reason } = choose(positionals[0]);
const must = async (script: string) => {
  const result = await executor.run(script);
  if (result.code !== 0) throw new Error(`${script}: ${result.stderr}`);
};

const rssNow = () => (Bun.gc(true), process.memoryUsage.rss());

if (values.large !== undefined) {
  const count = Number(values.large);
  const elements = Array.from({ length: count }, (_, i) => `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`);
  const script = `table inet dwlarge {\n\tset big {\n\t\ttype ipv6_addr\n\t\telements = { ${elements.join(", ")} }\n\t}\n}\n`;
  await must("table inet dwlarge\n");
  const before = rssNow();
  await must(script);
  const after = rssNow();
  await must("add element inet dwlarge big { 2001:db8:ffff::1 }\n");
  const next = rssNow();
  console.log(JSON.stringify({ name: executor.name, bytes: script.length, rss: { before, after, next } }));
} else if (values.churn !== undefined) {
  const count = Number(values.churn);
  await must("table inet dwchurn {\n\tset learned {\n\t\ttype ipv6_addr\n\t\tflags timeout\n\t}\n}\n");
  const rss: [number, number][] = [];
  for (let i = 1; i <= count; i++) {
    await must(`add element inet dwchurn learned { 2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::1 timeout 60s }\n`);
    if (i % 1000 === 0) {
      Bun.gc(true);
      rss.push([i, process.memoryUsage.rss()]);
    }
  }
  console.log(JSON.stringify({ name: executor.name, rss }));
} else {
  const requests = JSON.parse(await Bun.stdin.text()) as { script: string; check?: boolean; json?: boolean }[];
  const runOne = ({ script, ...options }: (typeof requests)[number]) => executor.run(script, options);
  let results: NftResult[];
  if (values.concurrent) results = await Promise.all(requests.map(runOne));
  else {
    results = [];
    for (const request of requests) results.push(await runOne(request));
  }
  const ruleset = Bun.spawnSync(["nft", "list", "ruleset"], { stderr: "inherit" }).stdout.toString();
  console.log(JSON.stringify({ name: executor.name, reason, results, ruleset }));
}
