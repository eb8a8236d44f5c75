import { describe, expect, test } from "bun:test";
import { createNftExecutor, LIBNFTABLES_ENV } from "../../../src/backends/nft/choose-executor.ts";
import { probeNetlink } from "../../../src/backends/nft/libnftables.ts";
import { fakeRun } from "../../support/fake-run.ts";

describe("createNftExecutor", () => {
  test("libnftables in process when the library loads (nothing runs until the first script)", () => {
    const { run, calls } = fakeRun();
    const chosen = createNftExecutor({ run, env: {} });
    expect(chosen.executor.name).toBe("libnftables");
    expect(chosen.reason).toBe("nft transactions run in process through libnftables.so.1");
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
    expect(chosen.reason).toBe("nft transactions run the nft binary: libnftables.so.1 loads, but cannot open a netfilter netlink socket: EPERM");
    await chosen.executor.run("list tables\n");
    expect(calls).toEqual([{ command: "nft", args: ["-f", "-"], stdin: "list tables\n" }]);
  });

  test("libnftables when the probe opens the socket; no probe when the library does not load", () => {
    let probed = 0;
    const probe = () => (probed++, undefined);
    expect(createNftExecutor({ run: fakeRun().run, env: {}, probe }).executor.name).toBe("libnftables");
    expect(probed).toBe(1);
    expect(createNftExecutor({ run: fakeRun().run, env: { [LIBNFTABLES_ENV]: "/nonexistent/libnftables.so.1" }, probe }).executor.name).toBe("nft");
    expect(probed).toBe(1);
  });

  test("the real probe opens a netlink socket here", () => {
    expect(probeNetlink()).toBeUndefined();
  });
});
