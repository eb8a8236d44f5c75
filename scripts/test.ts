// The whole test suite, as CI runs it: `bun run test [bun test args...]`.
// Builds the binary, runs every test against it (DOMAINWALL_BIN), and ends with `N passed, N failed`.
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";

const root = resolve(import.meta.dir, "..");
const junit = `${root}/test-results/junit.xml`;
mkdirSync(`${root}/test-results`, { recursive: true }); // bun writes no report when the folder is missing

const build = Bun.spawnSync([process.execPath, "run", "build"], { cwd: root, stdout: "inherit", stderr: "inherit" });
if (!build.success) {
  console.log("0 passed, 1 failed");
  process.exit(1);
}

const tests = Bun.spawnSync(
  [process.execPath, "test", "--timeout", "120000", "--reporter=junit", `--reporter-outfile=${junit}`, ...process.argv.slice(2)],
  {
    cwd: root,
    stdout: "inherit",
    stderr: "inherit",
    env: { ...process.env, DOMAINWALL_BIN: process.env.DOMAINWALL_BIN ?? `${root}/dist/domainwall` },
  },
);

const report = (await Bun.file(junit).exists()) ? await Bun.file(junit).text() : "";
const attribute = (name: string) => Number(new RegExp(`<testsuites\\b[^>]*\\s${name}="(\\d+)"`).exec(report)?.[1] ?? 0);
const total = attribute("tests");
const failed = attribute("failures") + attribute("errors");
const skipped = attribute("skipped");
if (skipped > 0) console.log(`${skipped} skipped`);
const bunFailed = tests.exitCode !== 0 && failed === 0 ? 1 : 0;
console.log(`${total - failed - skipped} passed, ${failed + bunFailed} failed`);
process.exit(tests.exitCode === 0 && failed === 0 ? 0 : 1);
