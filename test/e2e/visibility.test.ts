// End-to-end: what was blocked and why (status, explain), audit mode and suggest, with the binary
// (DOMAINWALL_BIN, else the source) against the kernel's netfilter and a real dnsmasq, in namespaces
// the lab creates and removes. nft only: iptables-legacy records no destinations (its status is
// covered in apply.test.ts and the unit tests).
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { ADDR, createLab, describeNetns, type Lab } from "../lab/lab.ts";
import { tempDirs } from "../support/temp-dirs.ts";

setDefaultTimeout(120_000);
const tempDir = tempDirs();
const at = (host: string, port = 80) => ({ host, port });

interface StatusJson {
  enforcing: boolean;
  denied:
    | {
        address: string;
        protocol: string;
        port: number;
        direction: string;
        packets: number;
        lastSeenSecondsAgo?: number;
        names: string[];
      }[]
    | null;
}

describeNetns("when something is blocked (nft), end to end", () => {
  let lab: Lab;
  let runDir: string;
  const dw = (args: string[]) => lab.domainwall(args, { env: { DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: runDir } });
  const status = async (): Promise<StatusJson> => {
    const result = await dw(["status", "--json"]);
    expect(result.code).toBe(0);
    return JSON.parse(result.stdout) as StatusJson;
  };
  beforeAll(async () => {
    lab = await createLab();
    await lab.setRecords({ "api.example": ["203.0.113.10"], "mirror.example": ["203.0.113.20"] });
  });
  afterEach(async () => {
    await dw(["remove"]);
  });
  afterAll(() => lab.close());

  test("after a blocked attempt, status --json and status list its address, protocol and port, after apply has exited", async () => {
    runDir = tempDir("dw-run-");
    expect((await dw(["apply", "--hosts", "api.example"])).code).toBe(0); // the process is gone, like an initContainer
    expect(await lab.canConnect([at("203.0.113.10"), at("203.0.113.20")], 500)).toEqual([true, false]);
    const json = await status();
    expect(json.enforcing).toBe(true);
    const denied = json.denied?.find((d) => d.address === "203.0.113.20");
    expect(denied).toMatchObject({ protocol: "tcp", port: 80, direction: "out" });
    expect(denied?.packets).toBeGreaterThanOrEqual(1);
    expect(denied?.lastSeenSecondsAgo).toBeGreaterThanOrEqual(0);
    expect(json.denied?.some((d) => d.address === "203.0.113.10")).toBe(false);
    const text = await dw(["status"]);
    expect(text.stdout).toMatch(/\n {2}203\.0\.113\.20 tcp\/80 out: \d+ packets?, last \d+s ago\n/);
    console.log(`status after a blocked attempt:\n${text.stdout}`);
  });

  test("explain: an allowed name, an allowed network with a port, a denied address", async () => {
    runDir = tempDir("dw-run-");
    expect((await dw(["apply", "--hosts", "api.example", "--allow", "198.51.100.128/25"])).code).toBe(0);
    const name = await dw(["explain", "api.example:443"]);
    expect([name.code, name.stdout]).toEqual([
      0,
      "allowed: api.example:443: api.example is in the allowlist; 203.0.113.10 is allowed by the name api.example (every port)\n",
    ]);
    const network = await dw(["explain", "198.51.100.200:8443"]);
    expect([network.code, network.stdout]).toEqual([
      0,
      "allowed: 198.51.100.200:8443: 198.51.100.200 is allowed by the network 198.51.100.128/25 (every port)\n",
    ]);
    await lab.canConnect([at("203.0.113.20")], 300);
    const denied = await dw(["explain", "203.0.113.20:80"]);
    expect(denied.code).toBe(1);
    expect(denied.stdout).toStartWith(
      "denied: 203.0.113.20:80: 203.0.113.20 is denied: not in the allowlist\n  recorded as denied: 203.0.113.20 tcp/80",
    );
    const resolver = await dw(["explain", `${ADDR.dnsV4}:53/udp`]);
    expect(resolver.code).toBe(0);
    expect((await dw(["explain", "not a destination"])).code).toBe(2);
  });

  test("--audit: an unlisted destination connects and is recorded; suggest lists it", async () => {
    runDir = tempDir("dw-run-");
    const applied = await dw(["apply", "--hosts", "api.example", "--audit"]);
    expect(applied.code).toBe(0);
    expect(applied.stderr).toContain("audit mode: the firewall is NOT enforcing");
    expect(await lab.canConnect([at("203.0.113.20"), at("203.0.113.10")], 1000)).toEqual([true, true]);
    const json = await status();
    expect(json.enforcing).toBe(false);
    expect(json.denied?.map((d) => `${d.address} ${d.protocol}/${d.port} ${d.direction}`)).toEqual(["203.0.113.20 tcp/80 out"]);
    expect((await dw(["status"])).stdout).toContain("WARNING: audit mode: the firewall is NOT enforcing");
    const suggested = await dw(["suggest"]);
    expect(suggested.code).toBe(0);
    expect(suggested.stdout).toContain("\nhosts_csv=203.0.113.20:80/tcp\n");
    expect(suggested.stdout).toContain('\nhosts = [\n  "203.0.113.20:80/tcp", # ');
  });

  test("loading the suggested list without --audit allows exactly that traffic", async () => {
    runDir = tempDir("dw-run-");
    expect((await dw(["apply", "--hosts", "api.example", "--audit"])).code).toBe(0);
    await lab.canConnect([at("203.0.113.20")], 1000);
    const line = (await dw(["suggest"])).stdout.split("\n").find((l) => l.startsWith("hosts_csv="));
    expect(
      (
        await lab.domainwall(["apply"], {
          env: { DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: runDir, hosts_csv: line!.slice("hosts_csv=".length) },
        })
      ).code,
    ).toBe(0);
    expect(await lab.canConnect([at("203.0.113.20", 80), at("203.0.113.20", 443), at("203.0.113.10")], 500)).toEqual([true, false, false]);
  });

  test("the recording sets stay at their size under a flood of distinct denied destinations; the packets past it are still dropped and counted", async () => {
    runDir = tempDir("dw-run-");
    expect((await dw(["apply", "--hosts", "api.example"])).code).toBe(0);
    const flood = await lab.exec("app", [process.execPath, `${import.meta.dir}/../lab/probe.ts`, "udp-flood", "0", "6000"]);
    expect(flood.stdout.trim()).toBe("6000");
    const listed = await lab.nft(["-j", "list", "set", "inet", "domainwall", "denied_out_v4"]);
    const set = (JSON.parse(listed.stdout) as { nftables: { set?: { size: number; elem?: unknown[] } }[] }).nftables.find(
      (o) => o.set,
    )?.set;
    expect(set?.size).toBe(4096);
    expect(set?.elem?.length).toBe(4096);
    const counter = await lab.nft(["-j", "list", "counter", "inet", "domainwall", "output_dropped"]);
    const packets = (JSON.parse(counter.stdout) as { nftables: { counter?: { packets: number } }[] }).nftables.find((o) => o.counter)
      ?.counter?.packets;
    // (A few sends of the 6,000 can fail in the socket before reaching netfilter.)
    expect(packets).toBeGreaterThan(5000);
    // No process of ours ran during the flood (apply had exited): the record lives in the kernel only.
    expect((await status()).denied).toHaveLength(4096);
  });
});
