import { expect, test } from "bun:test";
import { runtimeError, DomainwallError } from "../../src/errors.ts";
import { otherBackends, selectBackend } from "../../src/backends/select.ts";
import type { BackendChoice } from "../../src/config/options.ts";
import { settingOf } from "../../src/config/settings.ts";
import { parseConfig } from "../../src/config/config.ts";
import type { NftExecutor } from "../../src/backends/nft/executor.ts";
import { processExecutor } from "../../src/backends/nft/process-executor.ts";
import type { Run } from "../../src/run.ts";
import { fakeRun, type RunCall } from "../support/fake-run.ts";

/** The tools with the nft binary as the executor, counting how often the executor was asked for. */
const binary = (run: Run) => {
  const made = { count: 0 };
  return { tools: { run, nft: () => (made.count++, processExecutor(run)) }, made };
};

type World = { nft: "ok" | "missing" | "kernel says no"; iptables: "ok" | "missing" };

const machine = (world: World) => (call: RunCall) => {
  if (call.command === "nft") {
    if (world.nft === "missing") throw runtimeError("cannot run nft: Executable not found in $PATH");
    return world.nft === "ok" ? {} : { code: 1, stderr: "Error: Could not process rule: Operation not supported" };
  }
  if (world.iptables === "missing") throw runtimeError(`cannot run ${call.command}: Executable not found in $PATH`);
  return {};
};

test.each([
  { choice: "auto", world: { nft: "ok", iptables: "ok" }, backend: "nft", reason: "auto: nft works" },
  {
    choice: "auto",
    world: { nft: "missing", iptables: "ok" },
    backend: "iptables-legacy",
    reason: "auto: nft is not usable (cannot run nft",
  },
  { choice: "auto", world: { nft: "kernel says no", iptables: "ok" }, backend: "iptables-legacy", reason: "Operation not supported" },
  { choice: "nft", world: { nft: "ok", iptables: "missing" }, backend: "nft", reason: "requested" },
  { choice: "iptables-legacy", world: { nft: "ok", iptables: "ok" }, backend: "iptables-legacy", reason: "requested" },
] as { choice: BackendChoice; world: World; backend: string; reason: string }[])(
  "$choice with nft $world.nft, iptables $world.iptables → $backend",
  async ({ choice, world, backend, reason }) => {
    const { run, calls } = fakeRun(machine(world));
    const selected = await selectBackend(choice, binary(run).tools, { probe: true });
    expect(selected.backend.name as string).toBe(backend);
    expect(selected.reason).toContain(reason);
    // nft is asked first, and with a read: a checked transaction costs the kernel an RCU grace period.
    if (choice !== "iptables-legacy") expect(calls[0]).toEqual({ command: "nft", args: ["-f", "-"], stdin: "list tables\n" });
  },
);

