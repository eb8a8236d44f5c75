// Admission (src/backends/nft/admitter.ts) against the kernel, through libnftables and through nft processes:
// test/support/admit-driver.ts in a fresh network namespace of its own. The logic's unit tests are
// in test/proxy/admit.test.ts.
import { expect, setDefaultTimeout, test } from "bun:test";
import { resolve } from "node:path";
import { describeNetns } from "../lab/lab.ts";

// Namespaces and child processes under a loaded machine: beyond bun's 5 s default.
setDefaultTimeout(120_000);

interface Step {
  readonly step: string;
  readonly scripts: number;
  readonly elements: Record<string, { timeout: number; expires: number }>;
}

/** test/support/admit-driver.ts in a fresh network namespace of its own, through `executor`. */
async function driveAdmission(executor: "libnftables" | "nft"): Promise<Step[]> {
  const argv = ["unshare", "--net", process.execPath, resolve(import.meta.dir, "../support/admit-driver.ts"), executor];
  const child = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  if (code !== 0) throw new Error(`${argv.join(" ")} exited ${code}: ${stderr}`);
  return (JSON.parse(stdout) as { steps: Step[] }).steps;
}

describeNetns("admission against the kernel (root)", () => {
  test.each(["libnftables", "nft"] as const)(
    "through %s: timeouts land, a repeated answer refreshes, a shorter one does not shorten, a restart learns, a replace carries over",
    async (executor) => {
      const steps = await driveAdmission(executor);
      const at = (name: string) => {
        const step = steps.find((s) => s.step.startsWith(name));
        if (step === undefined) throw new Error(`no step ${name}`);
        return step;
      };
      const timeouts = (step: Step) => Object.fromEntries(Object.entries(step.elements).map(([address, e]) => [address, e.timeout]));

      const first = at("first answer");
      expect(first.scripts).toBe(1);
      expect(timeouts(first)).toEqual({ "198.51.100.9": 90, "2001:db8::9": 90 });
      // 2 s later the repeated answer restarts 198.51.100.9's countdown; 2001:db8::9 was not in it.
      const repeated = at("same answer");
      expect(repeated.scripts).toBe(2);
      expect(repeated.elements["198.51.100.9"]!.expires).toBeGreaterThanOrEqual(88);
      expect(repeated.elements["2001:db8::9"]!.expires).toBeLessThanOrEqual(87);
      const shorter = at("shorter answer");
      expect(shorter.scripts).toBe(2);
      expect(timeouts(shorter)).toEqual({ "198.51.100.9": 90, "2001:db8::9": 90 });
      for (const [address, e] of Object.entries(shorter.elements))
        expect(e.expires).toBeGreaterThanOrEqual(repeated.elements[address]!.expires - 1);
      const longer = at("longer answer");
      expect(longer.scripts).toBe(3);
      expect(longer.elements["198.51.100.9"]).toMatchObject({ timeout: 630 });
      expect(longer.elements["198.51.100.9"]!.expires).toBeGreaterThanOrEqual(628);
      const both = at("two answers at once");
      expect(both.scripts).toBe(4);
      expect(timeouts(both)).toEqual({
        "198.51.100.9": 630,
        "198.51.100.10": 90,
        "198.51.100.11": 90,
        "2001:db8::9": 90,
        "2001:db8::10": 90,
      });
      // Restarted: two reads, no add (the answers are covered by what it learnt).
      const restarted = at("restarted");
      expect(restarted.step).toStartWith("restarted, learnt 5,");
      expect(restarted.scripts).toBe(6);
      const carried = at("table replaced with the carry-over");
      expect(timeouts(carried)).toEqual(timeouts(both));
      for (const [address, e] of Object.entries(carried.elements)) {
        expect(e.expires).toBeLessThanOrEqual(restarted.elements[address]!.expires);
        expect(e.expires).toBeGreaterThanOrEqual(restarted.elements[address]!.expires - 2);
      }
      expect(at("table replaced without it").elements).toEqual({});
    },
    20_000,
  );
});
