// End-to-end: errors a person can act on, with the binary (DOMAINWALL_BIN, else the source) in the
// lab's namespaces: without CAP_NET_ADMIN one line and exit 1; a resolver that times out and one
// that answers REFUSED each named, with their different kinds of failure.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { ADDR, createLab, describeNetns, domainwallCommand, type Lab } from "../lab/lab.ts";

setDefaultTimeout(120_000);

const SILENT = "203.0.113.53"; // in net, where UDP port 53 is dropped: a resolver that never answers
const REFUSING = "203.0.113.54"; // in net, test/lab/refusing-dns.ts: a resolver that answers REFUSED

describeNetns("errors a person can act on, end to end", () => {
  let lab: Lab;
  let refusing: Bun.Subprocess<"ignore", "pipe", "inherit"> | undefined;
  beforeAll(async () => {
    lab = await createLab();
    await lab.setRecords({ "api.example": ["203.0.113.10"] });
    expect(
      (
        await lab.exec("net", [
          "nft",
          `add table inet lvtest; add chain inet lvtest in { type filter hook input priority 0; }; add rule inet lvtest in ip daddr ${SILENT} udp dport 53 drop`,
        ])
      ).code,
    ).toBe(0);
    refusing = Bun.spawn(["ip", "netns", "exec", lab.net, process.execPath, `${import.meta.dir}/../lab/refusing-dns.ts`, REFUSING], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "inherit",
    });
    const reader = (refusing.stdout as ReadableStream<Uint8Array>).getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain("listening");
    reader.releaseLock();
  });
  afterAll(async () => {
    refusing?.kill();
    await refusing?.exited;
    await lab.close();
  });
  const env = () => ({ DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: `${lab.dir}/run` });

  test("without CAP_NET_ADMIN: one line naming what is needed, exit 1, no caret dump; the details at --log-level debug", async () => {
    const nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"];
    const message = "domainwall needs root with CAP_NET_ADMIN in this network namespace (nft: Operation not permitted)";
    for (const args of [["status"], ["apply", "--hosts", "api.example"], ["remove"], ["explain", "203.0.113.10"]]) {
      const result = await lab.exec("app", [...nobody, "env", `DOMAINWALL_RUN_DIR=${lab.dir}/run-nobody`, ...domainwallCommand(), ...args]);
      expect([result.code, result.stdout, result.stderr.trim().split("\n")]).toEqual([1, "", [expect.stringContaining(message)]]);
      expect(result.stderr).not.toContain("^^^");
    }
    const debug = await lab.exec("app", [...nobody, ...domainwallCommand(), "status", "--log-level", "debug"]);
    expect(debug.code).toBe(1);
    expect(debug.stderr).toContain(message);
    expect(debug.stderr).toContain("Operation not permitted\ntable inet domainwall_probe");
    console.log(`without the privilege:\n${(await lab.exec("app", [...nobody, ...domainwallCommand(), "status"])).stderr}`);
  });

  test("a resolver that times out and one that answers REFUSED: different messages, each naming the resolver, ending with what to check", async () => {
    const apply = async (server: string) => {
      writeFileSync(lab.resolvConf, `nameserver ${server}\n`);
      try {
        return await lab.domainwall(["apply", "--hosts", "api.example", "--resolve-timeout", "3s"], { env: env() });
      } finally {
        writeFileSync(lab.resolvConf, `nameserver ${ADDR.dnsV4}\nnameserver ${ADDR.dnsV6}\n`);
      }
    };
    const silent = await apply(SILENT);
    const refused = await apply(REFUSING);
    console.log(`a resolver that times out:\n${silent.stderr}\na resolver that refuses:\n${refused.stderr}`);
    expect(silent.code).toBe(1);
    expect(refused.code).toBe(1);
    expect(silent.stderr).toContain(`Asked ${SILENT}: timeout (no reply within 2 s)`);
    expect(refused.stderr).toContain(`Asked ${REFUSING}: refused (it answered REFUSED`);
    for (const { stderr } of [silent, refused]) {
      expect(stderr).toContain("Check --dns-servers and /etc/resolv.conf, or that a loaded policy is not blocking this host's own lookups");
    }
    expect((await lab.domainwall(["status"], { env: env() })).stdout).toStartWith("nothing loaded");
  });
});
