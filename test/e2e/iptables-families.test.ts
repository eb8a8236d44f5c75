// End-to-end: iptables-legacy commits IPv4 and IPv6 separately. An apply killed between the two
// commits leaves IPv4 new and IPv6 old; `status` must say so (exit 3), not "loaded". The binary
// (DOMAINWALL_BIN, else the source) against the kernel in lab namespaces.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { createLab, describeNetns, type Lab } from "../lab/lab.ts";
import { tempDirs } from "../support/temp-dirs.ts";

const tempDir = tempDirs();

setDefaultTimeout(120_000);

describeNetns("iptables-legacy: an apply interrupted between the two families", () => {
  let lab: Lab;
  /** A PATH whose ip6tables-legacy-restore SIGKILLs its caller (domainwall) instead of committing. */
  let killedAtIpv6: string;
  beforeAll(async () => {
    lab = await createLab();
    await lab.setRecords({ "a.example": ["203.0.113.10", "2001:db8:ff::10"], "b.example": ["203.0.113.20", "2001:db8:ff::20"] });
    killedAtIpv6 = tempDir("dw-killed-at-v6-");
    chmodSync(killedAtIpv6, 0o755);
    for (const tool of ["iptables-legacy-save", "ip6tables-legacy-save", "iptables-legacy-restore", "nft"]) {
      writeFileSync(`${killedAtIpv6}/${tool}`, `#!/bin/sh\nexec ${Bun.which(tool)} "$@"\n`);
      chmodSync(`${killedAtIpv6}/${tool}`, 0o755);
    }
    writeFileSync(`${killedAtIpv6}/ip6tables-legacy-restore`, "#!/bin/sh\nkill -KILL $PPID\nsleep 5\n");
    chmodSync(`${killedAtIpv6}/ip6tables-legacy-restore`, 0o755);
  });
  afterEach(() => lab.domainwall(["remove", "--backend", "iptables-legacy"]));
  afterAll(() => lab.close());

  const apply = (hosts: string, path?: string) =>
    lab.domainwall(["apply", "--backend", "iptables-legacy", "--hosts", hosts], path === undefined ? {} : { path });
  const status = () => lab.domainwall(["status", "--backend", "iptables-legacy"]);

  test("IPv4 new, IPv6 old: status exits 3 saying the families' policies differ; a full apply makes them one again", async () => {
    expect((await apply("a.example")).code).toBe(0);
    expect((await status()).code).toBe(0);
    const killed = await apply("b.example", killedAtIpv6);
    expect(killed.code).toBe(137); // SIGKILL, after the IPv4 commit
    const v4 = (await lab.exec("app", ["iptables-legacy-save", "-t", "filter"])).stdout;
    const v6 = (await lab.exec("app", ["ip6tables-legacy-save", "-t", "filter"])).stdout;
    expect([v4.includes("203.0.113.20"), v6.includes("2001:db8:ff::20"), v6.includes("2001:db8:ff::10")]).toEqual([true, false, true]);
    const split = await status();
    expect([split.code, split.stdout]).toEqual([3, expect.stringContaining("IPv4 and IPv6 policies differ")]);
    expect(split.stdout).toContain("NOT ENFORCING");
    expect((await apply("b.example")).code).toBe(0);
    expect((await status()).code).toBe(0);
  });

  test("a first apply killed after IPv4: IPv6 has no policy of ours, and status says the families differ", async () => {
    const killed = await apply("a.example", killedAtIpv6);
    expect(killed.code).toBe(137);
    const split = await status();
    expect([split.code, split.stdout]).toEqual([3, expect.stringContaining("IPv4 and IPv6 policies differ")]);
  });
});
