import { describe, expect, test } from "bun:test";
import { BINARY_FROM_CHARS, createNftExecutor, LIBNFTABLES_ENV, routeBySize } from "../../../src/backends/nft/choose-executor.ts";
import type { NftExecutor } from "../../../src/backends/nft/executor.ts";
import { probeNetlink } from "../../../src/backends/nft/libnftables.ts";
import { fakeRun } from "../../support/fake-run.ts";

describe("createNftExecutor", () => {
  test("libnftables in process when the library loads (nothing runs until the first script)", () => {
    const { run, calls } = fakeRun();
    const chosen = createNftExecutor({ run, env: {} });
    expect(chosen.executor.name).toBe("libnftables");
    expect(chosen.reason).toBe(
      "nft transactions run in process through libnftables.so.1 (scripts of 1 MiB or more through the nft binary when it runs)",
    );
    expect(calls).toEqual([]);
  });

  test(`the nft binary when ${LIBNFTABLES_ENV} names a library that does not load, and the reason says why`, async () => {
    const { run, calls } = fakeRun();
    const chosen = createNftExecutor({ run, env: { [LIBNFTABLES_ENV]: "/nonexistent/libnftables.so.1" } });
    expect(chosen.executor.name).toBe("nft");
    expect(chosen.reason).toStartWith("nft transactions run the nft binary: cannot load /nonexistent/libnftables.so.1: ");
    await chosen.executor.run("table inet domainwall\n", { check: true });
    expect(calls).toEqual([{ command: "nft", args: ["--check", "-f", "-"], stdin: "table inet domainwall\n" }]);
  });

  test(`an empty ${LIBNFTABLES_ENV} is the default library`, () => {
    expect(createNftExecutor({ run: fakeRun().run, env: { [LIBNFTABLES_ENV]: "" } }).executor.name).toBe("libnftables");
  });

  test("the nft binary when the netlink probe fails (libnftables would exit() the process), and the reason says why", async () => {
    const { run, calls } = fakeRun();
    let probed = 0;
    const probe = () => (probed++, "cannot open a netfilter netlink socket: EPERM");
    const chosen = createNftExecutor({ run, env: {}, probe });
    expect(probed).toBe(1);
    expect(chosen.executor.name).toBe("nft");
    expect(chosen.reason).toBe(
      "nft transactions run the nft binary: libnftables.so.1 loads, but cannot open a netfilter netlink socket: EPERM",
    );
    await chosen.executor.run("list tables\n");
    expect(calls).toEqual([{ command: "nft", args: ["-f", "-"], stdin: "list tables\n" }]);
  });

  test("libnftables when the probe opens the socket; no probe when the library does not load", () => {
    let probed = 0;
    const probe = () => (probed++, undefined);
    expect(createNftExecutor({ run: fakeRun().run, env: {}, probe }).executor.name).toBe("libnftables");
    expect(probed).toBe(1);
    expect(
      createNftExecutor({ run: fakeRun().run, env: { [LIBNFTABLES_ENV]: "/nonexistent/libnftables.so.1" }, probe }).executor.name,
    ).toBe("nft");
    expect(probed).toBe(1);
  });

  test("the real probe opens a netlink socket here", () => {
    expect(probeNetlink()).toBeUndefined();
  });
});

/** An executor that records what it ran, or throws as Bun.spawn does for a missing executable. */
function recording(name: NftExecutor["name"], missing = false) {
  const runs: { script: string; check: boolean }[] = [];
  const executor: NftExecutor = {
    name,
    run: async (script, options = {}) => {
      if (missing) throw new Error("cannot run nft: Executable not found in $PATH");
      runs.push({ script: script.slice(0, 20), check: options.check === true });
      return { code: 0, stdout: name, stderr: "" };
    },
  };
  return { executor, runs };
}

describe("routeBySize", () => {
  const large = `table inet domainwall {\n${"#".repeat(BINARY_FROM_CHARS)}\n}\n`;

  test("short scripts run in process, scripts of 1 MiB or more through the binary, options passed on", async () => {
    const library = recording("libnftables");
    const binary = recording("nft");
    const routed = routeBySize(library.executor, binary.executor);
    expect(routed.name).toBe("libnftables");
    expect((await routed.run("table inet domainwall\n")).stdout).toBe("libnftables");
    expect((await routed.run(large, { check: true })).stdout).toBe("nft");
    expect((await routed.run("list table inet domainwall", { json: true })).stdout).toBe("libnftables");
    expect(library.runs).toEqual([
      { script: "table inet domainwal", check: false },
      { script: "list table inet doma", check: false },
    ]);
    expect(binary.runs).toEqual([{ script: "table inet domainwal", check: true }]);
  });

  test("without the nft binary a large script runs in process, and so do later ones", async () => {
    const library = recording("libnftables");
    const routed = routeBySize(library.executor, recording("nft", true).executor);
    expect((await routed.run(large)).stdout).toBe("libnftables");
    expect((await routed.run(large)).stdout).toBe("libnftables");
    expect(library.runs).toHaveLength(2);
  });
});
