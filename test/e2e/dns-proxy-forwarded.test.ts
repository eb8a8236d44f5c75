// End-to-end: `watch --dns-proxy` on a VM (or pod) that also hosts containers, without `--forward`
// (forwarded traffic is not filtered). A hosted container asks the same resolver; its queries are
// forwarded and masqueraded by the host, as Docker's bridge does. Their replies come from a
// resolver's port 53 like the proxy's own: the proxy's conntrack zone must not catch them, or the
// masquerade entry (zone 0) is not found, the reply is not translated back and never reaches the
// container (as with a zone set on the replies in prerouting: this test failed on such a binary).
// The forwarded DNS is checked first without domainwall, in the same lab.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { ADDR, createLab, describeNetns, killAndRemove, type Lab, until } from "../lab/lab.ts";

setDefaultTimeout(120_000);

describeNetns("watch --dns-proxy beside forwarded (masqueraded) DNS of a hosted container", () => {
  let lab: Lab;
  const running: Bun.Subprocess[] = [];
  const env = () => ({ DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: `${lab.dir}/run` });
  beforeAll(async () => {
    lab = await createLab();
    await lab.setRecords({ "listed.example": ["203.0.113.10"] });
    await lab.addInner();
    // The host masquerades what it forwards for the container (Docker's bridge does the same).
    const nat = await lab.nft(
      ["-f", "-"],
      "table ip dwtest_nat {\n\tchain post {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tip saddr 192.0.2.0/24 ip daddr != 192.0.2.0/24 masquerade\n\t}\n}\n",
    );
    if (nat.code !== 0) throw new Error(`masquerade: ${nat.stderr}`);
  });
  afterEach(async () => {
    await killAndRemove(lab, running, env());
  });
  afterAll(() => lab.close());

  const inner = () => `${lab.app.slice(0, -1)}i`;
  const digFromInner = async (transport: "udp" | "tcp") => {
    const child = Bun.spawn(
      ["ip", "netns", "exec", inner(), process.execPath, `${import.meta.dir}/../lab/dig.ts`, ADDR.dnsV4, "listed.example", "A", transport],
      {
        stdout: "pipe",
        stderr: "pipe",
        timeout: 10_000, // dig.ts's own deadline does not cover a TCP connect that hangs
      },
    );
    const out = (await new Response(child.stdout).text()).trim();
    await child.exited;
    return (out === "" ? { error: `no answer within 10 s (exit ${child.exitCode ?? child.signalCode})` } : JSON.parse(out)) as {
      rcode?: string;
      error?: string;
      answers?: { type: string; data: string }[];
    };
  };

  for (const transport of ["udp", "tcp"] as const) {
    test(`${transport}: the container's query through the host is still answered by its resolver`, async () => {
      expect((await digFromInner(transport)).rcode).toBe("NOERROR"); // the lab without domainwall
      writeFileSync(lab.resolvConf, `nameserver ${ADDR.dnsV4}\n`);
      const ready = `${lab.dir}/ready-${transport}`;
      const child = lab.spawnDomainwall(["watch", "--dns-proxy", "--hosts", "listed.example", "--ready-file", ready], { env: env() });
      running.push(child);
      await until("the ready file", 30, async () => (await Bun.file(ready).exists()) || child.exitCode !== null);
      expect(child.exitCode).toBeNull();
      expect(await digFromInner(transport)).toEqual({ rcode: "NOERROR", answers: [{ type: "A", data: "203.0.113.10" }] });
    });
  }
});
