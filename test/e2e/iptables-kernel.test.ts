// Whether iptables-legacy holds anything, asked of the kernel (src/backends/iptables/kernel.ts)
// instead of iptables-legacy-save: in a fresh network namespace of its own (`unshare --net`), step
// by step, against what the tools and domainwall itself load.
import { expect, setDefaultTimeout, test } from "bun:test";
import { resolve } from "node:path";
import { describeNetns, domainwallCommand } from "../lab/lab.ts";

setDefaultTimeout(120_000);

const DRIVER = resolve(import.meta.dir, "../support/iptables-kernel-driver.ts");

describeNetns("iptables-legacy's filter tables as the kernel reports them (root)", () => {
  test("absent, then empty once a tool has read them, not empty while anyone's chain or rule or domainwall's policy is there, empty again after", async () => {
    const ask = `${process.execPath} ${DRIVER}`;
    const dw = domainwallCommand().join(" ");
    const steps = [
      ask, // a fresh namespace: no filter table instantiated here
      `iptables-legacy-save -t filter >/dev/null && ip6tables-legacy-save -t filter >/dev/null && ${ask}`, // instantiated, empty
      `iptables-legacy -N someone-else && ${ask}`, // another tool's empty chain
      `iptables-legacy -X someone-else && ip6tables-legacy -A OUTPUT -d 2001:db8::1 -j ACCEPT && ${ask}`, // another tool's IPv6 rule
      `ip6tables-legacy -D OUTPUT -d 2001:db8::1 -j ACCEPT && ${ask}`,
      `${dw} apply --backend iptables-legacy --hosts 192.0.2.10 --dns-servers 192.0.2.53 2>/dev/null && ${ask}`,
      `${dw} remove 2>/dev/null && ${ask}`,
    ];
    const script = steps.map((step) => `${step} || echo '{"failed": ${JSON.stringify(JSON.stringify(step))}}'`).join("\n");
    const child = Bun.spawn(["unshare", "--net", "sh", "-c", script], { stdout: "pipe", stderr: "pipe" });
    const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    const answers = stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(answers).toEqual([
      { empty: true, filterListed: { 4: false, 6: false } },
      { empty: true, filterListed: { 4: true, 6: true } },
      { empty: false, filterListed: { 4: true, 6: true } },
      { empty: false, filterListed: { 4: true, 6: true } },
      { empty: true, filterListed: { 4: true, 6: true } },
      { empty: false, filterListed: { 4: true, 6: true } },
      { empty: true, filterListed: { 4: true, 6: true } },
    ]);
  });
});
