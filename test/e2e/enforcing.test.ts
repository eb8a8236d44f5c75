// End-to-end, issue 12 item 2: `status` tells "loaded" from "enforcing"; apply keeps our jumps
// first. The binary (DOMAINWALL_BIN, else the source) against the kernel in lab namespaces.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { createLab, describeNetns, type Lab } from "../lab/lab.ts";

setDefaultTimeout(120_000);

describeNetns("status: loaded but not enforcing (issue 12, item 2)", () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await createLab();
    await lab.setRecords({ "api.example": ["203.0.113.1", "2001:db8:ff::1"] });
  });
  afterEach(async () => {
    await lab.domainwall(["remove", "--backend", "iptables-legacy"]);
    await lab.domainwall(["remove", "--backend", "nft"]);
    for (const tool of ["iptables-legacy", "ip6tables-legacy"]) await lab.exec("app", [tool, "-F", "OUTPUT"]);
  });
  afterAll(() => lab.close());

  const unlisted = { host: "203.0.113.99", port: 80 };
  const firstOutputRule = async (tool: string) =>
    (await lab.exec("app", [`${tool}-save`, "-t", "filter"])).stdout.split("\n").find((l) => l.startsWith("-A OUTPUT "));

  test("iptables: a deleted jump, or a foreign ACCEPT above ours, is 'not enforcing' (exit 3); a re-apply puts the jump back first", async () => {
    const apply = () => lab.domainwall(["apply", "--backend", "iptables-legacy", "--hosts", "api.example"]);
    const status = () => lab.domainwall(["status", "--backend", "iptables-legacy"]);
    expect((await apply()).code).toBe(0);
    expect((await status()).code).toBe(0);

    await lab.exec("app", ["iptables-legacy", "-D", "OUTPUT", "-j", "DOMAINWALL-OUTPUT"]);
    expect(await lab.canConnect([unlisted])).toEqual([true]); // what status must not call loaded-and-fine
    const missing = await status();
    expect([missing.code, missing.stdout]).toEqual([3, expect.stringContaining("NOT ENFORCING")]);
    expect(missing.stdout).toContain("IPv4: OUTPUT does not jump to DOMAINWALL-OUTPUT");

    expect((await apply()).code).toBe(0);
    await lab.exec("app", ["ip6tables-legacy", "-I", "OUTPUT", "1", "-j", "ACCEPT"]);
    const shadowed = await status();
    expect([shadowed.code, shadowed.stdout]).toEqual([
      3,
      expect.stringContaining("IPv6: a rule in OUTPUT comes before the jump to DOMAINWALL-OUTPUT and decides first"),
    ]);

    expect((await apply()).code).toBe(0);
    expect(await firstOutputRule("ip6tables-legacy")).toBe("-A OUTPUT -j DOMAINWALL-OUTPUT");
    expect(await firstOutputRule("iptables-legacy")).toBe("-A OUTPUT -j DOMAINWALL-OUTPUT");
    expect((await lab.exec("app", ["ip6tables-legacy-save", "-t", "filter"])).stdout).toContain("-A OUTPUT -j ACCEPT"); // theirs stays, below ours
    expect((await status()).code).toBe(0);
    expect(await lab.canConnect([unlisted, { host: "2001:db8:ff::99", port: 80 }])).toEqual([false, false]);
  });

  test("nft: our chain without its hook is 'not enforcing' (exit 3); a re-apply restores it", async () => {
    expect((await lab.domainwall(["apply", "--backend", "nft", "--hosts", "api.example", "--ports", "3000"])).code).toBe(0);
    expect((await lab.nft(["delete", "chain", "inet", "domainwall", "output"])).code).toBe(0);
    const status = await lab.domainwall(["status", "--backend", "nft"]);
    expect([status.code, status.stdout]).toEqual([3, expect.stringContaining("nft: the output chain of table inet domainwall is missing")]);
    expect((await lab.domainwall(["apply", "--backend", "nft", "--hosts", "api.example", "--ports", "3000"])).code).toBe(0);
    expect((await lab.domainwall(["status", "--backend", "nft"])).code).toBe(0);
  });
});
