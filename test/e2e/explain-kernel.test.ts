// End-to-end: explain and status answer what the kernel enforces, checked against a real connect
// from the lab's app namespace with the binary (DOMAINWALL_BIN, else the source): DNS-proxy
// admissions on the ports of the entry that admitted them, an address shared by an every-port name
// and a name with ports, the namespace's own addresses, IPv4-mapped addresses and names written
// with a trailing dot in upper case. The net namespace answers TCP on 80, 443, 8081 and 8082 and
// echoes UDP on 8082 for every address of 203.0.113.0/24 and 2001:db8:ff::/64.
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { ADDR, createLab, describeNetns, killAndRemove, type Lab, until } from "../lab/lab.ts";

setDefaultTimeout(120_000);

const RECORDS = {
  "ported.x": ["203.0.113.60", "2001:db8:ff::60"],
  "a.pw.x": ["203.0.113.61"],
  "allowed.x": ["203.0.113.62"],
  "udp.x": ["203.0.113.63"],
  "example.com": ["2001:db8:ff::10"],
  "api.example.com": ["2001:db8:ff::10", "2001:db8:ff::11"],
};

interface ExplainJson {
  allowed: boolean;
  addresses: { address: string; sentAs?: string; by: { kind: string; ports: unknown; set?: string; name?: string }[] }[];
}

