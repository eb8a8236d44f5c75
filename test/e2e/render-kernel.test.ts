// The rendered rulesets against the kernel, each in a throwaway network namespace (`unshare --net`):
// nft checks every golden policy and applies a set update; iptables-legacy accepts the restore input
// and takes a snapshot back. The renderers' unit tests are in test/backends/{nft,iptables}/render.test.ts.
import { expect, setDefaultTimeout, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { renderIptables } from "../../src/backends/iptables/render.ts";
import { ourPart } from "../../src/backends/iptables/save.ts";
import { renderNft, renderNftSetUpdate } from "../../src/backends/nft/render.ts";
import { cidr } from "../../src/net/ip.ts";
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
    const result = Bun.spawnSync(["unshare", "--net", "nft", "--check", "-f", "-"], { stdin: Buffer.from(renderNft(all[name]!)), stderr: "pipe" });
    expect(result.stderr.toString()).toBe("");
    expect(result.exitCode).toBe(0);
  });

  test("a DNS-proxy table replace keeps the carried-over elements with the time they had left", () => {
    const policy = PROXY_POLICIES["dns-proxy"]!;
    const first = renderNft(policy, { v4: "elements = { 203.0.113.7 timeout 600s expires 500000ms }", v6: "elements = { 2001:db8::7 timeout 600s expires 500000ms }" });
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
 * elements (auto-merge folding an answer inside an --allow CIDR, nothing left from before), each
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
    const list = "nft list set inet domainwall allow_v4; nft list set inet domainwall allow_v6";
    const script = `nft -f ${dir}/full.nft
      nft monitor > ${dir}/monitor.txt & sleep 0.3
      nft -f ${dir}/overlapping.nft; echo '--- overlapping'; ${list}
      nft -f ${dir}/empty.nft; echo '--- empty'; ${list}
      sleep 0.3; kill $!; echo '--- monitor'; cat ${dir}/monitor.txt`;
    const result = Bun.spawnSync(["unshare", "--net", "sh", "-ec", script], { stderr: "pipe" });
    await rm(dir, { recursive: true });
    expect(result.stderr.toString()).toBe("");
    const [, overlapped = "", emptied = "", monitor = ""] = result.stdout.toString().split(/--- \w+\n/);
    expect(overlapped).toContain("elements = { 192.0.2.0/24, 203.0.113.12 }");
    expect(overlapped).toContain("elements = { 2001:db8::/48 }");
    expect(emptied).not.toContain("elements");
    expect(monitor.match(/# new generation/g)).toHaveLength(2);
  });

  test("the port sets: replaced by an update, adjacent and cut-apart ranges accepted", async () => {
    const port = (text: string, protocol: "tcp" | "udp", first: number, last: number) => ({ cidr: cidr(text), ports: { protocol, first, last }, sources: ["api.example"] });
    const next: Policy = {
      ...POLICIES.ports!,
      allowPorts: { v4: [port("198.51.100.8", "tcp", 8000, 8049), port("198.51.100.8", "tcp", 8050, 8200), port("203.0.113.10", "tcp", 80, 80)], v6: [] },
    };
    const dir = await mkdtemp(`${tmpdir()}/domainwall-sets-`);
    await Bun.write(`${dir}/full.nft`, renderNft(POLICIES.ports!));
    await Bun.write(`${dir}/next.nft`, renderNftSetUpdate(next));
    const script = `nft -f ${dir}/full.nft; nft -f ${dir}/next.nft; nft list set inet domainwall allow_ports_v4; echo '---'; nft list set inet domainwall allow_ports_v6`;
    const result = Bun.spawnSync(["unshare", "--net", "sh", "-ec", script], { stderr: "pipe" });
    await rm(dir, { recursive: true });
    expect(result.stderr.toString()).toBe("");
    const [v4 = "", v6 = ""] = result.stdout.toString().split("---\n");
    expect(v4.replace(/\s+/g, " ")).toContain("elements = { 198.51.100.8 . tcp . 8000-8049, 198.51.100.8 . tcp . 8050-8200, 203.0.113.10 . tcp . 80 }");
    expect(v6).not.toContain("elements");
  });});

/** The goldens are real restore input: iptables-legacy-restore --test accepts them in a throwaway namespace. */
describeNetns("iptables-legacy accepts the rendered input (root)", () => {
  test.each(Object.keys(POLICIES).flatMap((name) => [{ name, family: 4 as const }, { name, family: 6 as const }]))("$name IPv$family", ({ name, family }) => {
    const tool = family === 4 ? "iptables-legacy-restore" : "ip6tables-legacy-restore";
    const result = Bun.spawnSync(["unshare", "--net", tool, "--noflush", "--test"], { stdin: Buffer.from(renderIptables(POLICIES[name]!, family)), stderr: "pipe" });
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
    save.split("\n").filter((line) => !line.startsWith("#") && !ourPart(`*filter\n${line}\n`)).map((line) => line.replace(/^(:(INPUT|FORWARD|OUTPUT) \S+) \[\d+:\d+\]$/, "$1 [0:0]"));

  test.each(RESTORES)("$name", ({ snapshot, current, input, kept }) => {
    const result = Bun.spawnSync(["unshare", "--net", "sh", "-c", script], { env: { ...process.env, CURRENT: current, INPUT: input }, stderr: "pipe" });
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
