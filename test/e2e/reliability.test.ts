// End-to-end, issue 12: what the resolver answers and what the app's getaddrinfo would get. The
// binary (DOMAINWALL_BIN, else the source) against the kernel and a real dnsmasq in lab namespaces.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { ADDR, createLab, describeNetns, type Lab } from "../lab/lab.ts";

setDefaultTimeout(120_000);

const at = (host: string, port = 80) => ({ host, port });
const RESOLV = `nameserver ${ADDR.dnsV4}\nnameserver ${ADDR.dnsV6}\n`;

/** The lab namespace's /etc/hosts (bind-mounted by `ip netns exec`); removed after each test. */
const hostsFileOf = (lab: Lab) => `${dirname(lab.resolvConf)}/hosts`;

describeNetns("names resolve as the app's getaddrinfo would (issue 12, items 3 and 5)", () => {
  let lab: Lab;
  let dnsStopped = false;
  beforeAll(async () => {
    lab = await createLab();
    await lab.setRecords({
      "allowed.example": ["203.0.113.1", "2001:db8:ff::1"],
      "allowed.example.wild.example": ["203.0.113.66", "2001:db8:ff::66"],
      "v4only.example": ["203.0.113.40"],
      "pinned.example": ["203.0.113.51", "2001:db8:ff::51"],
    });
  });
  afterEach(async () => {
    writeFileSync(lab.resolvConf, RESOLV);
    rmSync(hostsFileOf(lab), { force: true });
    if (dnsStopped) await lab.startDns();
    dnsStopped = false;
    await lab.domainwall(["remove", "--backend", "nft"]);
  });
  afterAll(() => lab.close());

  const apply = (...args: string[]) => lab.domainwall(["apply", "--backend", "nft", ...args]);
  const getaddrinfo = async (name: string) => (await lab.exec("app", ["getent", "ahostsv4", name])).stdout.split("\n")[0]?.split(/\s+/)[0];

  test.each(["127.0.0.53", "127.0.0.1", "::1"])(
    "a loopback stub (%s) without known upstreams: exit 2 asking for --dns-servers, nothing loaded, either backend (item 4)",
    async (stub) => {
      writeFileSync(lab.resolvConf, `nameserver ${stub}\n`);
      for (const backend of ["nft", "iptables-legacy"]) {
        const result = await lab.domainwall(["apply", "--backend", backend, "--hosts", "allowed.example"]);
        expect([result.code, result.stderr]).toEqual([2, expect.stringContaining("pass --dns-servers with the stub's upstream servers")]);
      }
      expect(await lab.table()).toBe("");
      expect((await lab.exec("app", ["iptables-legacy-save", "-t", "filter"])).stdout).not.toContain("DOMAINWALL");
    },
  );

  test("a trailing dot makes a name absolute: the search list is not applied (item 3)", async () => {
    writeFileSync(lab.resolvConf, `search wild.example\noptions ndots:5\n${RESOLV}`);
    expect(await getaddrinfo("allowed.example.")).toBe("203.0.113.1");
    const result = await apply("--hosts", "allowed.example.");
    expect(result.stderr).toContain("applied: 1 name resolved");
    expect(result.code).toBe(0);
    const targets = ["203.0.113.1", "2001:db8:ff::1", "203.0.113.66", "2001:db8:ff::66"].map((h) => at(h));
    expect(await lab.canConnect(targets)).toEqual([true, true, false, false]);
  });

  test("without a trailing dot the search list and ndots apply, as for the app (item 3)", async () => {
    writeFileSync(lab.resolvConf, `search wild.example\noptions ndots:5\n${RESOLV}`);
    expect(await getaddrinfo("allowed.example")).toBe("203.0.113.66");
    expect((await apply("--hosts", "allowed.example")).code).toBe(0);
    const targets = ["203.0.113.66", "2001:db8:ff::66", "203.0.113.1", "2001:db8:ff::1"].map((h) => at(h));
    expect(await lab.canConnect(targets)).toEqual([true, true, false, false]);
  });

  test("a name with only A records, its AAAA answered NODATA (a real resolver), resolves", async () => {
    const result = await apply("--hosts", "v4only.example");
    expect(result.code).toBe(0);
    expect(await lab.canConnect([at("203.0.113.40"), at("203.0.113.41")])).toEqual([true, false]);
  });

  test("a name listed in /etc/hosts uses /etc/hosts only, as glibc does: no AAAA or other A from DNS (item 5)", async () => {
    writeFileSync(hostsFileOf(lab), "127.0.0.1 localhost\n203.0.113.50 pinned.example\n");
    expect(await getaddrinfo("pinned.example")).toBe("203.0.113.50");
    const result = await apply("--hosts", "pinned.example");
    expect(result.code).toBe(0);
    expect(await lab.canConnect([at("203.0.113.50"), at("203.0.113.51"), at("2001:db8:ff::51")])).toEqual([true, false, false]);
  });

  test("--hosts localhost with only 127.0.0.1 in /etc/hosts and DNS unreachable: resolved (loopback is not opened from a lookup), not failed (item 5)", async () => {
    writeFileSync(hostsFileOf(lab), "127.0.0.1 localhost\n");
    await lab.stopDns();
    dnsStopped = true;
    const result = await apply("--hosts", "localhost");
    // Loopback is always allowed: nothing to warn about; the name allows nothing, so it counts as skipped.
    expect(result.stderr).not.toContain("127.0.0.1");
    expect(result.stderr).toContain("applied: 0 names resolved, 1 skipped");
    expect(result.stderr).not.toContain("could not resolve");
    expect(result.code).toBe(0);
  });
});

describeNetns("a resolver that refuses the record type it has no data for (issue 12, item 5)", () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await createLab({ refuseUnknown: true });
    await lab.setRecords({ "v4only.example": ["203.0.113.40"] });
  });
  afterEach(() => lab.domainwall(["remove", "--backend", "nft"]));
  afterAll(() => lab.close());

  test("A answers, AAAA is REFUSED: the name is resolved with its IPv4 address and a warning naming AAAA", async () => {
    const result = await lab.domainwall(["apply", "--backend", "nft", "--hosts", "v4only.example"]);
    expect(result.stderr).toContain("v4only.example: AAAA lookup failed");
    expect(result.stderr).toContain("allowing its IPv4 addresses only");
    expect(result.stderr).toContain("applied: 1 name resolved");
    expect(result.code).toBe(0);
    expect(await lab.canConnect([at("203.0.113.40"), at("203.0.113.41")])).toEqual([true, false]);
  });

  test("every family refused: the name fails (exit 1, nothing loaded)", async () => {
    const result = await lab.domainwall(["apply", "--backend", "nft", "--hosts", "unknown.example"]);
    expect(result.stderr).toContain("could not resolve unknown.example");
    expect(result.code).toBe(1);
    expect(await lab.table()).toBe("");
  });
});
