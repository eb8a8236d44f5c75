// What nft itself costs on domainwall's text for 100,000 CIDRs, next to the bench's floor, and two
// ideas ruled out for the 100,000-CIDR target. Root only; one network namespace, created and removed.
//   bun run build && bun bench/nft-floor-checks.ts [--runs 5] [--stream-only]
// 1. the floor with and without `auto-merge` (domainwall's sets have it);
// 2. nft -f of domainwall's rendered text, of the same without element comments, of the floor;
// 3. 150 ms of "rendering" then one write, against the same text streamed in 30 chunks meanwhile.
import { parseArgs } from "node:util";
import { median } from "./measure.ts";
import { cidrs, NFT_FLOOR_TABLE, nftFloor } from "./workloads.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "5" }, "stream-only": { type: "boolean", default: false } } });
const RUNS = Number(values.runs);
const NS = `dwfloor${process.pid}`;
const { sorted, shuffled } = cidrs(100_000);
const allowFile = `/tmp/${NS}-allow.txt`;
await Bun.write(allowFile, `${shuffled.join("\n")}\n`);
const rendered = Bun.spawnSync([
  `${import.meta.dir}/../dist/domainwall`,
  "render",
  "--hosts",
  "192.0.2.1",
  "--allow-file",
  allowFile,
  "--dns-servers",
  "192.0.2.53",
]);
if (rendered.exitCode !== 0) throw new Error(`render failed: ${rendered.stderr.toString()}`);
const texts = {
  floor: nftFloor(sorted),
  floorAutoMerge: nftFloor(sorted).replace("flags interval\n", "flags interval\n\t\tauto-merge\n"),
  ours: rendered.stdout.toString(),
  oursNoComments: rendered.stdout.toString().replace(/ +# \S+:\d+$/gm, ""),
};

/** `write`: the whole text at once; `late`: after 150 ms (as if rendering first); `stream`: 30 chunks over 150 ms. */
async function load(text: string, table: string, how: "write" | "late" | "stream" = "write"): Promise<number> {
  const started = performance.now();
  const nft = Bun.spawn(["ip", "netns", "exec", NS, "nft", "-f", "-"], { stdin: "pipe", stderr: "pipe" });
  if (how === "stream") {
    const size = Math.ceil(text.length / 30);
    for (let i = 0; i < 30; i++) {
      await Bun.sleep(5);
      nft.stdin.write(text.slice(i * size, (i + 1) * size));
      await nft.stdin.flush();
    }
  } else {
    if (how === "late") await Bun.sleep(150);
    nft.stdin.write(text);
  }
  await nft.stdin.end();
  if ((await nft.exited) !== 0) throw new Error(await new Response(nft.stderr).text());
  const ms = performance.now() - started;
  Bun.spawnSync(["ip", "netns", "exec", NS, "nft", "delete", "table", "inet", table]);
  await Bun.sleep(300); // let the kernel free the set before the next run
  return ms;
}

Bun.spawnSync(["ip", "netns", "add", NS]);
try {
  const runs: Record<string, number[]> = { floor: [], floorAutoMerge: [], ours: [], oursNoComments: [], renderThenWrite: [], streamed: [] };
  const only = values["stream-only"];
  for (let run = 0; run < RUNS; run++) {
    if (!only) {
      runs.floor?.push(await load(texts.floor, NFT_FLOOR_TABLE));
      runs.floorAutoMerge?.push(await load(texts.floorAutoMerge, NFT_FLOOR_TABLE));
      runs.ours?.push(await load(texts.ours, "domainwall"));
      runs.oursNoComments?.push(await load(texts.oursNoComments, "domainwall"));
    }
    runs.renderThenWrite?.push(await load(texts.floor, NFT_FLOOR_TABLE, "late"));
    runs.streamed?.push(await load(texts.floor, NFT_FLOOR_TABLE, "stream"));
  }
  const m = (key: string) => median(runs[key] ?? []).toFixed(0);
  console.log(`nft -f, 100,000 IPv6 CIDRs, median of ${RUNS} (ms):`);
  console.log(`  floor ${m("floor")}; floor with auto-merge ${m("floorAutoMerge")}`);
  console.log(
    `  domainwall's text ${m("ours")} (${texts.ours.length} bytes); without element comments ${m("oursNoComments")} (${texts.oursNoComments.length} bytes)`,
  );
  console.log(`  floor after 150 ms of rendering, one write ${m("renderThenWrite")}; streamed in 30 chunks over 150 ms ${m("streamed")}`);
} finally {
  Bun.spawnSync(["ip", "netns", "del", NS]);
  Bun.spawnSync(["rm", "-f", allowFile]);
}
