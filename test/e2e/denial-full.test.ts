// End-to-end: an app fills the kernel's record of denied destinations (one UDP datagram to each of
// 4,200 ports of one address fills denied_out_v4, size 4096) and `status` says so, with the binary
// (DOMAINWALL_BIN, else the source) in the lab's namespaces against the kernel's netfilter.
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { createLab, describeNetns, killAndRemove, type Lab, until } from "../lab/lab.ts";

setDefaultTimeout(120_000);

const TARGET = "203.0.113.77";
const PORTS = 4200;
const FULL =
  "the record of denied destinations is full (4096): later destinations are dropped but not recorded until entries expire (1h after their last packet); see output_dropped (full: denied_out_v4)";

describeNetns("a full record of denied destinations (nft), end to end", () => {
  let lab: Lab;
  const env = () => ({ DOMAINWALL_BACKEND: "nft", DOMAINWALL_RUN_DIR: `${lab.dir}/run` });
  beforeAll(async () => {
    lab = await createLab();
    await lab.setRecords({ "api.example": ["203.0.113.10"] });
  });
  const running: Bun.Subprocess[] = [];
  afterEach(() => killAndRemove(lab, running, env()));
  afterAll(() => lab.close());

  test("4,200 UDP ports of one address fill denied_out_v4: status and status --json say it is full", async () => {
    expect((await lab.domainwall(["apply", "--hosts", "api.example"], { env: env() })).code).toBe(0);
    const before = await lab.domainwall(["status", "--json"], { env: env() });
    expect(JSON.parse(before.stdout).deniedFull).toEqual([]);

    const spray = await lab.exec("app", [process.execPath, `${import.meta.dir}/../lab/spray-ports.ts`, TARGET, "1", String(PORTS)], {
      timeoutMs: 60_000,
    });
    const { sent, failed } = JSON.parse(spray.stdout) as { sent: number; failed: number };
    expect(sent + failed).toBe(PORTS);

    const status = await lab.domainwall(["status"], { env: env() });
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`\nWARNING: ${FULL}\n`);
    console.log(
      `status after ${PORTS} ports:\n${status.stdout
        .split("\n")
        .filter((l) => !l.startsWith("  "))
        .join("\n")}`,
    );

    const json = JSON.parse((await lab.domainwall(["status", "--json"], { env: env() })).stdout) as {
      deniedFull: string[];
      denied: { address: string }[];
      counters: { name: string; packets: number }[];
    };
    expect(json.deniedFull).toEqual(["denied_out_v4"]);
    // The kernel recorded at most its size; the counter counted every datagram, the unrecorded ones too.
    expect(json.denied.filter((d) => d.address === TARGET).length).toBeLessThanOrEqual(4096);
    expect(json.denied.filter((d) => d.address === TARGET).length).toBeGreaterThanOrEqual(4096 - 8);
    expect(json.counters.find((c) => c.name === "output_dropped")?.packets).toBeGreaterThanOrEqual(PORTS);

    // status --follow says it too, on its first read (a full set is not part of the baseline it keeps quiet).
    const follow = lab.spawnDomainwall(["status", "--follow"], { env: env() });
    running.push(follow);
    let out = "";
    const reader = (async () => {
      for await (const chunk of follow.stdout) out += new TextDecoder().decode(chunk);
    })();
    await until("status --follow's full line", 30, async () => out.includes(FULL)).catch(() => expect(out).toContain(FULL));
    expect(out.split("\n").find((l) => l.endsWith(FULL))).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z the record of denied destinations is full/);
    follow.kill("SIGINT");
    expect(await follow.exited).toBe(0);
    await reader;
  });
});
