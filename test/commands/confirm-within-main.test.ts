import { describe, expect, test } from "bun:test";
import type { Holder } from "../../src/backends/lock.ts";
import { runMain } from "../support/run-main.ts";
import { type RunCall } from "../support/fake-run.ts";

describe("apply --confirm-within, through main", () => {
  const previous = "table inet domainwall {\n\tchain output {\n\t}\n}\n";
  /** Reading our table is a script too: `list table inet domainwall` on nft's stdin. */
  const isList = (call: RunCall) => call.stdin === "list table inet domainwall";
  const nft = (call: RunCall) => (isList(call) ? { stdout: previous } : {});
  const described = (call: RunCall) => (isList(call) ? "list table inet domainwall" : call.args.join(" "));
  const pending = "/run/domainwall/confirm.pending";

  test("without a confirmation, the previous rules come back in one transaction and the exit code is 1", async () => {
    const { code, stderr, calls, files } = await runMain(["apply", "--confirm-within", "2s"], { env: { hosts_csv: "api.example" }, nft });
    expect(code).toBe(1);
    expect(calls.map(described)).toEqual(["list table inet domainwall", "-f -", "-f -"]);
    expect(calls[2]?.stdin).toBe(`table inet domainwall\ndelete table inet domainwall\n${previous}`);
    expect(stderr).toContain("not confirmed: the previous rules are back");
    expect(files[pending]).toBeUndefined();
  });

  test("with nothing loaded before, an unconfirmed apply removes everything", async () => {
    const { code, calls } = await runMain(["apply", "--confirm-within", "1s"], {
      env: { hosts_csv: "api.example" },
      nft: (call) => (isList(call) ? { code: 1, stderr: "Error: No such file or directory" } : {}),
    });
    expect(code).toBe(1);
    expect(calls.at(-1)?.stdin).toBe("table inet domainwall\ndelete table inet domainwall\n");
  });

  test("a keypress keeps the new rules", async () => {
    const { code, calls, stderr } = await runMain(["apply", "--confirm-within", "60s"], {
      env: { hosts_csv: "api.example" },
      nft,
      operator: Promise.resolve("keep"),
    });
    expect(code).toBe(0);
    expect(calls).toHaveLength(2);
    expect(stderr).toContain("confirmed: the new rules stay");
  });

  test("a revert (n, Ctrl-C, SIGTERM) restores at once", async () => {
    const { code, calls } = await runMain(["apply", "--confirm-within", "60s"], {
      env: { hosts_csv: "api.example" },
      nft,
      operator: Promise.resolve("revert"),
    });
    expect(code).toBe(1);
    expect(calls.at(-1)?.stdin).toContain(previous);
  });

  test("'domainwall confirm' removes the pending file; without one it exits 1", async () => {
    const waiting = await runMain(["confirm"], { files: { [pending]: "an apply is waiting for confirmation (pid 4242)\n" } });
    expect(waiting.code).toBe(0);
    expect(waiting.files[pending]).toBeUndefined();
    const none = await runMain(["confirm"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("no apply is waiting for confirmation");
  });

  test("signals are handled from before the snapshot until after the rollback", async () => {
    const events: string[] = [];
    const { code, calls } = await runMain(["apply", "--confirm-within", "1s"], {
      env: { hosts_csv: "api.example" },
      nft: (call) => {
        events.push(`nft ${described(call)}`);
        return nft(call);
      },
      overrides: () => ({
        awaitOperator: () => {
          events.push("signals handled");
          return { decision: new Promise(() => {}), done: () => void events.push("signals restored") };
        },
      }),
    });
    expect(code).toBe(1);
    expect(calls).toHaveLength(3);
    expect(events.filter((e) => !e.includes("domainwall_probe"))).toEqual([
      "signals handled",
      "nft list table inet domainwall",
      "nft -f -",
      "nft -f -",
      "signals restored",
    ]);
  });

  test("a failure while waiting still restores the previous rules", async () => {
    let reads = 0;
    const { code, calls, stderr } = await runMain(["apply", "--confirm-within", "60s"], {
      env: { hosts_csv: "api.example" },
      nft,
      overrides: (world) => ({
        readFile: async (path) => {
          if (path === pending && ++reads > 2) throw new Error("EIO: i/o error");
          return world.readFile(path);
        },
      }),
    });
    expect(code).toBe(1);
    expect(calls.map(described)).toEqual(["list table inet domainwall", "-f -", "-f -"]);
    expect(calls[2]?.stdin).toBe(`table inet domainwall\ndelete table inet domainwall\n${previous}`);
    expect(stderr).toContain("EIO: i/o error");
  });

  test("a run directory that cannot be written exits 1 before anything is loaded", async () => {
    const { code, calls, stderr } = await runMain(["apply", "--confirm-within", "60s"], {
      env: { hosts_csv: "api.example" },
      nft,
      overrides: () => ({
        writeFile: async () => {
          throw new Error("EROFS: read-only file system");
        },
      }),
    });
    expect(code).toBe(1);
    expect(calls).toEqual([]);
    expect(stderr).toContain(`cannot write ${pending}: EROFS: read-only file system; nothing was changed`);
  });

  test("a second apply while one waits is refused before anything is loaded", async () => {
    const alive = () => ({ processAlive: (pid: number) => pid === 7 || pid === 4242 });
    const { code, calls, stderr, files } = await runMain(["apply", "--confirm-within", "60s"], {
      env: { hosts_csv: "api.example" },
      nft,
      files: { [pending]: "an apply is waiting for confirmation (pid 7)\n" },
      overrides: alive,
    });
    expect(code).toBe(1);
    expect(calls).toEqual([]);
    expect(stderr).toContain("another apply is waiting for confirmation");
    expect(files[pending]).toBe("an apply is waiting for confirmation (pid 7)\n");
  });

  test("a pending file whose process has gone is stale: removed with a warning, and the new apply proceeds", async () => {
    const { code, calls, stderr, files } = await runMain(["apply", "--confirm-within", "60s"], {
      env: { hosts_csv: "api.example" },
      nft,
      files: { [pending]: "an apply is waiting for confirmation (pid 7)\n" },
      operator: Promise.resolve("keep"),
    });
    expect(code).toBe(0);
    expect(stderr).toContain(`removing the stale ${pending}: pid 7 is not running (killed before its rollback?)`);
    expect(calls.map(described)).toEqual(["list table inet domainwall", "-f -"]);
    expect(files[pending]).toBeUndefined();
  });

  test("'confirm' with a stale pending file says nothing waits (exit 1) and removes it", async () => {
    for (const text of ["an apply is waiting for confirmation (pid 7)\n", "garbage\n"]) {
      const { code, stderr, files } = await runMain(["confirm"], { files: { [pending]: text } });
      expect(code).toBe(1);
      expect(stderr).toContain("no apply is waiting for confirmation");
      expect(stderr).toContain("stale");
      expect(files[pending]).toBeUndefined();
    }
  });

  test("the kernel lock is held from before the snapshot until after the rollback", async () => {
    const held = new Map<string, Holder>();
    const heldWhile: boolean[] = [];
    const spy = (call: RunCall) => (heldWhile.push(held.has("domainwall-lock")), nft(call));
    const { code, calls, locks } = await runMain(["apply", "--confirm-within", "1s"], {
      env: { hosts_csv: "api.example" },
      nft: spy,
      held,
    });
    expect(code).toBe(1);
    expect(calls.map(described)).toEqual(["list table inet domainwall", "-f -", "-f -"]); // snapshot, load, rollback
    expect(heldWhile).toEqual([true, true, true]);
    expect(locks.taken).toEqual(["domainwall-lock (apply)"]);
    expect(held.size).toBe(0);
  });

  test("a bad duration exits 2 before anything is touched", async () => {
    const { code, stderr, calls, probes } = await runMain(["apply", "--confirm-within", "soon"], { env: { hosts_csv: "api.example" } });
    expect(code).toBe(2);
    expect(stderr).toContain('--confirm-within: "soon" is not a duration');
    expect([calls, probes]).toEqual([[], 0]);
  });
});
