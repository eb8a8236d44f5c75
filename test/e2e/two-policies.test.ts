// End-to-end, issue 12 item 7: never two policies at once. remove and status see domainwall's rules
// in every backend that works here; apply loads its own first, then removes the other backend's;
// with nft missing from PATH the nft table is removed through libnftables in process. The binary
// (DOMAINWALL_BIN, else the source) against the kernel in lab namespaces.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { createLab, describeNetns, type Lab } from "../lab/lab.ts";
import { tempDirs } from "../support/temp-dirs.ts";

setDefaultTimeout(120_000);
const tempDir = tempDirs();

describeNetns("two policies at once (issue 12, item 7)", () => {
  let lab: Lab;
  let noNft: string;
  beforeAll(async () => {
    lab = await createLab();
    await lab.setRecords({ "api.example": ["203.0.113.10", "2001:db8:ff::10"] });
    noNft = tempDir("dw-no-nft-");
    chmodSync(noNft, 0o755);
    for (const tool of ["iptables-legacy-save", "ip6tables-legacy-save", "iptables-legacy-restore", "ip6tables-legacy-restore"]) {
      writeFileSync(`${noNft}/${tool}`, `#!/bin/sh\nexec ${Bun.which(tool)} "$@"\n`);
      chmodSync(`${noNft}/${tool}`, 0o755);
    }
  });
  afterEach(async () => {
    await lab.domainwall(["remove", "--backend", "iptables-legacy"]);
    await lab.domainwall(["remove", "--backend", "nft"]);
  });
  afterAll(() => lab.close());

  const at = (host: string) => ({ host, port: 80 });
  const chains = async () => {
    const saved = await Promise.all(
      ["iptables-legacy-save", "ip6tables-legacy-save"].map((tool) => lab.exec("app", [tool, "-t", "filter"])),
    );
    return saved.map((s) => s.stdout.split("\n").filter((line) => line.includes("DOMAINWALL")).length);
  };
  const enforcing = async () =>
    expect(await lab.canConnect([at("203.0.113.10"), at("203.0.113.99"), at("2001:db8:ff::10"), at("2001:db8:ff::99")])).toEqual([
      true,
      false,
      true,
      false,
    ]);

  test("after apply --backend iptables-legacy: status (auto) shows it, plain remove removes it", async () => {
    expect((await lab.domainwall(["apply", "--backend", "iptables-legacy", "--hosts", "api.example"])).code).toBe(0);
    const status = await lab.domainwall(["status"]);
    expect([status.code, status.stdout]).toEqual([0, expect.stringContaining("domainwall is loaded (iptables-legacy)")]);
    const removed = await lab.domainwall(["remove"]);
    expect([removed.code, removed.stderr]).toEqual([0, expect.stringContaining("removed domainwall's rules (iptables-legacy)")]);
    expect(await chains()).toEqual([0, 0]);
    expect(await lab.canConnect([at("203.0.113.99")])).toEqual([true]);
  });

  test("apply with nft after iptables-legacy, and iptables-legacy after nft: one policy left, enforcing", async () => {
    expect((await lab.domainwall(["apply", "--backend", "iptables-legacy", "--hosts", "api.example"])).code).toBe(0);
    const toNft = await lab.domainwall(["apply", "--hosts", "api.example"]);
    expect([toNft.code, toNft.stderr]).toEqual([0, expect.stringContaining("removed the iptables-legacy policy loaded before")]);
    expect(await chains()).toEqual([0, 0]);
    expect(await lab.table()).toContain("chain output");
    await enforcing();

    const toIptables = await lab.domainwall(["apply", "--backend", "iptables-legacy", "--hosts", "api.example"]);
    expect([toIptables.code, toIptables.stderr]).toEqual([0, expect.stringContaining("removed the nft policy loaded before")]);
    expect(await lab.table()).toBe("");
    expect((await chains()).every((n) => n > 0)).toBe(true);
    await enforcing();
    const status = await lab.domainwall(["status", "--backend", "nft"]);
    expect(status.stdout).not.toContain("TWO");
    expect(status.stdout).toContain("domainwall is loaded (iptables-legacy)");
  });

  test("nft missing from PATH with an nft table loaded: apply --backend iptables-legacy removes the table through libnftables; status and remove see both", async () => {
    // Without the binary, auto still means nft: through libnftables in this process.
    const nftInProcess = await lab.domainwall(["apply", "--hosts", "api.example"], { path: noNft });
    expect(nftInProcess.code).toBe(0);
    expect(nftInProcess.stderr).toContain("backend nft (auto: nft works in this network namespace)");
    expect(nftInProcess.stderr).toContain("nft transactions run in process through libnftables.so.1");
    expect(await lab.table()).not.toBe("");
    const apply = await lab.domainwall(["apply", "--hosts", "api.example", "--backend", "iptables-legacy"], { path: noNft });
    expect(apply.code).toBe(0);
    expect(apply.stderr).toContain("backend iptables-legacy (requested)");
    expect(apply.stderr).toContain("removed the nft policy loaded before");
    expect(await lab.table()).toBe("");
    await enforcing();

    // and the other way: an nft table loaded beside the chains is seen and removed without the binary
    expect(
      (
        await lab.nft(
          ["-f", "-"],
          "table inet domainwall {\n\tchain output {\n\t\ttype filter hook output priority filter; policy accept;\n\t}\n}\n",
        )
      ).code,
    ).toBe(0);
    const status = await lab.domainwall(["status", "--backend", "iptables-legacy"], { path: noNft });
    expect(status.stdout).toContain("TWO domainwall policies are loaded (iptables-legacy and nft)");
    const removed = await lab.domainwall(["remove", "--backend", "iptables-legacy"], { path: noNft });
    expect([removed.code, removed.stderr]).toEqual([0, expect.stringContaining("removed domainwall's rules (iptables-legacy and nft)")]);
    expect(await lab.table()).toBe("");
    expect(await chains()).toEqual([0, 0]);
  });

  test("remove --config FILE is accepted: its backend key is honoured, other keys ignored", async () => {
    const dir = tempDir("dw-config-");
    chmodSync(dir, 0o755);
    writeFileSync(`${dir}/domainwall.toml`, 'backend = "iptables-legacy"\nhosts = ["api.example"]\nports = [3000]\n');
    expect((await lab.domainwall(["apply", "--config", `${dir}/domainwall.toml`])).code).toBe(0);
    expect((await chains()).every((n) => n > 0)).toBe(true);
    // The backend line is a debug detail of read commands (their answer is all they print by default).
    const status = await lab.domainwall(["status", "--config", `${dir}/domainwall.toml`, "--log-level", "debug"]);
    expect([status.code, status.stderr]).toEqual([0, expect.stringContaining("backend iptables-legacy (requested)")]);
    const removed = await lab.domainwall(["remove", "--config", `${dir}/domainwall.toml`, "--log-level", "debug"]);
    expect([removed.code, removed.stderr]).toEqual([0, expect.stringContaining("backend iptables-legacy (requested)")]);
    expect(await chains()).toEqual([0, 0]);
  });
});
