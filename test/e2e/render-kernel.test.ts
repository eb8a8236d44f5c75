// The rendered rulesets against the kernel, each in a throwaway network namespace (`unshare --net`):
// nft checks every golden policy and applies a set update; iptables-legacy accepts the restore input
// and takes a snapshot back. The renderers' unit tests are in test/backends/{nft,iptables}/render.test.ts.
import { expect, setDefaultTimeout, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { renderIptables } from "../../src/backends/iptables/render.ts";
import { ourPart } from "../../src/backends/iptables/save.ts";
import { hashSetSize, renderNft, renderNftSetUpdate, SIZED_FROM } from "../../src/backends/nft/render.ts";
import { cidr, contains, formatAddress, makeCidr, type Cidr } from "../../src/net/ip.ts";
import type { Policy } from "../../src/policy/policy.ts";
import { RESTORES } from "../fixtures/iptables-saves.ts";
import { POLICIES, PROXY_POLICIES } from "../fixtures/policies.ts";
import { describeNetns } from "../lab/lab.ts";

setDefaultTimeout(60_000);

const el = (text: string, ...sources: string[]) => ({ cidr: cidr(text), sources });

/** The goldens are real nft: the kernel validates each one (`nft --check`) in a throwaway network namespace. */
describeNetns("the kernel accepts the rendered rulesets (root)", () => {
  const all = { ...POLICIES, ...PROXY_POLICIES };
  test.each(Object.keys(all))("%s", (name) => {
    const result = Bun.spawnSync(["unshare", "--net", "nft", "--check", "-f", "-"], {
      stdin: Buffer.from(renderNft(all[name]!)),
      stderr: "pipe",
    });
    expect(result.stderr.toString()).toBe("");
    expect(result.exitCode).toBe(0);
  });

  test("a DNS-proxy table replace keeps the carried-over elements with the time they had left", () => {
    const policy = PROXY_POLICIES["dns-proxy"]!;
    const first = renderNft(policy, {
      v4: "elements = { 203.0.113.7 timeout 600s expires 500000ms }",
      v6: "elements = { 2001:db8::7 timeout 600s expires 500000ms }",
    });
    const again = renderNft(policy, { v4: "elements = { 203.0.113.7 timeout 600s expires 400000ms }", v6: "" });
    const script = `nft -f - <<'A'\n${first}A\nnft -f - <<'B'\n${again}B\nnft list set inet domainwall proxy_v4; nft list set inet domainwall proxy_v6; nft list chain inet domainwall dns_redirect`;
    const result = Bun.spawnSync(["unshare", "--net", "sh", "-ec", script], { stderr: "pipe" });
    expect(result.stderr.toString()).toBe("");
    const out = result.stdout.toString();
    expect(out).toMatch(/203\.0\.113\.7 timeout 10m expires 6m[0-9]+s/);
    expect(out).not.toContain("2001:db8::7");
    expect(out).toContain("meta skgid 2000053 return");
    expect(out).toContain("redirect to :15353");
  });
});

/**
 * The kernel takes a set update on top of a loaded ruleset: the sets end up holding exactly the new
 * elements (addresses in the hash sets, networks in the interval sets, nothing left from before), each
 * update in one transaction (one `# new generation` line in `nft monitor`).
 */
describeNetns("the kernel applies a set update (root)", () => {
  test("egress-only, then overlapping sets, then empty sets", async () => {
    const overlapping: Policy = {
      ...POLICIES["egress-only"]!,
      allowV4: [el("192.0.2.0/24", "--allow"), el("192.0.2.7", "api.example"), el("203.0.113.12", "api.example")],
      allowV6: [el("2001:db8::/48", "--allow"), el("2001:db8::5", "api.example")],
    };
    const dir = await mkdtemp(`${tmpdir()}/domainwall-sets-`);
    await Bun.write(`${dir}/full.nft`, renderNft(POLICIES["egress-only"]!));
    await Bun.write(`${dir}/overlapping.nft`, renderNftSetUpdate(overlapping));
    await Bun.write(`${dir}/empty.nft`, renderNftSetUpdate(POLICIES.empty!));
    const list = ["allow_addr_v4", "allow_addr_v6", "allow_v4", "allow_v6"].map((set) => `nft list set inet domainwall ${set}`).join("; ");
    const script = `nft -f ${dir}/full.nft
      nft monitor > ${dir}/monitor.txt & sleep 0.3
      nft -f ${dir}/overlapping.nft; echo '--- overlapping'; ${list}
      nft -f ${dir}/empty.nft; echo '--- empty'; ${list}
      sleep 0.3; kill $!; echo '--- monitor'; cat ${dir}/monitor.txt`;
    const result = Bun.spawnSync(["unshare", "--net", "sh", "-ec", script], { stderr: "pipe" });
    await rm(dir, { recursive: true });
    expect(result.stderr.toString()).toBe("");
    const [, overlapped = "", emptied = "", monitor = ""] = result.stdout.toString().split(/--- \w+\n/);
    expect(overlapped).toContain("elements = { 192.0.2.7, 203.0.113.12 }");
    expect(overlapped).toContain("elements = { 2001:db8::5 }");
    expect(overlapped).toContain("elements = { 192.0.2.0/24 }");
    expect(overlapped).toContain("elements = { 2001:db8::/48 }");
    expect(emptied).not.toContain("elements");
    expect(monitor.match(/# new generation/g)).toHaveLength(2);
  });

  test("the port sets: replaced by an update, adjacent and cut-apart ranges accepted", async () => {
    const port = (text: string, protocol: "tcp" | "udp", first: number, last: number) => ({
      cidr: cidr(text),
      ports: { protocol, first, last },
      sources: ["api.example"],
    });
    const next: Policy = {
      ...POLICIES.ports!,
      allowPorts: {
        v4: [port("198.51.100.8", "tcp", 8000, 8049), port("198.51.100.8", "tcp", 8050, 8200), port("203.0.113.10", "tcp", 80, 80)],
        v6: [],
      },
    };
    const dir = await mkdtemp(`${tmpdir()}/domainwall-sets-`);
    await Bun.write(`${dir}/full.nft`, renderNft(POLICIES.ports!));
    await Bun.write(`${dir}/next.nft`, renderNftSetUpdate(next));
    const script = `nft -f ${dir}/full.nft; nft -f ${dir}/next.nft; nft list set inet domainwall allow_ports_v4; echo '---'; nft list set inet domainwall allow_ports_v6`;
    const result = Bun.spawnSync(["unshare", "--net", "sh", "-ec", script], { stderr: "pipe" });
    await rm(dir, { recursive: true });
    expect(result.stderr.toString()).toBe("");
    const [v4 = "", v6 = ""] = result.stdout.toString().split("---\n");
    expect(v4.replace(/\s+/g, " ")).toContain(
      "elements = { 198.51.100.8 . tcp . 8000-8049, 198.51.100.8 . tcp . 8050-8200, 203.0.113.10 . tcp . 80 }",
    );
    expect(v6).not.toContain("elements");
  });
});

/** The goldens are real restore input: iptables-legacy-restore --test accepts them in a throwaway namespace. */
describeNetns("iptables-legacy accepts the rendered input (root)", () => {
  test.each(
    Object.keys(POLICIES).flatMap((name) => [
      { name, family: 4 as const },
      { name, family: 6 as const },
    ]),
  )("$name IPv$family", ({ name, family }) => {
    const tool = family === 4 ? "iptables-legacy-restore" : "ip6tables-legacy-restore";
    const result = Bun.spawnSync(["unshare", "--net", tool, "--noflush", "--test"], {
      stdin: Buffer.from(renderIptables(POLICIES[name]!, family)),
      stderr: "pipe",
    });
    expect(result.stderr.toString()).toBe("");
    expect(result.exitCode).toBe(0);
  });
});

/**
 * Each restore case against the kernel, in a throwaway namespace: load `current`, check the input
 * with --test, commit it; then our part is exactly the snapshot's (counters included), our jumps come
 * first, and every other line (foreign rules, chains, their counters) is as it was.
 */
describeNetns("iptables-legacy takes the restore input back (root)", () => {
  const script = [
    'printf %s "$CURRENT" | iptables-legacy-restore --counters',
    "iptables-legacy-save -c -t filter",
    "echo '#----'",
    'printf %s "$INPUT" | iptables-legacy-restore --noflush --counters --test',
    'printf %s "$INPUT" | iptables-legacy-restore --noflush --counters',
    "iptables-legacy-save -c -t filter",
  ].join(" && ");
  // Any legacy --noflush commit (apply and remove too) zeroes the built-in chains' policy counters:
  // libiptc's doing, not ours to keep. Everything else must be as it was.
  const foreign = (save: string) =>
    save
      .split("\n")
      .filter((line) => !line.startsWith("#") && !ourPart(`*filter\n${line}\n`))
      .map((line) => line.replace(/^(:(INPUT|FORWARD|OUTPUT) \S+) \[\d+:\d+\]$/, "$1 [0:0]"));

  test.each(RESTORES)("$name", ({ snapshot, current, input, kept }) => {
    const result = Bun.spawnSync(["unshare", "--net", "sh", "-c", script], {
      env: { ...process.env, CURRENT: current, INPUT: input },
      stderr: "pipe",
    });
    expect(result.stderr.toString()).toBe("");
    expect(result.exitCode).toBe(0);
    const [before = "", after = ""] = result.stdout.toString().split("#----\n");
    // An emptied chain that someone else still jumps to stays (declared, without rules).
    const keptLines = (kept ?? "").split("\n").filter(Boolean);
    const lines = (part: string) => part.split("\n").filter((line) => line !== "" && !keptLines.includes(line));
    expect(lines(ourPart(after))).toEqual(lines(ourPart(snapshot)));
    for (const line of keptLines) expect(ourPart(after)).toContain(`${line}\n`);
    expect(foreign(after)).toEqual(foreign(before));
    const firstOutput = after.split("\n").find((line) => / -A OUTPUT /.test(line));
    if (ourPart(snapshot) !== "") expect(firstOutput).toEndWith("-A OUTPUT -j DOMAINWALL-OUTPUT");
  });
});

/** `words` + `delta` (±1) as an address of the same family, with carry across words; undefined past either end. */
function offset(family: 4 | 6, words: readonly number[], delta: 1 | -1): string | undefined {
  const next = [...words];
  for (let i = next.length - 1; i >= 0; i--) {
    const value = (next[i] ?? 0) + delta;
    next[i] = value >>> 0;
    if (value >= 0 && value <= 0xffffffff) return formatAddress(family, next);
  }
  return undefined;
}

/** The first and last address of a network, as words. */
const ends = (c: Cidr): [number[], number[]] => {
  const last = c.words.map((w, i) => {
    const hostBits = Math.min(32, Math.max(0, 32 * (i + 1) - c.prefix));
    return hostBits === 32 ? 0xffffffff : (w | ((1 << hostBits) - 1)) >>> 0;
  });
  return [[...c.words], last];
};

/**
 * Addresses go to hash sets (allow_addr_*), IPv6 /64s to a hash set looked up with the interface id
 * cleared (allow_net64_v6, as its rule does), other networks to interval sets (allow_v4/v6): the
 * kernel must allow exactly the union of the policy's networks, as the one interval set per family
 * did. Each network's ends and the addresses just outside them are looked up in the loaded sets
 * (`nft get element`, the kernel's own lookup) and compared with `contains` over the policy.
 */
describeNetns("addresses and /64s in hash sets, networks in interval sets: the same addresses allowed (root)", () => {
  test("ends of every network, and just outside them, for nested, adjacent and lone elements of both families", () => {
    const policy: Policy = {
      ...POLICIES["egress-only"]!,
      allowV4: [
        el("192.0.2.0/24", "--allow"),
        el("192.0.2.7", "api.example"),
        el("198.51.100.10", "a.example"),
        el("198.51.100.11", "a.example"),
        el("203.0.113.0/28", "f:1"),
        el("203.0.113.16", "f:2"),
        el("203.0.113.255", "f:3"),
      ],
      allowV6: [
        el("2001:db8::/48", "--allow"),
        el("2001:db8::5", "api.example"),
        el("2001:db8:0:7::/64", "f:5"), // inside the /48
        el("2001:db8:1::/64", "f:4"),
        el("2001:db8:1:1::/64", "f:6"), // adjacent to the one before
        el("2001:db8:1:3::/64", "f:7"),
        el("2001:db8:ff::10", "b.example"),
        el("2001:db8:ff::11", "b.example"),
      ],
    };
    const elements = [...policy.allowV4, ...policy.allowV6].map((e) => e.cidr);
    const probes = [
      ...new Set(
        elements.flatMap((c) =>
          ends(c).flatMap((w) =>
            [formatAddress(c.family, w), offset(c.family, w, 1), offset(c.family, w, -1)].filter((a) => a !== undefined),
          ),
        ),
      ),
    ];
    const net64 = (address: string) => makeCidr(6, cidr(address).words, 64).text.replace("/64", "");
    const sets = (a: string) =>
      a.includes(":")
        ? [
            ["allow_addr_v6", a],
            ["allow_net64_v6", net64(a)],
            ["allow_v6", a],
          ]
        : [
            ["allow_addr_v4", a],
            ["allow_v4", a],
          ];
    const lookups = probes.flatMap((a) =>
      sets(a).map(([set, key]) => `nft get element inet domainwall ${set} '{ ${key} }' >/dev/null 2>&1 && echo ${a} || true`),
    );
    const result = Bun.spawnSync(["unshare", "--net", "sh", "-ec", `nft -f - <<'R'\n${renderNft(policy)}R\n${lookups.join("\n")}`], {
      stderr: "pipe",
    });
    expect(result.stderr.toString()).toBe("");
    const allowed = [...new Set(result.stdout.toString().trim().split("\n"))].sort();
    const expected = probes.filter((a) => elements.some((c) => contains(c, cidr(a)))).sort();
    expect(allowed).toEqual(expected);
    expect(expected.length).toBeGreaterThan(10);
    expect(probes.length - expected.length).toBeGreaterThan(10);
  });
});

/**
 * A large hash set is declared with room for twice its elements (render.ts, SIZED_FROM): an update
 * past that fails as one transaction, leaving the loaded elements, and a full load sizes it anew
 * (what `watch` does after a failed update).
 */
describeNetns("a sized hash set (root)", () => {
  test("an update past the size is refused whole; a full load of the same elements takes them", async () => {
    const addresses = (n: number) => Array.from({ length: n }, (_, i) => el(formatAddress(4, [((240 << 24) >>> 0) + i]), "f"));
    const policy = (n: number): Policy => ({ ...POLICIES["egress-only"]!, allowV4: addresses(n) });
    const over = 2 * SIZED_FROM + 1;
    const dir = await mkdtemp(`${tmpdir()}/domainwall-sized-`);
    await Bun.write(`${dir}/full.nft`, renderNft(policy(SIZED_FROM)));
    await Bun.write(`${dir}/update.nft`, renderNftSetUpdate(policy(over)));
    await Bun.write(`${dir}/again.nft`, renderNft(policy(over)));
    const count = `nft -j list set inet domainwall allow_addr_v4 | grep -o '"240\\.' | wc -l`;
    const script = `nft -f ${dir}/full.nft; ${count}
      if nft -f ${dir}/update.nft 2>/dev/null; then echo updated; else echo refused; fi; ${count}
      nft -f ${dir}/again.nft; ${count}; nft list set inet domainwall allow_addr_v4 | grep -m1 size`;
    const result = Bun.spawnSync(["unshare", "--net", "sh", "-ec", script], { stderr: "pipe" });
    await rm(dir, { recursive: true });
    expect(result.stderr.toString()).toBe("");
    expect(
      result.stdout
        .toString()
        .split("\n")
        .map((l) => l.trim()),
    ).toEqual([String(SIZED_FROM), "refused", String(SIZED_FROM), String(over), `size ${hashSetSize(over)}`, ""]);
  });
});
