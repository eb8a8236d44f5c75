// `bun run build:release`: both architectures' binaries and a SHA256SUMS that `sha256sum -c` accepts.
// Builds into a temporary directory (the arm64 runtime comes from the npm registry, cached after the
// first time); the x64 binary is run, the arm64 one is checked to be an aarch64 executable.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { resolve } from "node:path";

const REPO = resolve(import.meta.dir, "../..");
let outdir: string;
let build: { code: number; stderr: string };

/** ELF e_machine: 62 is x86-64, 183 is AArch64. */
const elfMachine = (path: string): number => {
  const header = readFileSync(path).subarray(0, 20);
  expect(header.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
  return header.readUInt16LE(18);
};

beforeAll(async () => {
  outdir = mkdtempSync(`${tmpdir()}/dw-release-`);
  const child = Bun.spawn([process.execPath, "run", "build:release", "--outdir", outdir], { cwd: REPO, stdout: "ignore", stderr: "pipe" });
  const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
  build = { code, stderr };
});
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

test("build:release writes the x64 and arm64 binaries and SHA256SUMS, which sha256sum -c accepts", () => {
  expect(build.stderr).toContain("built domainwall-linux-x64, domainwall-linux-arm64 and SHA256SUMS");
  expect(build.code).toBe(0);
  const sums = readFileSync(`${outdir}/SHA256SUMS`, "utf8");
  expect(sums).toMatch(/^[0-9a-f]{64} {2}domainwall-linux-arm64\n[0-9a-f]{64} {2}domainwall-linux-x64\n$/);
  const check = Bun.spawnSync(["sha256sum", "--check", "--strict", "SHA256SUMS"], { cwd: outdir });
  expect(check.stdout.toString()).toBe("domainwall-linux-arm64: OK\ndomainwall-linux-x64: OK\n");
  expect(check.exitCode).toBe(0);
  expect(elfMachine(`${outdir}/domainwall-linux-x64`)).toBe(62);
  expect(elfMachine(`${outdir}/domainwall-linux-arm64`)).toBe(183);
});

test("the x64 release binary runs: --version and render", () => {
  const binary = `${outdir}/domainwall-linux-x64`;
  const version = Bun.spawnSync([binary, "--version"]);
  expect(version.stdout.toString()).toMatch(/^domainwall \d+\.\d+\.\d+/);
  expect(version.exitCode).toBe(0);
  const render = Bun.spawnSync([binary, "render", "--hosts", "192.0.2.10,2001:db8::10", "--ports", "3000", "--dns-servers", "192.0.2.53"]);
  const text = render.stdout.toString();
  expect(text).toContain("table inet domainwall {");
  expect(text).toContain("192.0.2.10");
  expect(text).toContain("2001:db8::10");
  expect(render.exitCode).toBe(0);
});