test.each([
  { choice: "auto", world: { nft: "missing", iptables: "missing" }, message: "no backend works here: tried nft (cannot run nft" },
  { choice: "nft", world: { nft: "missing", iptables: "ok" }, message: "--backend nft does not work here" },
  { choice: "iptables-legacy", world: { nft: "ok", iptables: "missing" }, message: "--backend iptables-legacy does not work here" },
] as { choice: BackendChoice; world: World; message: string }[])(
  "$choice fails when it cannot serve (never a silent switch)",
  async ({ choice, world, message }) => {
    const error = await selectBackend(choice, binary(fakeRun(machine(world)).run).tools, { probe: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DomainwallError);
    expect((error as Error).message).toContain(message);
  },
);

test("render does not probe: auto means nft, and an explicit choice is honoured", async () => {
  const { run, calls } = fakeRun();
  expect((await selectBackend("auto", binary(run).tools, { probe: false })).backend.name).toBe("nft");
  const { tools, made } = binary(run);
  expect((await selectBackend("iptables-legacy", tools, { probe: false })).backend.name).toBe("iptables-legacy");
  expect(calls).toEqual([]);
  expect(made.count).toBe(0); // iptables: libnftables is not even loaded
});

/** An in-process executor that records its scripts and answers from `respond`. */
function inProcess(respond: (script: string) => { code: number; stderr?: string } | Error) {
  const runs: { script: string; check: boolean }[] = [];
  const executor: NftExecutor = {
    name: "libnftables",
    run: async (script, options = {}) => {
      runs.push({ script, check: options.check === true });
      const answer = respond(script);
      if (answer instanceof Error) throw answer;
      return { code: answer.code, stdout: "", stderr: answer.stderr ?? "" };
    },
  };
  return { executor, runs };
}

test("the nft probe and every later transaction go through the executor it is given, never an nft process", async () => {
  const { run, calls } = fakeRun();
  const { executor, runs } = inProcess(() => ({ code: 0 }));
  const { backend, reason } = await selectBackend("auto", { run, nft: () => executor }, { probe: true });
  expect(reason).toBe("auto: nft works in this network namespace");
  await backend.remove();
  expect(runs).toEqual([
    { script: "list tables\n", check: false },
    { script: "table inet domainwall\ndelete table inet domainwall\n", check: false },
  ]);
  expect(calls).toEqual([]);
});

test.each([
  {
    name: "the kernel refuses",
    answer: { code: 1, stderr: "Error: Could not process rule: Operation not supported\n" },
    why: "libnftables --check: Error: Could not process rule: Operation not supported",
  },
  {
    name: "the library fails",
    answer: new Error("libnftables: cannot open a netfilter netlink socket: EPERM"),
    why: "libnftables: cannot open a netfilter netlink socket: EPERM",
  },
])("a libnftables probe that fails ($name) is named: auto falls back to iptables-legacy, --backend nft fails", async ({ answer, why }) => {
  const { run } = fakeRun();
  const { executor } = inProcess(() => answer);
  const auto = await selectBackend("auto", { run, nft: () => executor }, { probe: true });
  expect(auto.backend.name as string).toBe("iptables-legacy");
  expect(auto.reason).toBe(`auto: nft is not usable (${why}); iptables-legacy works`);
  const explicit = await selectBackend("nft", { run, nft: () => executor }, { probe: true }).catch((e: unknown) => e);
  expect((explicit as Error).message).toBe(`--backend nft does not work here: ${why}`);
});

test.each([
  { name: "refused", read: { code: 1, stderr: "Error: Could not process rule: Operation not permitted\n" } },
  { name: "throws", read: new Error("libnftables: cannot open a netfilter netlink socket: EPERM") },
])("when the read probe fails ($name), the checked transaction decides: it passes, nft is chosen", async ({ read }) => {
  const { run } = fakeRun();
  const { executor, runs } = inProcess((script) => (script === "list tables\n" ? read : { code: 0 }));
  const { backend, reason } = await selectBackend("auto", { run, nft: () => executor }, { probe: true });
  expect(backend.name).toBe("nft");
  expect(reason).toBe("auto: nft works in this network namespace");
  expect(runs).toEqual([
    { script: "list tables\n", check: false },
    { script: "table inet domainwall_probe\n", check: true },
  ]);
});

test("the choice is validated", () => {
  const choice = (from?: string, value?: string) =>
    parseConfig(new Map(from === undefined ? [] : [["backend", settingOf("backend", from, value ?? "")]]), "remove").config.backend;
  expect(choice()).toBe("auto");
  expect(choice("DOMAINWALL_BACKEND", "iptables-legacy")).toBe("iptables-legacy");
  expect(() => choice("--backend", "ipset")).toThrow('--backend: "ipset" must be one of auto, nft, iptables-legacy');
});

/** Beside nft, nft's executor is never asked for. */
const unused = (): never => {
  throw new Error("nft's executor was asked for beside nft");
};

test("beside nft, iptables-legacy is listed without running a tool when the kernel says its filter tables are empty; its snapshot asks again", async () => {
  const { run, calls } = fakeRun();
  let empty = true;
  const other = await otherBackends("nft", run, { nft: unused, filterEmpty: async () => empty });
  expect(other.backends.map((b) => b.name)).toEqual(["iptables-legacy"]);
  expect(await other.backends[0]?.snapshot()).toBeUndefined();
  expect(calls).toEqual([]);
  empty = false; // something was loaded meanwhile (before the caller took the lock): the tools read it
  await other.backends[0]?.snapshot();
  expect(calls.map((c) => c.command)).toEqual(["iptables-legacy-save", "ip6tables-legacy-save"]);
});

test.each([
  { name: "holding something", filterEmpty: async () => false },
  { name: "not told", filterEmpty: undefined },
])("beside nft, with the kernel's filter tables $name, the iptables-legacy tools are probed as before", async ({ filterEmpty }) => {
  const works = fakeRun();
  const found = await otherBackends("nft", works.run, { nft: unused, ...(filterEmpty && { filterEmpty }) });
  expect(found.backends.map((b) => b.name)).toEqual(["iptables-legacy"]);
  expect(works.calls.map((c) => `${c.command} ${c.args.join(" ")}`)).toEqual([
    "iptables-legacy-save -t filter",
    "ip6tables-legacy-save -t filter",
  ]);
  const missing = fakeRun(machine({ nft: "ok", iptables: "missing" }));
  expect((await otherBackends("nft", missing.run, { nft: unused, ...(filterEmpty && { filterEmpty }) })).backends).toEqual([]);
});
