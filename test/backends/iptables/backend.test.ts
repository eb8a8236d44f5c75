import { describe, expect, test } from "bun:test";
import { DomainwallError } from "../../../src/errors.ts";
import { createIptablesBackend, IPTABLES_MAX_ENTRIES } from "../../../src/backends/iptables/backend.ts";
import { makeCidr } from "../../../src/net/ip.ts";
import { renderIptables } from "../../../src/backends/iptables/render.ts";
import { ourPart } from "../../../src/backends/iptables/save.ts";
import { POLICIES } from "../../fixtures/policies.ts";
import { fakeRun, type RunCall } from "../../support/fake-run.ts";
import { fakeIptables } from "../../support/fake-iptables.ts";
import { TABLES } from "../../fixtures/iptables-saves.ts";

const policy = POLICIES["egress-only"]!;
const EMPTY_SAVE = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";
const LOADED_SAVE =
  "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOMAINWALL-OUTPUT - [0:0]\n[9:540] -A OUTPUT -j DOMAINWALL-OUTPUT\n[0:0] -A DOMAINWALL-OUTPUT -m conntrack --ctstate INVALID -j DROP\n[0:0] -A DOMAINWALL-OUTPUT -d 203.0.113.10/32 -j ACCEPT\n[0:0] -A DOMAINWALL-OUTPUT -d 198.51.100.2/32 -p udp -m udp --dport 53 -j ACCEPT\n[4:240] -A DOMAINWALL-OUTPUT -j DROP\nCOMMIT\n";

/** IPv6's part of the same (unmarked) policy: our chain, its jump and drop, nothing allowed. */
const LOADED_SAVE_V6 =
  "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOMAINWALL-OUTPUT - [0:0]\n[0:0] -A OUTPUT -j DOMAINWALL-OUTPUT\n[0:0] -A DOMAINWALL-OUTPUT -j DROP\nCOMMIT\n";

const saves = (v4: string, v6: string) => (call: RunCall) =>
  call.command === "iptables-legacy-save" ? { stdout: v4 } : call.command === "ip6tables-legacy-save" ? { stdout: v6 } : {};

const summary = (calls: RunCall[]) => calls.map((c) => `${c.command} ${c.args.join(" ")}`);

