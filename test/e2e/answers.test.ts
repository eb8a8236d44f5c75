// End-to-end, with the binary (DOMAINWALL_BIN, else the source), the kernel's netfilter and a real
// DNS server in namespaces the lab creates: which DNS answers `apply` lets into the allow sets.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { createLab, describeNetns, killAndRemove, type Lab } from "../lab/lab.ts";
import { POOL_V4, POOL_V6 } from "../lab/cdn-dns.ts";
import { tempDirs } from "../support/temp-dirs.ts";

setDefaultTimeout(120_000);
const tempDir = tempDirs();

describeNetns("--refuse-private-answers: this namespace's own addresses, on-link networks and gateways (nft)", () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await createLab();
    // app is 198.51.100.1/24 (gateway 198.51.100.2, also the resolver), and here also 192.0.2.50/28 on the same link.
    const veth = (await lab.exec("app", ["ip", "-o", "-4", "addr", "show"])).stdout.match(/^\d+: (\S+)\s+inet 198\.51\.100\.1\//m)?.[1];
    expect(veth).toBeDefined();
    expect((await lab.exec("app", ["ip", "addr", "add", "192.0.2.50/28", "dev", veth!])).code).toBe(0);
    await lab.setRecords({
      "own.example": ["198.51.100.1"],
      "gateway.example": ["198.51.100.2"],
      "link.example": ["198.51.100.77"],
      "dummy.example": ["192.0.2.50", "192.0.2.52"],
      "public.example": ["203.0.113.10"],
    });
  });
  afterEach(() => killAndRemove(lab, [], { DOMAINWALL_BACKEND: "nft" }));
  afterAll(() => lab.close());

  test("with the resolver elsewhere (--dns-servers on IPv6), the pod's own address, its gateway and its on-link networks are refused, naming each", async () => {
    const result = await lab.domainwall(
      [
        "apply",
        "--backend",
        "nft",
        "--refuse-private-answers",
        "--dns-servers",
        "2001:db8:1::2",
        "--hosts",
        "own.example,gateway.example,link.example,dummy.example,public.example",
      ],
      { env: { DOMAINWALL_RUN_DIR: `${tempDir("dw-answers-")}/run` } },
    );
    expect(result.code).toBe(0);
    for (const [name, address, what] of [
      ["own.example", "198.51.100.1", "address 198.51.100.1"],
      ["gateway.example", "198.51.100.2", "gateway 198.51.100.2"],
      ["link.example", "198.51.100.77", "on-link network 198.51.100.0/24"],
      ["dummy.example", "192.0.2.50", "address 192.0.2.50"],
      ["dummy.example", "192.0.2.52", "on-link network 192.0.2.48/28"],
    ])
      expect(result.stderr).toContain(`${name}: not allowing ${address} (this namespace's ${what}) from DNS (--refuse-private-answers)`);
    const table = await lab.table();
    expect(table).toContain("203.0.113.10");
    expect(table).not.toMatch(/198\.51\.100\.|192\.0\.2\.5/);
  });
});

describeNetns("apply admits only the addresses on the CNAME chain from the name asked (nft)", () => {
  let lab: Lab;
  beforeAll(async () => {
    // stray.example is a CNAME to target.example; its answers also carry records for a name never asked.
    lab = await createLab({
      cdn: {
        names: ["target.example"],
        cnames: { "stray.example": "target.example" },
        strays: {
          "stray.example": [
            { name: "other.unlisted.example", type: "A", address: "203.0.113.250" },
            { name: "other.unlisted.example", type: "AAAA", address: "2001:db8:ff::250" },
          ],
        },
      },
    });
  });
  afterEach(() => killAndRemove(lab, [], { DOMAINWALL_BACKEND: "nft" }));
  afterAll(() => lab.close());

  test("a stray record in the answer for stray.example is not allowed; the chain's addresses are", async () => {
    // The server does send it: a resolver library that takes every A record of the answer would allow it.
    const dig = (await lab.exec("app", ["dig", "+noall", "+answer", "stray.example"])).stdout;
    expect(dig).toContain("other.unlisted.example.");
    const result = await lab.domainwall(["apply", "--backend", "nft", "--hosts", "stray.example"], {
      env: { DOMAINWALL_RUN_DIR: `${tempDir("dw-stray-")}/run` },
    });
    expect(result.code).toBe(0);
    const table = await lab.table();
    expect(table).not.toContain("203.0.113.250");
    expect(table).not.toContain("2001:db8:ff::250");
    const v4 = table.match(/203\.0\.113\.\d+/g) ?? [];
    const v6 = table.match(/2001:db8:ff::[0-9a-f]+/g) ?? [];
    expect(v4.length).toBe(2);
    expect(v6.length).toBe(2);
    for (const address of v4) expect(POOL_V4).toContain(address);
    for (const address of v6) expect(POOL_V6).toContain(address);
  });
});
