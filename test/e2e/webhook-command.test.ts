// `domainwall webhook` refusing to start: bad configuration exits 2, naming the flag or key and the value.
import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { tempDirs } from "../support/temp-dirs.ts";

const dir = tempDirs()("domainwall-webhook-cmd-");
const command = process.env.DOMAINWALL_BIN ? [process.env.DOMAINWALL_BIN] : ["bun", `${import.meta.dir}/../../src/main.ts`];

async function webhook(args: string[]): Promise<{ code: number; stderr: string }> {
  const child = Bun.spawn([...command, "webhook", ...args], { stdout: "ignore", stderr: "pipe", timeout: 30_000 });
  const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
  return { code, stderr };
}

const rows: { name: string; file?: string; args: string[]; message: string }[] = [
  { name: "no certificate", file: 'image = "x/y:1"\n', args: [], message: "--tls-cert is required" },
  { name: "no image", file: "", args: ["--tls-cert", "/nonexistent.crt", "--tls-key", "/nonexistent.key"], message: "image is required" },
  {
    name: "an image with a space",
    file: 'image = "x y"\n',
    args: ["--tls-cert", "a", "--tls-key", "b"],
    message: '"x y" is not an image reference',
  },
  {
    name: "an unknown mode",
    file: 'image = "x/y:1"\nmode = "enforce"\n',
    args: ["--tls-cert", "a", "--tls-key", "b"],
    message: 'mode: "enforce" must be "proxy" or "apply"',
  },
  {
    name: "a bad resource",
    file: 'image = "x/y:1"\nsidecar-limits = ["memory=lots"]\n',
    args: ["--tls-cert", "a", "--tls-key", "b"],
    message: '"memory=lots" is not a Kubernetes quantity',
  },
  { name: "a watch-only flag", file: 'image = "x/y:1"\n', args: ["--dns-proxy"], message: "--dns-proxy does not apply to 'webhook'" },
  {
    name: "a certificate file that does not exist",
    file: 'image = "x/y:1"\n',
    args: ["--tls-cert", "/nonexistent.crt", "--tls-key", "/nonexistent.key"],
    message: '--tls-cert "/nonexistent.crt" does not exist',
  },
];

for (const row of rows)
  test(`${row.name}: exit 2`, async () => {
    const config = `${dir}/${row.name.replace(/\W+/g, "-")}.toml`;
    writeFileSync(config, row.file ?? "");
    const { code, stderr } = await webhook(["--config", config, ...row.args]);
    expect(stderr).toContain(row.message);
    expect(code).toBe(2);
  });
