// End-to-end, both backends: per-name ports and protocols, --forward and --refuse-private-answers,
// with the binary (DOMAINWALL_BIN, else the source), the kernel and a real dnsmasq in the lab's
// namespaces. The net namespace answers TCP 80, 443, 8081, 8082 and echoes UDP 8082 on every
// address of 203.0.113.0/24 and 2001:db8:ff::/64.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { createLab, describeNetns, INNER, type Lab } from "../lab/lab.ts";
import { tempDirs } from "../support/temp-dirs.ts";

setDefaultTimeout(120_000);

const ALLOWED = { v4: "203.0.113.30", v6: "2001:db8:ff::30" };
const OTHER = { v4: "203.0.113.99", v6: "2001:db8:ff::99" };
const at = (host: string, port: number) => ({ host, port });
const tempDir = tempDirs();

for (const backend of ["nft", "iptables-legacy"] as const) {
  describeNetns(`ports, --forward and --refuse-private-answers with ${backend}, end to end`, () => {
    let lab: Lab;
    const isNft = backend === "nft";
    // A run directory of its own: apply leaves names.json there (never in the machine's /run/domainwall).
    const runDir = tempDir("dw-run-");
    const dw = (args: string[]) => lab.domainwall(args, { env: { DOMAINWALL_BACKEND: backend, DOMAINWALL_RUN_DIR: runDir } });
    /** What domainwall loaded, as text: nft's table, or both families' filter tables. */
    const loaded = async (): Promise<string> => {
      if (isNft) return lab.table();
      const v4 = await lab.exec("app", ["iptables-legacy-save", "-t", "filter"]);
      const v6 = await lab.exec("app", ["ip6tables-legacy-save", "-t", "filter"]);
      return v4.stdout + v6.stdout;
    };
    beforeAll(async () => {
      lab = await createLab();
      await lab.setRecords({
        "allowed.example": [ALLOWED.v4, ALLOWED.v6],
        "internal.example": ["10.0.0.1"],
        "db.corp.example": ["10.0.0.2"],
      });
    });
    afterEach(async () => {
      await lab.domainwall(["remove", "--backend", backend]);
    });
    afterAll(() => lab.close());

    test("the lab answers every port and protocol when nothing is loaded (the baseline the tests below narrow)", async () => {
      const targets = [ALLOWED.v4, ALLOWED.v6].flatMap((h) => [at(h, 80), at(h, 8081), at(h, 8082)]);
      expect(await lab.canConnect(targets)).toEqual([true, true, true, true, true, true]);
      expect(await lab.probeUdp([at(ALLOWED.v4, 8082), at(ALLOWED.v6, 8082)])).toEqual(["answered", "answered"]);
    });

    test("name:80 reaches port 80 of its addresses and no other port, v4 and v6; status and render show the port set", async () => {
      const result = await dw(["apply", "--hosts", "allowed.example:80"]);
      expect(result.stderr).toContain("applied: 1 name resolved, 0 skipped; 1 IPv4 and 1 IPv6 allowed");
      expect(result.code).toBe(0);
      const targets = [ALLOWED.v4, ALLOWED.v6].flatMap((h) => [at(h, 80), at(h, 8081), at(h, 443)]);
      expect(await lab.canConnect([...targets, at(OTHER.v4, 80), at(OTHER.v6, 80)])).toEqual([
        true,
        false,
        false,
        true,
        false,
        false,
        false,
        false,
      ]);
      expect((await lab.probeUdp([at(ALLOWED.v4, 8082)], 500))[0]).not.toBe("answered");
      const status = await dw(["status"]);
      expect(status.stdout).toContain(isNft ? "set allow_ports_v4: 1 entry" : "set allow_ports_v4 (rules): 1 entry");
      expect(status.stdout).toContain(isNft ? "set allow_ports_v6: 1 entry" : "set allow_ports_v6 (rules): 1 entry");
      const json = JSON.parse((await dw(["status", "--json"])).stdout) as { allowed: unknown[] };
      expect(json.allowed).toEqual([
        { network: ALLOWED.v4, ports: ["80/tcp"], from: "allowlist" },
        { network: ALLOWED.v6, ports: ["80/tcp"], from: "allowlist" },
      ]);
      const allowed = await dw(["explain", "allowed.example:80"]);
      expect([allowed.code, allowed.stdout]).toEqual([
        0,
        `allowed: allowed.example:80: allowed.example is in the allowlist; ${ALLOWED.v4} is allowed by allowed.example:80/tcp; ${ALLOWED.v6} is allowed by allowed.example:80/tcp\n`,
      ]);
      const denied = await dw(["explain", `[${ALLOWED.v6}]:8081`]);
      expect(denied.code).toBe(1);
      expect(denied.stdout).toStartWith(
        `denied: [${ALLOWED.v6}]:8081: ${ALLOWED.v6} is denied: not open on 8081/tcp: the allowlist opens it on 80/tcp only\n`,
      );
      const rendered = await dw(["render", "--hosts", "allowed.example:80"]);
      expect(rendered.stdout).toContain(
        isNft
          ? "203.0.113.30 . tcp . 80, # allowed.example"
          : "# allowed.example\n-A DOMAINWALL-OUTPUT -d 203.0.113.30 -p tcp -m tcp --dport 80 -j ACCEPT",
      );
    });

    test("/udp lets a UDP exchange through and not TCP to the same port", async () => {
      expect((await dw(["apply", "--hosts", "allowed.example:8082/udp"])).code).toBe(0);
      expect(await lab.probeUdp([at(ALLOWED.v4, 8082), at(ALLOWED.v6, 8082)])).toEqual(["answered", "answered"]);
      expect(await lab.canConnect([at(ALLOWED.v4, 8082), at(ALLOWED.v6, 8082)])).toEqual([false, false]);
    });

    test("a range opens its ports and only those", async () => {
      expect((await dw(["apply", "--hosts", "allowed.example:8081-8082"])).code).toBe(0);
      const targets = [ALLOWED.v4, ALLOWED.v6].flatMap((h) => [at(h, 8081), at(h, 8082), at(h, 80), at(h, 443)]);
      expect(await lab.canConnect(targets)).toEqual([true, true, false, false, true, true, false, false]);
    });

    test("a CIDR with a port (IPv4, and IPv6 in brackets) opens that port on its addresses only", async () => {
      expect(
        (await dw(["apply", "--hosts", "allowed.example:8081", "--allow", "203.0.113.64/26:443,[2001:db8:ff::40/124]:443"])).code,
      ).toBe(0);
      const inside = [at("203.0.113.70", 443), at("203.0.113.70", 80), at("2001:db8:ff::41", 443), at("2001:db8:ff::41", 80)];
      const outside = [at("203.0.113.10", 443), at("2001:db8:ff::10", 443)];
      expect(await lab.canConnect([...inside, ...outside])).toEqual([true, false, true, false, false, false]);
    });

    test("a name listed with and without ports opens every port, with a warning", async () => {
      const result = await dw(["apply", "--hosts", "allowed.example:80,allowed.example"]);
      expect(result.code).toBe(0);
      expect(result.stderr).toContain("allowed.example is listed both with ports");
      expect(await lab.canConnect([at(ALLOWED.v4, 80), at(ALLOWED.v4, 8081)])).toEqual([true, true]);
    });

    test("a bad port spec exits 2 naming the entry, and loads nothing", async () => {
      const result = await dw(["apply", "--hosts", "allowed.example:8100-8000"]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('--hosts: "allowed.example:8100-8000" has a bad port: the range 8100-8000 runs backwards');
      expect(await loaded()).not.toContain("DOMAINWALL-OUTPUT -");
      expect(await lab.table()).toBe("");
    });

    test(`--forward: a namespace routed through this one (${INNER.inner}) reaches unlisted addresses without it (with a warning), not with it`, async () => {
      await lab.addInner();
      const unlisted = at(OTHER.v4, 80);
      const listed = at(ALLOWED.v4, 80);
      const without = await dw(["apply", "--hosts", "allowed.example:80"]);
      expect(without.code).toBe(0);
      expect(without.stderr).toContain("net.ipv4.ip_forward=1: traffic forwarded through this machine (containers, VMs) is not filtered");
      expect(await lab.probeInner([unlisted, listed])).toEqual(["connected", "connected"]);
      const forwarded = await dw(["apply", "--hosts", "allowed.example:80", "--forward"]);
      expect(forwarded.code).toBe(0);
      expect(forwarded.stderr).not.toContain("is not filtered");
      expect(await lab.probeInner([unlisted, listed, at(ALLOWED.v4, 8081)])).toEqual(["timeout", "connected", "timeout"]);
      // The firewalled namespace's own traffic is filtered as before.
      expect(await lab.canConnect([unlisted, listed])).toEqual([false, true]);
    });

    test("--refuse-private-answers: a listed name answering 10.0.0.1 is refused; under --private-domains it is admitted", async () => {
      // Only the loaded ruleset is checked: no traffic is sent to these addresses.
      const result = await dw([
        "apply",
        "--hosts",
        "internal.example,db.corp.example,allowed.example",
        "--refuse-private-answers",
        "--private-domains",
        "corp.example",
      ]);
      expect(result.code).toBe(0);
      expect(result.stderr).toContain("internal.example: not allowing 10.0.0.1 (private, RFC 1918) from DNS (--refuse-private-answers)");
      expect(result.stderr).not.toContain("10.0.0.2 (");
      const rules = await loaded();
      expect(rules).toContain(isNft ? "10.0.0.2" : "-d 10.0.0.2/32 -j ACCEPT");
      expect(rules).not.toContain("10.0.0.1");
      expect(rules).toContain(ALLOWED.v4);
      const plain = await dw(["apply", "--hosts", "internal.example,allowed.example"]);
      expect(plain.code).toBe(0);
      expect(await loaded()).toContain("10.0.0.1");
    });
  });
}
