import { describe, expect, test } from "bun:test";
import { DEFAULT_PROXY_GID, parseProxyGid } from "../../src/config/proxy-gid.ts";
import { switchGroup, type GroupSystem } from "../../src/proxy/identity.ts";

describe("parseProxyGid", () => {
  test.each([
    { text: "2000053", gid: 2000053 },
    { text: "1", gid: 1 },
    { text: "4294967294", gid: 4294967294 },
  ])("$text", ({ text, gid }) => {
    expect(parseProxyGid(text)).toEqual({ ok: true, gid });
  });

  test.each([
    { text: "0", reason: "root's group" },
    { text: "65534", reason: "nogroup" },
    { text: "4294967295", reason: "at most 4294967294" },
    { text: "9999999999", reason: "at most 4294967294" },
    { text: "-1", reason: "not a decimal group id" },
    { text: "0x10", reason: "not a decimal group id" },
    { text: "", reason: "not a decimal group id" },
    { text: "wheel", reason: '"wheel" is not a decimal group id' },
  ])("rejects $text", ({ text, reason }) => {
    const parsed = parseProxyGid(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toContain(reason);
  });

  test("the default is valid", () => {
    expect(parseProxyGid(String(DEFAULT_PROXY_GID))).toEqual({ ok: true, gid: DEFAULT_PROXY_GID });
  });
});

describe("switchGroup", () => {
  const fake = (threads: readonly (readonly number[])[], fail?: string): GroupSystem & { calls: number[] } => {
    const calls: number[] = [];
    return {
      calls,
      setgid(gid) {
        if (fail) throw new Error(fail);
        calls.push(gid);
      },
      threadGids: () => threads,
    };
  };

  test("switches and checks every thread's real, effective, saved and filesystem group", () => {
    const system = fake([
      [7, 7, 7, 7],
      [7, 7, 7, 7],
    ]);
    expect(switchGroup(7, system)).toEqual({ ok: true });
    expect(system.calls).toEqual([7]);
  });

  test.each([
    {
      case: "a thread kept another group",
      threads: [
        [7, 7, 7, 7],
        [0, 0, 0, 0],
      ],
      reason: "a thread still has group ids 0 0 0 0",
    },
    { case: "the filesystem group differs", threads: [[7, 7, 7, 0]], reason: "7 7 7 0" },
    { case: "no thread could be read", threads: [], reason: "unknown" },
  ])("fails when $case", ({ threads, reason }) => {
    const result = switchGroup(7, fake(threads));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toContain(reason);
  });

  test("reports a refused setgid", () => {
    const result = switchGroup(7, fake([], "EPERM: operation not permitted"));
    expect(result).toEqual({
      ok: false,
      reason: "cannot switch to group 7 (root or CAP_SETGID is needed): EPERM: operation not permitted",
    });
  });

  test.skipIf(process.getuid?.() !== 0)("as root, for real in a child process with resolver threads running", () => {
    const script = `
      import { switchGroup } from "${import.meta.dir}/../../src/proxy/identity.ts";
      await Bun.dns.lookup("localhost").catch(() => {}); // start resolver threads first
      const result = switchGroup(${DEFAULT_PROXY_GID});
      console.log(JSON.stringify({ result, gid: process.getgid(), egid: process.getegid() }));
    `;
    const child = Bun.spawnSync([process.execPath, "-e", script]);
    expect(JSON.parse(child.stdout.toString())).toEqual({ result: { ok: true }, gid: DEFAULT_PROXY_GID, egid: DEFAULT_PROXY_GID });
  });
});
