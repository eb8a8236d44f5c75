// Release binaries: `bun run build:release [--outdir dist]` →
//   dist/domainwall-linux-x64, dist/domainwall-linux-arm64 and dist/SHA256SUMS (`sha256sum -c` format).
// The same build as `bun run build` (buildArgs), cross-compiled: Bun fetches the other architecture's
// runtime from the npm registry (@oven/bun-linux-aarch64, about 40 MB) once and caches it.
import { mkdirSync, writeFileSync } from "node:fs";
import { basename, resolve } from "node:path";
import { parseArgs } from "node:util";
import { buildArgs, version } from "./build.ts";

const ROOT = resolve(import.meta.dir, "..");
/** Release file name → Bun's compile target. */
const RELEASE_TARGETS = {
  "domainwall-linux-x64": "bun-linux-x64",
  "domainwall-linux-arm64": "bun-linux-arm64",
} as const;

const { values } = parseArgs({ options: { outdir: { type: "string", default: "dist" } } });
const outdir = resolve(ROOT, values.outdir);
mkdirSync(outdir, { recursive: true });

const sums: string[] = [];
for (const [name, target] of Object.entries(RELEASE_TARGETS).sort()) {
  const outfile = `${outdir}/${name}`;
  const build = Bun.spawnSync([process.execPath, ...buildArgs(outfile, target)], { cwd: ROOT, stdout: "inherit", stderr: "inherit" });
  if (!build.success) {
    console.error(`building ${name} (${target}) failed`);
    process.exit(build.exitCode ?? 1);
  }
  const hash = new Bun.CryptoHasher("sha256").update(await Bun.file(outfile).arrayBuffer()).digest("hex");
  sums.push(`${hash}  ${basename(outfile)}\n`);
}
writeFileSync(`${outdir}/SHA256SUMS`, sums.join("")); // sorted by file name
console.error(`built ${Object.keys(RELEASE_TARGETS).join(", ")} and SHA256SUMS in ${outdir} (domainwall ${version})`);
