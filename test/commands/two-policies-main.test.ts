import { describe, expect, test } from "bun:test";
import type { NftExecutor } from "../../src/backends/nft/executor.ts";
import { processExecutor } from "../../src/backends/nft/process-executor.ts";
import type { World } from "../../src/world.ts";
import type { RunResult } from "../../src/run.ts";
import { runMain } from "../support/run-main.ts";
import { type RunCall } from "../support/fake-run.ts";

/** A run without the nft binary: the other tools as the world has them. */
const noNftBinary =
  () =>
  (world: World): World["run"] =>
  async (command, args, stdin) => {
    if (command === "nft") throw Object.assign(new Error('Executable not found in $PATH: "nft"'), { code: "ENOENT" });
    return world.run(command, args, stdin);
  };

describe("two policies at once: every backend that works here is seen", () => {
  /** iptables-legacy-save output with domainwall's output chain loaded and jumped to. */
  const OURS =
    "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOMAINWALL-OUTPUT - [0:0]\n[3:180] -A OUTPUT -j DOMAINWALL-OUTPUT\n[1:60] -A DOMAINWALL-OUTPUT -j DROP\nCOMMIT\n";
  /** The kernel's view as the fakes see it: iptables holds our chains until a restore removes them. */
  function kernel(iptablesLoaded: boolean) {
    const order: string[] = [];
    const loaded = { iptables: iptablesLoaded, ip6tables: iptablesLoaded };
    const iptables = (call: RunCall): Partial<RunResult> => {
      const family = call.command.startsWith("ip6") ? "ip6tables" : "iptables";
      if (call.command.endsWith("-restore")) {
        order.push(`${call.command} ${call.stdin?.includes("-X DOMAINWALL-OUTPUT") ? "(remove)" : ""}`.trim());
        if (call.stdin?.includes("-X DOMAINWALL-OUTPUT")) loaded[family] = false;
        return {};
      }
      return { stdout: loaded[family] && call.args.includes("-c") ? OURS : "*filter\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n" };
    };
    const nft = (call: RunCall): Partial<RunResult> => {
      const listing = call.args.includes("list") || call.stdin?.startsWith("list table") === true;
      if (!listing) order.push(`nft ${call.stdin?.startsWith("#!") ? "load" : (call.stdin ?? "").split("\n")[0]}`);
      return listing ? { code: 1, stderr: "Error: No such file or directory" } : {};
    };
    return { order, iptables, nft, loaded: () => loaded.iptables || loaded.ip6tables };
  }

  test("apply with nft loads its table first, then removes the iptables-legacy chains loaded before (never open in between)", async () => {
    const k = kernel(true);
    const { code, stderr } = await runMain(["apply"], { env: { hosts_csv: "api.example" }, nft: k.nft, iptables: k.iptables });
    expect(code).toBe(0);
    expect(k.order).toEqual(["nft load", "iptables-legacy-restore (remove)", "ip6tables-legacy-restore (remove)"]);
    expect(k.loaded()).toBe(false);
    expect(stderr).toContain("removed the iptables-legacy policy loaded before: nft now holds domainwall's only policy");
  });

  test("remove and status with --backend nft still see and handle the iptables-legacy chains", async () => {
    const k = kernel(true);
    const status = await runMain(["status", "--backend", "nft"], { nft: k.nft, iptables: k.iptables });
    expect([status.stderr, status.stdout]).toEqual([expect.anything(), expect.stringContaining("domainwall is loaded (iptables-legacy)")]);
    expect(status.stdout).not.toContain("nothing loaded");
    const removed = await runMain(["remove", "--backend", "nft"], { nft: k.nft, iptables: k.iptables });
    expect(removed.code).toBe(0);
    expect(removed.stderr).toContain("removed domainwall's rules (iptables-legacy)");
    expect(k.loaded()).toBe(false);
  });

  test("status names both when two are loaded", async () => {
    const k = kernel(true);
    const nftLoaded = (call: RunCall): Partial<RunResult> =>
      call.args.includes("-j")
        ? {
            stdout: JSON.stringify({
              nftables: [
                { table: { family: "inet", name: "domainwall" } },
                { chain: { family: "inet", table: "domainwall", name: "output", hook: "output" } },
              ],
            }),
          }
        : {};
    const { stdout } = await runMain(["status"], { nft: nftLoaded, iptables: k.iptables });
    expect(stdout).toContain("TWO domainwall policies are loaded (nft and iptables-legacy)");
  });

  test("iptables-legacy requested, no nft binary, nft's one executor is libnftables in process: the nft table loaded before is seen and removed through it", async () => {
    const k = kernel(false);
    const run = noNftBinary();
    const inProcess: string[] = [];
    const library: NftExecutor = {
      name: "libnftables",
      run: async (script) => (
        inProcess.push(script.split("\n")[0] ?? ""),
        script.startsWith("list table")
          ? { code: 0, stdout: "table inet domainwall {\n}\n", stderr: "" }
          : { code: 0, stdout: "", stderr: "" }
      ),
    };
    const { code, stderr, calls } = await runMain(["apply", "--backend", "iptables-legacy", "--log-level", "debug"], {
      env: { hosts_csv: "api.example" },
      overrides: (world) => ({
        run: run(world),
        nft: () => ({ executor: library, reason: "nft transactions run in process through a fake" }),
      }),
      iptables: k.iptables,
    });
    expect(code).toBe(0);
    expect(calls).toEqual([]); // no nft binary ran: it is missing
    expect(k.order).toEqual(["iptables-legacy-restore", "ip6tables-legacy-restore"]);
    expect(inProcess).toEqual(["list tables", "list table inet domainwall", "table inet domainwall"]); // probe, snapshot, delete
    expect(stderr).toContain("removed the nft policy loaded before");
  });

  test("with nft missing from PATH and no libnftables: auto chooses iptables-legacy, and a warning says nft cannot be checked", async () => {
    const k = kernel(false);
    const noNft = (world: World): Partial<World> => {
      const missing = noNftBinary()(world);
      return { run: missing, nft: () => ({ executor: processExecutor(missing), reason: "nft transactions run the nft binary: a fake" }) };
    };
    const blind = await runMain(["apply"], { env: { hosts_csv: "api.example" }, overrides: noNft, iptables: k.iptables });
    expect(blind.code).toBe(0);
    expect(blind.stderr).toContain("backend iptables-legacy (auto: nft is not usable");
    expect(k.order).toEqual(["iptables-legacy-restore", "ip6tables-legacy-restore"]);
    expect(blind.stderr).toContain('cannot check nft (Executable not found in $PATH: "nft")');
    expect(blind.stderr).toContain("if one is, it stays loaded beside this one");
  });

  test("remove --config FILE: the file's backend is used, its other keys ignored", async () => {
    const k = kernel(true);
    const file = 'backend = "iptables-legacy"\nhosts = ["bad;name"]\nports = [22]\n';
    const { code, stderr } = await runMain(["remove", "--config", "/etc/domainwall.toml", "--log-level", "debug"], {
      nft: k.nft,
      files: { "/etc/domainwall.toml": file },
      iptables: k.iptables,
    });
    expect([code, stderr]).toEqual([0, expect.stringContaining("backend iptables-legacy (requested)")]);
    expect(k.loaded()).toBe(false);
  });
});
