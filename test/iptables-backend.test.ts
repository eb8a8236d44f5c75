import { describe, expect, test } from "bun:test";
import { DomainwallError } from "../src/errors.ts";
import { createIptablesBackend, IPTABLES_MAX_ENTRIES } from "../src/iptables-backend.ts";
import { makeCidr } from "../src/ip.ts";
import { renderIptables } from "../src/render-iptables.ts";
import { POLICIES } from "./fixtures/policies.ts";
import { fakeRun, type RunCall } from "./support/fake-run.ts";

const policy = POLICIES["egress-only"]!;
const EMPTY_SAVE = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";
const LOADED_SAVE = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOMAINWALL-OUTPUT - [0:0]\n[9:540] -A OUTPUT -j DOMAINWALL-OUTPUT\n[0:0] -A DOMAINWALL-OUTPUT -m conntrack --ctstate INVALID -j DROP\n[0:0] -A DOMAINWALL-OUTPUT -d 203.0.113.10/32 -j ACCEPT\n[0:0] -A DOMAINWALL-OUTPUT -d 198.51.100.2/32 -p udp -m udp --dport 53 -j ACCEPT\n[4:240] -A DOMAINWALL-OUTPUT -j DROP\nCOMMIT\n";

const saves = (v4: string, v6: string) => (call: RunCall) =>
  call.command === "iptables-legacy-save" ? { stdout: v4 } : call.command === "ip6tables-legacy-save" ? { stdout: v6 } : {};

const summary = (calls: RunCall[]) => calls.map((c) => `${c.command} ${c.args.join(" ")}`);

describe("iptables-legacy backend", () => {
  test("apply: one --noflush restore per family, rendered against the current state", async () => {
    const { run, calls } = fakeRun(saves(EMPTY_SAVE, LOADED_SAVE));
    await createIptablesBackend(run).apply(policy);
    expect(summary(calls)).toEqual([
      "iptables-legacy-save -c -t filter",
      "ip6tables-legacy-save -c -t filter",
      "iptables-legacy-restore --noflush",
      "ip6tables-legacy-restore --noflush",
    ]);
    expect(calls[2]?.stdin).toBe(renderIptables(policy, 4));
    expect(calls[3]?.stdin).not.toContain("-I OUTPUT"); // IPv6 already has its jump
  });

  test("a failing IPv6 commit puts IPv4 back exactly as it was, and the error says so", async () => {
    const { run, calls } = fakeRun((call) => (call.command === "ip6tables-legacy-restore" ? { code: 1, stderr: "ip6tables-restore: line 3 failed" } : saves(LOADED_SAVE, EMPTY_SAVE)(call)));
    const error = await createIptablesBackend(run).apply(policy).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DomainwallError);
    expect((error as Error).message).toBe("ip6tables-legacy-restore --noflush failed: ip6tables-restore: line 3 failed; IPv4 was rolled back to what it was");
    expect(summary(calls).at(-1)).toBe("iptables-legacy-restore --counters");
    expect(calls.at(-1)?.stdin).toBe(LOADED_SAVE);
  });

  test("remove writes nothing where nothing is loaded, and only our chains where it is", async () => {
    const { run, calls } = fakeRun(saves(LOADED_SAVE, EMPTY_SAVE));
    await createIptablesBackend(run).remove();
    expect(summary(calls)).toEqual(["iptables-legacy-save -c -t filter", "iptables-legacy-restore --noflush", "ip6tables-legacy-save -c -t filter"]);
    expect(calls[1]?.stdin).toBe("*filter\n-D OUTPUT -j DOMAINWALL-OUTPUT\n-F DOMAINWALL-OUTPUT\n-X DOMAINWALL-OUTPUT\nCOMMIT\n");
  });

  test("status counts allow rules and drops per family", async () => {
    const { run } = fakeRun(saves(LOADED_SAVE, EMPTY_SAVE));
    expect(await createIptablesBackend(run).status()).toEqual({
      loaded: true,
      sets: [
        { name: "allow_v4 (rules)", elements: 1 },
        { name: "allow_v6 (rules)", elements: 0 },
      ],
      counters: [
        { name: "output_dropped_v4", packets: 4, bytes: 240 },
        { name: "output_dropped_v6", packets: 0, bytes: 0 },
      ],
    });
    const nothing = fakeRun(saves(EMPTY_SAVE, EMPTY_SAVE));
    expect(await createIptablesBackend(nothing.run).status()).toEqual({ loaded: false });
  });

  test("check uses --test and changes nothing", async () => {
    const { run, calls } = fakeRun();
    await createIptablesBackend(run).check(policy);
    expect(summary(calls)).toEqual(["iptables-legacy-restore --noflush --test", "ip6tables-legacy-restore --noflush --test"]);
  });

  test("snapshot and restore give back whole filter tables, counters included", async () => {
    const { run, calls } = fakeRun(saves(LOADED_SAVE, EMPTY_SAVE));
    const backend = createIptablesBackend(run);
    const snapshot = await backend.snapshot();
    await backend.restore(snapshot);
    expect(calls.slice(-2).map((c) => [c.command, c.args.join(" "), c.stdin])).toEqual([
      ["iptables-legacy-restore", "--counters", LOADED_SAVE],
      ["ip6tables-legacy-restore", "--counters", EMPTY_SAVE],
    ]);
  });

  test(`more than ${IPTABLES_MAX_ENTRIES} entries in a family is refused before anything runs (exit 2), naming the count`, async () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => ({ cidr: makeCidr(6, [0x20010db8, 0, 0, i], 128), sources: ["--allow"] }));
    const { run, calls } = fakeRun(saves(EMPTY_SAVE, EMPTY_SAVE));
    const backend = createIptablesBackend(run);
    const tooBig = { ...policy, allowV6: many(IPTABLES_MAX_ENTRIES + 1) };
    const message = `the iptables-legacy backend allows at most ${IPTABLES_MAX_ENTRIES} IPv6 entries (one rule each); this policy has ${IPTABLES_MAX_ENTRIES + 1}: use --backend nft`;
    for (const attempt of [() => backend.apply(tooBig), () => backend.check(tooBig), async () => backend.render(tooBig)]) {
      const error = await attempt().then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(DomainwallError);
      expect((error as DomainwallError).kind).toBe("config");
      expect((error as Error).message).toStartWith(message);
    }
    expect(calls).toEqual([]);
    // At the limit it loads.
    await backend.apply({ ...policy, allowV6: many(IPTABLES_MAX_ENTRIES) });
    expect(calls.filter((c) => c.command === "ip6tables-legacy-restore")[0]?.stdin?.match(/-j ACCEPT/g)?.length).toBeGreaterThanOrEqual(IPTABLES_MAX_ENTRIES);
  });
});