describeNetns("explain and status answer what the kernel enforces (nft), end to end", () => {
  let lab: Lab;
  const running: Bun.Subprocess[] = [];
  const env = () => ({ DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: `${lab.dir}/run` });
  beforeAll(async () => {
    lab = await createLab();
    await lab.setRecords(RECORDS);
  });
  afterEach(async () => {
    await killAndRemove(lab, running, env());
  });
  afterAll(() => lab.close());

  const explain = (target: string, json = false) => lab.domainwall(["explain", target, ...(json ? ["--json"] : [])], { env: env() });
  /** explain's exit code (0 allowed, 1 denied) beside what a TCP connect (or a UDP echo) from app does. */
  const agrees = async (target: string, host: string, port: number, udp = false) => {
    const answer = await explain(target);
    const reached = udp
      ? (await lab.probeUdp([{ host, port }], 800))[0] === "answered"
      : (await lab.probe([{ host, port }], 800))[0] === "connected";
    return { target, explain: answer.code, reached, says: answer.stdout.split("\n")[0] };
  };
  const startProxy = async () => {
    const ready = `${lab.dir}/ready-${Math.random().toString(36).slice(2)}`;
    const child = lab.spawnDomainwall(
      ["watch", "--dns-proxy", "--hosts", "ported.x:443,*.pw.x:8081,allowed.x,udp.x:8082/udp", "--ready-file", ready],
      { env: env() },
    );
    running.push(child);
    await until("the ready file", 30, async () => (await Bun.file(ready).exists()) || child.exitCode !== null);
    if (child.exitCode !== null) throw new Error(`watch exited ${child.exitCode}: ${await new Response(child.stderr).text()}`);
  };
  const dig = async (name: string, type = "A") =>
    JSON.parse(
      (await lab.exec("app", [process.execPath, `${import.meta.dir}/../lab/dig.ts`, ADDR.dnsV4, name, type, "udp", "53"])).stdout,
    ) as {
      rcode?: string;
    };

  describe("under watch --dns-proxy", () => {
    test("an admission is open on the ports of the entry that admitted it only, and explain exits 1 for the others (names, addresses, IPv6, udp, a wildcard)", async () => {
      await startProxy();
      for (const [name, type] of [
        ["ported.x", "A"],
        ["ported.x", "AAAA"],
        ["a.pw.x", "A"],
        ["allowed.x", "A"],
        ["udp.x", "A"],
      ] as const)
        expect((await dig(name, type)).rcode).toBe("NOERROR");
      const rows = [
        await agrees("ported.x:80", "203.0.113.60", 80),
        await agrees("ported.x:443", "203.0.113.60", 443),
        await agrees("203.0.113.60:80", "203.0.113.60", 80),
        await agrees("203.0.113.60:443", "203.0.113.60", 443),
        await agrees("[2001:db8:ff::60]:80", "2001:db8:ff::60", 80),
        await agrees("[2001:db8:ff::60]:443", "2001:db8:ff::60", 443),
        await agrees("a.pw.x:80", "203.0.113.61", 80),
        await agrees("a.pw.x:8081", "203.0.113.61", 8081),
        await agrees("b.pw.x:443", "203.0.113.61", 443),
        await agrees("203.0.113.61:443", "203.0.113.61", 443),
        await agrees("udp.x:8082", "203.0.113.63", 8082),
        await agrees("udp.x:8082/udp", "203.0.113.63", 8082, true),
        await agrees("203.0.113.63:8082/udp", "203.0.113.63", 8082, true),
        await agrees("allowed.x:8082", "203.0.113.62", 8082),
      ];
      console.log(
        `explain-kernel e2e, proxy:\n${rows.map((r) => `${r.target}: exit ${r.explain}, reached ${r.reached}: ${r.says}`).join("\n")}`,
      );
      for (const row of rows)
        expect({ target: row.target, explain: row.explain }).toEqual({ target: row.target, explain: row.reached ? 0 : 1 });
      expect(rows.map((r) => r.reached)).toEqual([
        false,
        true,
        false,
        true,
        false,
        true,
        false,
        true,
        false,
        false,
        false,
        true,
        true,
        true,
      ]);
      // UDP to 443 of an address admitted for 443/tcp: the kernel drops the datagram at output (EPERM) and explain exits 1.
      const udp443 = await explain("ported.x:443/udp");
      expect([udp443.code, (await lab.probeUdp([{ host: "203.0.113.60", port: 443 }], 500))[0]]).toEqual([1, "error:EPERM"]);
      expect([(await explain("203.0.113.63:8082/udp")).code, (await lab.probeUdp([{ host: "203.0.113.63", port: 8082 }], 800))[0]]).toEqual(
        [0, "answered"],
      );
      const json = JSON.parse((await explain("203.0.113.60:443", true)).stdout) as ExplainJson;
      expect(json.addresses[0]?.by).toMatchObject([
        { kind: "proxy", set: "proxy_v4_tcp443", ports: [{ protocol: "tcp", first: 443, last: 443 }] },
      ]);
      const denied = JSON.parse((await explain("ported.x:80", true)).stdout) as ExplainJson & { summary: string };
      expect(denied.allowed).toBe(false);
      expect(JSON.stringify(denied)).not.toContain('"ports":"all"');
    });

    test("local addresses, IPv4-mapped addresses and ALLOWED.X. are answered as a connect goes", async () => {
      await startProxy();
      const app = JSON.parse(
        (await lab.exec("app", [process.execPath, `${import.meta.dir}/../lab/resolve-connect.ts`, "ALLOWED.X.", "1", "80"])).stdout,
      ) as { connected: number };
      expect(app.connected).toBe(1);
      expect((await dig("ported.x")).rcode).toBe("NOERROR");
      const rows = [
        await agrees(`${ADDR.appV4}:3000`, ADDR.appV4, 3000),
        await agrees("127.0.0.1:3000", "127.0.0.1", 3000),
        await agrees(`[${ADDR.appV6}]:3000`, ADDR.appV6, 3000),
        await agrees("[::1]:3000", "::1", 3000),
        await agrees("[::ffff:203.0.113.62]:80", "::ffff:203.0.113.62", 80),
        await agrees("[::ffff:203.0.113.60]:80", "::ffff:203.0.113.60", 80),
        await agrees("[::ffff:203.0.113.60]:443", "::ffff:203.0.113.60", 443),
        await agrees("[::ffff:127.0.0.1]:3000", "::ffff:127.0.0.1", 3000),
        await agrees("ALLOWED.X.:80", "203.0.113.62", 80),
        await agrees("PORTED.X.:80", "203.0.113.60", 80),
      ];
      console.log(
        `explain-kernel e2e, local/mapped/names:\n${rows.map((r) => `${r.target}: exit ${r.explain}, reached ${r.reached}: ${r.says}`).join("\n")}`,
      );
      for (const row of rows)
        expect({ target: row.target, explain: row.explain }).toEqual({ target: row.target, explain: row.reached ? 0 : 1 });
      expect(rows.map((r) => r.reached)).toEqual([true, true, true, true, true, false, true, true, true, false]);
      const mapped = JSON.parse((await explain("[::ffff:203.0.113.62]:80", true)).stdout) as ExplainJson;
      expect(mapped.addresses[0]).toMatchObject({ sentAs: "203.0.113.62" });
    });

    test("status --json: dnsProxy with the admitted elements by set, admissions in allowed, denied[].names from the watch", async () => {
      await startProxy();
      expect((await dig("ported.x")).rcode).toBe("NOERROR");
      expect((await dig("allowed.x")).rcode).toBe("NOERROR");
      expect(await lab.canConnect([{ host: "203.0.113.60", port: 80 }], 300)).toEqual([false]);
      interface StatusJson {
        dnsProxy: {
          port: number;
          group: number;
          running: boolean;
          sets: { name: string; ports: unknown; elements: { address: string; names: string[]; expiresInSeconds: number }[] }[];
        } | null;
        allowed: { network: string; ports: unknown; from: string; names?: string[] }[];
        denied: { address: string; port: number; names: string[] }[] | null;
      }
      const status = async () => JSON.parse((await lab.domainwall(["status", "--json"], { env: env() })).stdout) as StatusJson;
      // The watch writes the names it admitted for every few seconds; the kernel has the elements at once.
      await until("the watch's state names the admissions", 15, async () =>
        ((await status()).denied ?? []).some((d) => d.address === "203.0.113.60" && d.names.includes("ported.x")),
      );
      const json = await status();
      expect(json.dnsProxy).toMatchObject({ running: true, port: expect.any(Number), group: expect.any(Number) });
      const sets = Object.fromEntries((json.dnsProxy?.sets ?? []).map((s) => [s.name, s]));
      expect(sets.proxy_v4_tcp443).toMatchObject({ ports: ["443/tcp"], elements: [{ address: "203.0.113.60", names: ["ported.x"] }] });
      expect(sets.proxy_v4).toMatchObject({ ports: "all", elements: [{ address: "203.0.113.62", names: ["allowed.x"] }] });
      expect(sets.proxy_v4_udp8082).toMatchObject({ ports: ["8082/udp"] });
      expect(json.allowed).toContainEqual(
        expect.objectContaining({ network: "203.0.113.60", ports: ["443/tcp"], from: "dns-proxy", names: ["ported.x"] }),
      );
      expect(json.allowed).toContainEqual(expect.objectContaining({ network: "203.0.113.62", ports: "all", from: "dns-proxy" }));
      expect(json.denied?.find((d) => d.address === "203.0.113.60" && d.port === 80)?.names).toEqual(["ported.x"]);
    });
  });

  test("plain apply: an address shared by example.com (every port) and api.example.com:443 answers each entry's ports, as a connect goes", async () => {
    expect((await lab.domainwall(["apply", "--hosts", "example.com,api.example.com:443"], { env: env() })).code).toBe(0);
    const rows = [
      await agrees("[2001:db8:ff::10]:80", "2001:db8:ff::10", 80),
      await agrees("[2001:db8:ff::10]:443", "2001:db8:ff::10", 443),
      await agrees("[2001:db8:ff::11]:80", "2001:db8:ff::11", 80),
      await agrees("[2001:db8:ff::11]:443", "2001:db8:ff::11", 443),
      await agrees("EXAMPLE.COM.:80", "2001:db8:ff::10", 80),
    ];
    console.log(
      `explain-kernel e2e, shared address:\n${rows.map((r) => `${r.target}: exit ${r.explain}, reached ${r.reached}: ${r.says}`).join("\n")}`,
    );
    for (const row of rows)
      expect({ target: row.target, explain: row.explain }).toEqual({ target: row.target, explain: row.reached ? 0 : 1 });
    expect(rows.map((r) => r.reached)).toEqual([true, true, false, true, true]);
    expect(rows[0]?.says).toBe("allowed: [2001:db8:ff::10]:80: 2001:db8:ff::10 is allowed by the name example.com (every port)");
    expect(rows[1]?.says).toBe(
      "allowed: [2001:db8:ff::10]:443: 2001:db8:ff::10 is allowed by the name example.com (every port) and api.example.com:443/tcp",
    );
    const text = (await lab.domainwall(["status"], { env: env() })).stdout;
    expect(text).toContain("allowed on some ports only:\n  2001:db8:ff::11: 443/tcp\n");
    expect(text).not.toContain("2001:db8:ff::10: 443/tcp");
  });
});
