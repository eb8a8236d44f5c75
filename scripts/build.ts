// Compile the single-file executable: `bun run build` → dist/domainwall.
// Usage: bun scripts/build.ts [--target bun-linux-x64] [--outfile dist/domainwall]
// buildArgs and version are shared with scripts/build-release.ts.
import { parseArgs } from "node:util";
import pkg from "../package.json" with { type: "json" };

/** package.json's version plus the commit; just the version without git (the Dockerfile's build stage has none). */
function gitVersion(): string {
  try {
    const commit = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { stderr: "ignore" });
    return commit.success ? `${pkg.version}+${commit.stdout.toString().trim()}` : pkg.version;
  } catch {
    return pkg.version; // no git executable: Bun.spawnSync throws ENOENT
  }
}
export const version = process.env.DOMAINWALL_VERSION ?? gitVersion();

export function buildArgs(outfile: string, target?: string): string[] {
  return [
    "build",
    "--compile",
    "--minify",
    "--bytecode",
    "--format=esm",
    // A compiled binary would otherwise read .env and bunfig.toml (and run its preload) from the
    // working directory it is started in.
    "--no-compile-autoload-dotenv",
    "--no-compile-autoload-bunfig",
    // JavaScriptCore's tier-up thresholds times 16: a one-shot command (apply, status) then spends
    // less CPU compiling code it runs once (measured, apply of 300 names: 173 -> 125 ms of CPU,
    // median of 11, the JIT's threads included; an allow file of 100,000 CIDRs renders no slower).
    // `watch` runs on and sets its own when it starts (World.normalJit with the proxy, else backgroundLoop).
    "--compile-jit-policy=16",
    `--define=DOMAINWALL_VERSION=${JSON.stringify(version)}`,
    `--define=process.env.NODE_ENV="production"`,
    ...(target ? [`--target=${target}`] : []),
    `--outfile=${outfile}`,
    "src/main.ts",
  ];
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { target: { type: "string" }, outfile: { type: "string", default: "dist/domainwall" } },
  });
  const result = Bun.spawnSync([process.execPath, ...buildArgs(values.outfile, values.target)], { stdout: "inherit", stderr: "inherit" });
  if (!result.success) process.exit(result.exitCode ?? 1);
  console.error(`built ${values.outfile} (domainwall ${version})`);
}
