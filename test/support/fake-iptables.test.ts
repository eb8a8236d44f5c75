import { describe, expect, test } from "bun:test";
import transcript from "../fixtures/iptables-transcript.json";
import { fakeIptables } from "./fake-iptables.ts";

// Real iptables-legacy 1.8.9 calls recorded in a fresh namespace (test/fixtures/record-iptables-transcript.ts):
// the fake must answer each the same way: exit code, error output, and the save listing.
describe("fakeIptables replays a real iptables-legacy transcript", () => {
  const fake = fakeIptables();
  test.each(transcript.map((step, i) => ({ ...step, i, name: `${i}: ${step.command} ${step.args.join(" ")}` })))("$name", async (step) => {
    const result = await fake.run(step.command, step.args, step.stdin);
    expect({ code: result.code, stderr: result.stderr, stdout: result.stdout }).toEqual({
      code: step.code,
      stderr: step.stderr,
      stdout: step.stdout,
    });
  });
});

const EMPTY = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";
const body = (saved: string) =>
  saved
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith("#"))
    .join("\n") + "\n";

describe("fakeIptables", () => {
  test("a table given at the start is the table saved, counters kept", async () => {
    const start =
      "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT DROP [7:420]\n:f2b-sshd - [0:0]\n[3:180] -A INPUT -j f2b-sshd\n[1:60] -A f2b-sshd -j RETURN\nCOMMIT\n";
    expect(body(fakeIptables({ tables: { 4: start } }).saved(4))).toBe(start);
    expect(body(fakeIptables({ tables: { 4: start } }).saved(6))).toBe(EMPTY);
  });

  test("a refused line fails the whole commit: nothing before it in the same commit stays", async () => {
    const fake = fakeIptables();
    const result = await fake.run(
      "iptables-legacy-restore",
      ["--noflush"],
      "*filter\n:mine - [0:0]\n-A OUTPUT -j mine\n-D OUTPUT -d 192.0.2.1/32 -j DROP\nCOMMIT\n",
    );
    expect(result).toEqual({ code: 1, stdout: "", stderr: "iptables-restore: line 4 failed\n" });
    expect(body(fake.saved(4))).toBe(EMPTY);
  });

  test("failCommit fails that family's restores (those `when` picks), changing nothing; the other family commits", async () => {
    const fake = fakeIptables();
    fake.failCommit(6, "ip6tables-restore: line 3 failed", (call) => !call.args.includes("--test"));
    const input = "*filter\n-A OUTPUT -j DROP\nCOMMIT\n";
    expect(await fake.run("ip6tables-legacy-restore", ["--noflush", "--test"], input)).toMatchObject({ code: 0 });
    expect(await fake.run("ip6tables-legacy-restore", ["--noflush"], input)).toMatchObject({
      code: 1,
      stderr: "ip6tables-restore: line 3 failed",
    });
    expect(await fake.run("iptables-legacy-restore", ["--noflush"], input)).toMatchObject({ code: 0 });
    expect(body(fake.saved(6))).toBe(EMPTY);
    expect(body(fake.saved(4))).toBe(EMPTY.replace("COMMIT", "[0:0] -A OUTPUT -j DROP\nCOMMIT"));
  });

  test("another tool's change (load) lands between domainwall's calls", async () => {
    const fake = fakeIptables();
    fake.load(4, "*filter\n[2:120] -A OUTPUT -d 192.0.2.99 -j ACCEPT\nCOMMIT\n");
    expect(body(fake.saved(4))).toBe(EMPTY.replace("COMMIT", "[2:120] -A OUTPUT -d 192.0.2.99/32 -j ACCEPT\nCOMMIT"));
  });

  test("anything but the four iptables-legacy tools is not found", async () => {
    expect(await fakeIptables().run("nft", ["-f", "-"], "")).toMatchObject({ code: 127 });
  });
});
