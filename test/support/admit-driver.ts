// Admission against the kernel, for test/e2e/admit-kernel.test.ts (root): `unshare --net bun
// test/support/admit-driver.ts libnftables|nft`. In this process's fresh network namespace it
// declares the proxy sets, admits answers through createAdmitter and lists the sets by the nft
// binary after each step. Its clock is the real one plus an offset the steps advance (so the
// "later answer" step need not wait 10 s); the kernel counts real time.
// stdout: JSON { steps: [{ step, scripts, elements: { [address]: { timeout, expires } } }], snapshot }
// where scripts counts the executor's runs so far. Documentation addresses only.
import type { NftExecutor } from "../../src/backends/nft/executor.ts";
import { loadLibnftables } from "../../src/backends/nft/libnftables.ts";
import { processExecutor } from "../../src/backends/nft/process-executor.ts";
import { type SetAdmission, createAdmitter } from "../../src/backends/nft/admitter.ts";
import { runProcess } from "../../src/run.ts";

const which = process.argv[2];
let base: NftExecutor;
if (which === "nft") base = processExecutor(runProcess);
else {
  const loaded = loadLibnftables();
  if (!loaded.ok) throw new Error(loaded.reason);
  base = loaded.executor;
}
let scripts = 0;
const executor: NftExecutor = { name: base.name, run: (script, options) => (scripts++, base.run(script, options)) };

const must = async (script: string) => {
  const result = await base.run(script);
  if (result.code !== 0) throw new Error(`${script}: ${result.stderr}`);
};
const sets = (v4: string, v6: string) =>
  `table inet domainwall {\n\tset proxy_v4 {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t\t${v4}\n\t}\n\tset proxy_v6 {\n\t\ttype ipv6_addr\n\t\tflags timeout\n\t\t${v6}\n\t}\n}\n`;

/** Elements in the kernel, by the nft binary (independent of the executor under test). */
function kernel(): Record<string, { timeout: number; expires: number }> {
  const out: Record<string, { timeout: number; expires: number }> = {};
  for (const set of ["proxy_v4", "proxy_v6"]) {
    const listed = Bun.spawnSync(["nft", "-j", "list", "set", "inet", "domainwall", set]);
    if (listed.exitCode !== 0) throw new Error(listed.stderr.toString());
    const parsed = JSON.parse(listed.stdout.toString()) as {
      nftables: { set?: { elem?: { elem: { val: string; timeout: number; expires: number } }[] } }[];
    };
    for (const item of parsed.nftables)
      for (const { elem } of item.set?.elem ?? []) out[elem.val] = { timeout: elem.timeout, expires: elem.expires };
  }
  return out;
}

let offset = 0;
const now = () => Date.now() + offset;
const options = { executor, now, minTtlMs: 5_000, maxTtlMs: 3_600_000, graceMs: 30_000 };
const answer = (ttl: number, ...addresses: string[]): SetAdmission => ({
  name: "cdn.example.com",
  entry: "**.example.com",
  addresses: addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4, ttl })),
});
const steps: { step: string; scripts: number; elements: ReturnType<typeof kernel> }[] = [];
const record = (step: string) => steps.push({ step, scripts, elements: kernel() });

await must(sets("", ""));
let admitter = createAdmitter(options);
await admitter.admit(answer(60, "198.51.100.9", "2001:db8::9"));
record("first answer, TTL 60");
await Bun.sleep(2_100);
offset += 20_000;
await admitter.admit(answer(60, "198.51.100.9"));
record("same answer 20 s later (clock), 2 s later (kernel)");
await admitter.admit(answer(5, "198.51.100.9", "2001:db8::9"));
record("shorter answer, TTL 5");
await admitter.admit(answer(600, "198.51.100.9"));
record("longer answer, TTL 600");
await Promise.all([admitter.admit(answer(60, "198.51.100.10")), admitter.admit(answer(60, "2001:db8::10", "198.51.100.11"))]);
record("two answers at once");

// A restarted proxy: a new admitter learns the kernel's elements.
admitter = createAdmitter(options);
const learnt = await admitter.seedFromKernel();
await admitter.admit(answer(600, "198.51.100.9"));
await admitter.admit(answer(60, "2001:db8::9", "198.51.100.10"));
record(`restarted, learnt ${learnt}, answers already covered`);

// A full replace of the table in one transaction, carrying the admitted elements over.
const carry = admitter.renderCarryOver();
const replaced = await admitter.replaceTable((c) => `table inet domainwall\ndelete table inet domainwall\n${sets(c.v4, c.v6)}`);
if (replaced.code !== 0) throw new Error(replaced.stderr);
record("table replaced with the carry-over");
await must(`table inet domainwall\ndelete table inet domainwall\n${sets("", "")}`);
record("table replaced without it");

console.log(JSON.stringify({ steps, carry, snapshot: admitter.snapshot().elements.map((e) => e.address) }));
