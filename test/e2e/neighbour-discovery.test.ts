// End-to-end, issue 12 item 9: outgoing neighbour discovery is scoped to link-local, link-scope
// multicast and the on-link prefixes; neighbour and router discovery still work both ways with the
// caches flushed, and an NS with hop limit 255 to an off-link address is dropped and counted. The
// binary (DOMAINWALL_BIN, else the source) against the kernel in lab namespaces, both backends.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { ADDR, createLab, describeNetns, type Lab } from "../lab/lab.ts";

setDefaultTimeout(120_000);

const ND = `${import.meta.dir}/../lab/nd.py`;
/** Routed via net (its lo answers the whole /64): not on app's link. ALLOWED is allowed, OFF_LINK is not. */
const ALLOWED = "2001:db8:ff::1";
const OFF_LINK = "2001:db8:ff::99";

describeNetns("outgoing neighbour discovery is link-scoped (issue 12, item 9)", () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await createLab();
    await lab.setRecords({ "api.example": ["203.0.113.1", ALLOWED] });
  });
  afterEach(async () => {
    await lab.domainwall(["remove", "--backend", "iptables-legacy"]);
    await lab.domainwall(["remove", "--backend", "nft"]);
  });
  afterAll(() => lab.close());

  const veth = (ns: "app" | "net") => `${lab.app.slice(0, -1)}v${ns === "app" ? "a" : "n"}`;
  const flush = async () => {
    for (const ns of ["app", "net"] as const) expect((await lab.exec(ns, ["ip", "-6", "neigh", "flush", "all"])).code).toBe(0);
  };
  const send = async (ns: "app" | "net", kind: string, dest: string, dev?: string) =>
    (await lab.exec(ns, ["python3", ND, "send", kind, dest, ...(dev === undefined ? [] : [dev])])).stdout.trim();
  /** Start listening in `ns` for a message of `kind`, run `act`, and say what arrived. */
  const heard = async (ns: "app" | "net", kind: string, act: () => Promise<unknown>, join: string[] = []) => {
    const listener = Bun.spawn(["ip", "netns", "exec", ns === "app" ? lab.app : lab.net, "python3", ND, "recv", kind, "3000", ...join], {
      stdout: "pipe",
      stderr: "inherit",
    });
    const reader = listener.stdout.getReader();
    const ready = new TextDecoder().decode((await reader.read()).value);
    expect(ready).toStartWith("ready");
    await act();
    let text = ready.slice("ready\n".length);
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += new TextDecoder().decode(chunk.value);
    await listener.exited;
    return text.trim();
  };
  const dropped = async (backend: string): Promise<number> => {
    if (backend === "nft")
      return Number(/packets (\d+)/.exec((await lab.nft(["list", "counter", "inet", "domainwall", "output_dropped"])).stdout)?.[1]);
    const chain = (await lab.exec("app", ["ip6tables-legacy", "-L", "DOMAINWALL-OUTPUT", "-v", "-x", "-n"])).stdout;
    const drop = chain.split("\n").find((line) => /^\s*\d+\s+\d+\s+DROP\s+all/.test(line) && !line.includes("ctstate"));
    return Number(drop?.trim().split(/\s+/)[0]);
  };

  for (const backend of ["nft", "iptables-legacy"]) {
    test(`${backend}: ND scoped to link-local, ff02::/16 and the on-link 2001:db8:1::/64; NS/NA and RS/RA work both ways with caches flushed; an off-link NS is dropped and counted`, async () => {
      const apply = await lab.domainwall(["apply", "--backend", backend, "--hosts", "api.example", "--ports", "3000"]);
      expect(apply.code).toBe(0);
      const rules = backend === "nft" ? await lab.table() : (await lab.exec("app", ["ip6tables-legacy-save", "-t", "filter"])).stdout;
      expect(rules).toContain(
        backend === "nft"
          ? "ip6 daddr { 2001:db8:1::/64, fe80::/10, ff02::/16 } ip6 hoplimit 255 accept"
          : "-A DOMAINWALL-OUTPUT -d 2001:db8:1::/64 -p ipv6-icmp",
      );

      // Outbound: app solicits its router (2001:db8:1::2, a global next hop) and is answered at its global address.
      await flush();
      expect(await lab.canConnect([{ host: ALLOWED, port: 80 }])).toEqual([true]);
      expect((await lab.exec("app", ["ip", "-6", "neigh", "show", ADDR.dnsV6])).stdout).toMatch(/lladdr/);
      // Inbound: net solicits app; app's NA goes back to net's global address.
      await flush();
      expect(await lab.canConnectInbound([{ host: ADDR.appV6, port: 3000 }])).toEqual([true]);
      expect((await lab.exec("net", ["ip", "-6", "neigh", "show", ADDR.appV6])).stdout).toMatch(/lladdr/);

      // Router discovery: app's RS reaches net; net's RA reaches app (input is filtered: --ports).
      expect(
        await heard("net", "rs", async () => expect(await send("app", "rs", "ff02::2", veth("app"))).toBe("sent"), [
          "ff02::2",
          veth("net"),
        ]),
      ).toStartWith("received ");
      expect(await heard("app", "ra", async () => expect(await send("net", "ra", "ff02::1", veth("net"))).toBe("sent"))).toStartWith(
        "received ",
      );

      // A hop-limit-255 NS to an off-link address would be routed out like any packet: dropped, counted.
      const before = await dropped(backend);
      expect(await send("app", "ns", OFF_LINK)).toBe("error:EPERM");
      expect(await dropped(backend)).toBe(before + 1);
      // while one to an on-link neighbour still leaves
      expect(await send("app", "ns", ADDR.dnsV6)).toBe("sent");
    });
  }
});