describe("iptables-legacy backend", () => {
  test("render prints what apply loads into a namespace where nothing of ours is loaded, both families", async () => {
    const { run, calls } = fakeRun(saves(EMPTY_SAVE, EMPTY_SAVE));
    const backend = createIptablesBackend(run);
    await backend.apply(policy);
    const loaded = calls.filter((c) => c.command.endsWith("-restore")).map((c) => c.stdin ?? "");
    expect(loaded).toHaveLength(2);
    const rendered = backend.render(policy);
    expect(rendered).toBe(
      `# ---- iptables-legacy-restore --noflush (IPv4) ----\n${loaded[0]}\n# ---- ip6tables-legacy-restore --noflush (IPv6) ----\n${loaded[1]}`,
    );
  });

  test("once rules are loaded, apply's jumps follow what it finds, which render does not claim to show", async () => {
    const { run, calls } = fakeRun(saves(LOADED_SAVE, LOADED_SAVE));
    await createIptablesBackend(run).apply(policy);
    const loaded = calls.filter((c) => c.command.endsWith("-restore")).map((c) => c.stdin ?? "");
    expect(loaded[0]).not.toContain("-I OUTPUT 1 -j DOMAINWALL-OUTPUT");
    expect(createIptablesBackend(run).render(policy)).toContain("-I OUTPUT 1 -j DOMAINWALL-OUTPUT");
  });

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

  // LOADED_SAVE's part, put back over a table where our chain (and its one jump) is loaded.
  const LOADED_BACK = [
    "*filter",
    ":DOMAINWALL-OUTPUT - [0:0]",
    "-D OUTPUT -j DOMAINWALL-OUTPUT",
    "[0:0] -A DOMAINWALL-OUTPUT -m conntrack --ctstate INVALID -j DROP",
    "[0:0] -A DOMAINWALL-OUTPUT -d 203.0.113.10/32 -j ACCEPT",
    "[0:0] -A DOMAINWALL-OUTPUT -d 198.51.100.2/32 -p udp -m udp --dport 53 -j ACCEPT",
    "[4:240] -A DOMAINWALL-OUTPUT -j DROP",
    "[9:540] -I OUTPUT 1 -j DOMAINWALL-OUTPUT",
    "COMMIT",
    "",
  ].join("\n");

  test("a failing IPv6 commit puts IPv4's chains back as they were (only ours, over a fresh save), and the error says so", async () => {
    const fake = fakeIptables({ tables: { 4: LOADED_SAVE, 6: EMPTY_SAVE } });
    const [v4Before, v6Before] = [fake.saved(4), fake.saved(6)];
    fake.failCommit(6, "ip6tables-restore: line 3 failed");
    const error = await createIptablesBackend(fake.run)
      .apply(policy)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DomainwallError);
    expect((error as Error).message).toBe(
      "ip6tables-legacy-restore --noflush failed: ip6tables-restore: line 3 failed; IPv4 was rolled back to what it was",
    );
    expect(summary(fake.calls).slice(3)).toEqual([
      "ip6tables-legacy-restore --noflush",
      "iptables-legacy-save -c -t filter",
      "iptables-legacy-restore --noflush --counters",
    ]);
    expect(fake.calls.at(-1)?.stdin).toBe(LOADED_BACK);
    // In between, IPv4 held the new policy; after the rollback both tables are what they were, counters too.
    expect(fake.calls[2]?.stdin).toContain("-d 203.0.113.11 -j ACCEPT");
    expect(fake.saved(4)).toBe(v4Before);
    expect(fake.saved(6)).toBe(v6Before);
  });

  test("after a failed IPv6 commit the IPv4 table equals what it was, everyone else's chains and rules included", async () => {
    // Our jump first in OUTPUT, fail2ban's chain, its jump into it and its rule in OUTPUT after ours.
    const fake = fakeIptables({ tables: { 4: TABLES.outputOnly, 6: TABLES.foreignOnly } });
    const [v4Before, v6Before] = [fake.saved(4), fake.saved(6)];
    expect(v4Before).toContain("f2b-sshd");
    fake.failCommit(6, "ip6tables-restore: line 3 failed");
    expect(
      await createIptablesBackend(fake.run)
        .apply(policy)
        .catch((e: unknown) => (e as Error).message),
    ).toEndWith("; IPv4 was rolled back to what it was");
    expect(fake.saved(4)).toBe(v4Before);
    expect(fake.saved(6)).toBe(v6Before);
  });

  test("a rollback puts our jump back first: one that was behind someone else's rule comes back ahead of it, all else as it was", async () => {
    const fake = fakeIptables({ tables: { 4: TABLES.withInput, 6: EMPTY_SAVE } });
    const v4Before = fake.saved(4);
    fake.failCommit(6, "ip6tables-restore: line 3 failed");
    await createIptablesBackend(fake.run)
      .apply(policy)
      .catch(() => {});
    const ours = "[2:120] -A INPUT -j DOMAINWALL-INPUT\n";
    const theirs = "[3:180] -A INPUT -j f2b-sshd\n";
    expect(v4Before).toContain(theirs + ours);
    expect(fake.saved(4)).toBe(v4Before.replace(theirs + ours, ours + theirs));
  });

  test("with nothing of ours in IPv4 before, the IPv6 rollback removes what IPv4 just got, and nothing else", async () => {
    const fake = fakeIptables({ tables: { 4: EMPTY_SAVE, 6: EMPTY_SAVE } });
    // While the IPv6 commit runs, another tool adds a rule to IPv4's OUTPUT.
    const foreign = "*filter\n-A OUTPUT -d 192.0.2.99/32 -j ACCEPT\nCOMMIT\n";
    fake.failCommit(6, "ip6tables-restore: line 3 failed", () => (fake.load(4, foreign), true));
    expect(
      await createIptablesBackend(fake.run)
        .apply(policy)
        .catch((e: unknown) => (e as Error).message),
    ).toEndWith("; IPv4 was rolled back to what it was");
    expect(fake.calls.at(-1)?.stdin).toBe("*filter\n-D OUTPUT -j DOMAINWALL-OUTPUT\n-F DOMAINWALL-OUTPUT\n-X DOMAINWALL-OUTPUT\nCOMMIT\n");
    // What IPv4 holds now: the empty table and the other tool's rule, nothing of ours.
    const expected = fakeIptables({ tables: { 4: EMPTY_SAVE } });
    expected.load(4, foreign);
    expect(fake.saved(4)).toBe(expected.saved(4));
  });

  test("when the IPv4 rollback fails too, the error says so", async () => {
    const fake = fakeIptables({ tables: { 4: LOADED_SAVE, 6: EMPTY_SAVE } });
    fake.failCommit(6, "ip6tables-restore: line 3 failed");
    fake.failCommit(4, "iptables-restore: line 2 failed", (call) => call.args.includes("--counters"));
    const error = await createIptablesBackend(fake.run)
      .apply(policy)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DomainwallError);
    expect((error as Error).message).toBe(
      "ip6tables-legacy-restore --noflush failed: ip6tables-restore: line 3 failed; and rolling IPv4 back failed too: iptables-legacy-restore --noflush --counters failed: iptables-restore: line 2 failed",
    );
    // The refused rollback changed nothing: IPv4 holds the new policy whole (never a mix), IPv6 what it had.
    expect(fake.saved(4)).toContain("-A DOMAINWALL-OUTPUT -d 203.0.113.11/32 -j ACCEPT");
    expect(fake.saved(4)).not.toContain("[4:240]");
    expect(fake.saved(6)).not.toContain("DOMAINWALL");
  });

  test("remove writes nothing where nothing is loaded, and only our chains where it is", async () => {
    const { run, calls } = fakeRun(saves(LOADED_SAVE, EMPTY_SAVE));
    await createIptablesBackend(run).remove();
    expect(summary(calls)).toEqual([
      "iptables-legacy-save -c -t filter",
      "iptables-legacy-restore --noflush",
      "ip6tables-legacy-save -c -t filter",
    ]);
    expect(calls[1]?.stdin).toBe("*filter\n-D OUTPUT -j DOMAINWALL-OUTPUT\n-F DOMAINWALL-OUTPUT\n-X DOMAINWALL-OUTPUT\nCOMMIT\n");
  });

  test("status counts allow rules and drops per family, and reads the allowed networks and DNS; no denied destinations", async () => {
    const { run } = fakeRun(saves(LOADED_SAVE, LOADED_SAVE_V6));
    expect(await createIptablesBackend(run).status()).toEqual({
      loaded: true,
      enforcing: true,
      // The saves here have no -o lo rule.
      acceptsLoopback: false,
      allowed: [{ network: "203.0.113.10", ports: "all" }],
      dns: ["198.51.100.2"],
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

  test("status in audit mode: not enforcing, the final ACCEPT's counts as output_audited", async () => {
    const audit = LOADED_SAVE.replace("[4:240] -A DOMAINWALL-OUTPUT -j DROP", "[6:360] -A DOMAINWALL-OUTPUT -j ACCEPT");
    const status = await createIptablesBackend(fakeRun(saves(audit, LOADED_SAVE_V6)).run).status();
    expect(status.loaded && status.enforcing).toBe(false);
    expect(status.loaded && status.counters).toEqual([
      { name: "output_audited_v4", packets: 6, bytes: 360 },
      { name: "output_audited_v6", packets: 0, bytes: 0 },
    ]);
  });

  test("status with ports and --forward: entries with ports by network (not DNS to a resolver), the port rules counted, the forward chain's verdict", async () => {
    const withPorts = LOADED_SAVE.replace(
      ":DOMAINWALL-OUTPUT - [0:0]\n",
      ":DOMAINWALL-OUTPUT - [0:0]\n:DOMAINWALL-FORWARD - [0:0]\n[1:60] -A FORWARD -j DOMAINWALL-FORWARD\n",
    ).replace(
      "[4:240] -A DOMAINWALL-OUTPUT -j DROP\n",
      "[0:0] -A DOMAINWALL-OUTPUT -d 198.51.100.8/32 -p tcp -m tcp --dport 8000:8100 -j ACCEPT\n[0:0] -A DOMAINWALL-OUTPUT -d 198.51.100.8/32 -p udp -m udp --dport 123 -j ACCEPT\n[4:240] -A DOMAINWALL-OUTPUT -j DROP\n[2:120] -A DOMAINWALL-FORWARD -j DROP\n",
    );
    const status = await createIptablesBackend(fakeRun(saves(withPorts, EMPTY_SAVE)).run).status();
    expect(status.loaded && status.allowed).toEqual([
      { network: "203.0.113.10", ports: "all" },
      {
        network: "198.51.100.8",
        ports: [
          { protocol: "tcp", first: 8000, last: 8100 },
          { protocol: "udp", first: 123, last: 123 },
        ],
      },
    ]);
    expect(status.loaded && status.sets).toContainEqual({ name: "allow_ports_v4 (rules)", elements: 2 });
    expect(status.loaded && status.counters).toContainEqual({ name: "forward_dropped_v4", packets: 2, bytes: 120 });
  });

  test("check uses --test and changes nothing", async () => {
    const { run, calls } = fakeRun();
    await createIptablesBackend(run).check(policy);
    expect(summary(calls)).toEqual(["iptables-legacy-restore --noflush --test", "ip6tables-legacy-restore --noflush --test"]);
  });

  test("snapshot holds only our chains, rules (with counters) and jumps; nothing loaded is undefined", async () => {
    const foreign = LOADED_SAVE.replace(":DOMAINWALL-OUTPUT", ":f2b-sshd - [0:0]\n:DOMAINWALL-OUTPUT").replace(
      "COMMIT",
      "[1:60] -A f2b-sshd -j RETURN\n[0:0] -A OUTPUT -d 192.0.2.99/32 -j ACCEPT\nCOMMIT",
    );
    const snapshot = await createIptablesBackend(fakeRun(saves(foreign, EMPTY_SAVE)).run).snapshot();
    expect(snapshot).toEqual({ backend: "iptables-legacy", parts: { 4: ourPart(LOADED_SAVE), 6: "" } });
    expect(JSON.stringify(snapshot)).not.toContain("192.0.2.99");
    expect(JSON.stringify(snapshot)).not.toContain("f2b-sshd");
    expect(await createIptablesBackend(fakeRun(saves(EMPTY_SAVE, EMPTY_SAVE)).run).snapshot()).toBeUndefined();
  });

  test("when the kernel says both filter tables are empty or absent, snapshot, status and remove run no tool; otherwise the tools decide", async () => {
    const { run, calls } = fakeRun(saves(LOADED_SAVE, EMPTY_SAVE));
    const empty = createIptablesBackend(run, undefined, async () => true);
    expect(await empty.snapshot()).toBeUndefined();
    expect(await empty.status()).toEqual({ loaded: false });
    await empty.remove();
    expect(calls).toEqual([]);
    const notEmpty = createIptablesBackend(run, undefined, async () => false);
    expect(await notEmpty.snapshot()).toEqual({ backend: "iptables-legacy", parts: { 4: ourPart(LOADED_SAVE), 6: "" } });
    expect(summary(calls)).toEqual(["iptables-legacy-save -c -t filter", "ip6tables-legacy-save -c -t filter"]);
  });

  test("restore puts our part back over the current table with --noflush --counters, leaving rules added since alone", async () => {
    let v4 = LOADED_SAVE;
    const { run, calls } = fakeRun((call) => saves(v4, EMPTY_SAVE)(call));
    const backend = createIptablesBackend(run);
    const snapshot = await backend.snapshot();
    // Since the snapshot: a later apply with ports, and someone else's rule in OUTPUT.
    v4 =
      "*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOMAINWALL-INPUT - [0:0]\n:DOMAINWALL-OUTPUT - [0:0]\n-A INPUT -j DOMAINWALL-INPUT\n-A OUTPUT -d 192.0.2.99/32 -j ACCEPT\n-A OUTPUT -j DOMAINWALL-OUTPUT\n-A DOMAINWALL-INPUT -j DROP\n-A DOMAINWALL-OUTPUT -d 203.0.113.20/32 -j ACCEPT\nCOMMIT\n";
    calls.length = 0;
    await backend.restore(snapshot);
    // IPv6 had nothing of ours then and has nothing now: no commit at all.
    expect(summary(calls)).toEqual([
      "iptables-legacy-save -c -t filter",
      "iptables-legacy-restore --noflush --counters",
      "ip6tables-legacy-save -c -t filter",
    ]);
    expect(calls[1]?.stdin).toBe(
      LOADED_BACK.replace("-D OUTPUT -j DOMAINWALL-OUTPUT\n", "-D OUTPUT -j DOMAINWALL-OUTPUT\n-D INPUT -j DOMAINWALL-INPUT\n").replace(
        "COMMIT",
        "-F DOMAINWALL-INPUT\n-X DOMAINWALL-INPUT\nCOMMIT",
      ),
    );
    expect(calls[1]?.stdin).not.toContain("192.0.2.99");
  });

  test("restore of a snapshot with nothing of ours is remove", async () => {
    const { run, calls } = fakeRun(saves(LOADED_SAVE, EMPTY_SAVE));
    await createIptablesBackend(run).restore({ backend: "iptables-legacy", parts: { 4: "", 6: "" } });
    expect(calls[1]?.stdin).toBe("*filter\n-D OUTPUT -j DOMAINWALL-OUTPUT\n-F DOMAINWALL-OUTPUT\n-X DOMAINWALL-OUTPUT\nCOMMIT\n");
  });

  test(`more than ${IPTABLES_MAX_ENTRIES} entries in a family is refused before anything runs (exit 2), naming the count`, async () => {
    const many = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ cidr: makeCidr(6, [0x20010db8, 0, 0, i], 128), sources: ["--allow"] }));
    const { run, calls } = fakeRun(saves(EMPTY_SAVE, EMPTY_SAVE));
    const backend = createIptablesBackend(run);
    const tooBig = { ...policy, allowV6: many(IPTABLES_MAX_ENTRIES + 1) };
    const message = `the iptables-legacy backend allows at most ${IPTABLES_MAX_ENTRIES} IPv6 entries (one rule each); this policy has ${IPTABLES_MAX_ENTRIES + 1}: use --backend nft`;
    for (const attempt of [() => backend.apply(tooBig), () => backend.check(tooBig), async () => backend.render(tooBig)]) {
      const error = await attempt().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(DomainwallError);
      expect((error as DomainwallError).kind).toBe("usage");
      expect((error as Error).message).toStartWith(message);
    }
    expect(calls).toEqual([]);
    // At the limit it loads.
    await backend.apply({ ...policy, allowV6: many(IPTABLES_MAX_ENTRIES) });
    expect(calls.filter((c) => c.command === "ip6tables-legacy-restore")[0]?.stdin?.match(/-j ACCEPT/g)?.length).toBeGreaterThanOrEqual(
      IPTABLES_MAX_ENTRIES,
    );
    // Entries with ports are rules too: the address rules and the port rules add up.
    const ports = many(2).map((e) => ({ ...e, ports: { protocol: "tcp" as const, first: 443, last: 443 } }));
    const mixed = { ...policy, allowV6: many(IPTABLES_MAX_ENTRIES - 1), allowPorts: { v4: [], v6: ports } };
    expect(() => backend.render(mixed)).toThrow(`this policy has ${IPTABLES_MAX_ENTRIES + 1}`);
  });
});
