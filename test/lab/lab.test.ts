// The lab itself, before any firewall: if these fail, the end-to-end results mean nothing.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { ADDR, createLab, describeNetns, type Lab } from "./lab.ts";

describeNetns("the namespace lab", () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await createLab();
    await lab.setRecords({ "api.example": ["203.0.113.10", "2001:db8:ff::10"], "v4only.example": ["203.0.113.20"] });
  });
  afterAll(() => lab.close());

  test("app reaches any address of the outside ranges, v4 and v6", async () => {
    expect(
      await lab.probe([
        { host: "203.0.113.99", port: 80 },
        { host: "2001:db8:ff::99", port: 443 },
        { host: "203.0.113.99", port: 81 },
      ]),
    ).toEqual(["connected", "connected", "refused"]);
  });

  test("net reaches the app's listeners, v4 and v6", async () => {
    expect(
      await lab.canConnectInbound([
        { host: ADDR.appV4, port: 3000 },
        { host: ADDR.appV6, port: 3001 },
      ]),
    ).toEqual([true, true]);
  });

  test("dnsmasq answers on the resolver and the rogue address", async () => {
    expect(await lab.dnsAnswers(ADDR.dnsV4, "api.example")).toBe(true);
    expect(await lab.dnsAnswers(ADDR.rogueDnsV4, "api.example")).toBe(true);
    expect(await lab.dnsAnswers("192.0.2.53", "api.example", 300)).toBe(false); // nobody there
  });

  test("unknown names are NXDOMAIN and missing AAAA is NODATA, as Bun sees them from app", async () => {
    const script = `for (const [h, f] of [["nx.example", 4], ["v4only.example", 6], ["api.example", 6]]) {
      try { console.log(JSON.stringify(await Bun.dns.lookup(h, { family: f }))); } catch (e) { console.log(e.code); } }`;
    const result = await lab.exec("app", [process.execPath, "-e", script]);
    expect(result.stdout.trim().split("\n")).toEqual([
      "DNS_ENOTFOUND",
      "DNS_ENOTFOUND",
      '[{"address":"2001:db8:ff::10","family":6,"ttl":30}]',
    ]);
  });
});
