import { expect, test } from "bun:test";
import { runtimeError, DomainwallError } from "../../src/errors.ts";
import { selectBackend } from "../../src/backends/select.ts";
import type { BackendChoice } from "../../src/cli/options.ts";
import { settingOf } from "../../src/cli/settings.ts";
import { parseConfig } from "../../src/config/config.ts";
import { fakeRun, type RunCall } from "../support/fake-run.ts";

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
  { choice: "auto", world: { nft: "missing", iptables: "ok" }, backend: "iptables-legacy", reason: "auto: nft is not usable (cannot run nft" },
  { choice: "auto", world: { nft: "kernel says no", iptables: "ok" }, backend: "iptables-legacy", reason: "Operation not supported" },
  { choice: "nft", world: { nft: "ok", iptables: "missing" }, backend: "nft", reason: "requested" },
  { choice: "iptables-legacy", world: { nft: "ok", iptables: "ok" }, backend: "iptables-legacy", reason: "requested" },
] as { choice: BackendChoice; world: World; backend: string; reason: string }[])("$choice with nft $world.nft, iptables $world.iptables → $backend", async ({ choice, world, backend, reason }) => {
  const { run, calls } = fakeRun(machine(world));
  const selected = await selectBackend(choice, run, { probe: true });
  expect(selected.backend.name as string).toBe(backend);
  expect(selected.reason).toContain(reason);
  if (choice !== "iptables-legacy") expect(calls[0]).toEqual({ command: "nft", args: ["--check", "-f", "-"], stdin: "table inet domainwall_probe\n" });
});

test.each([
  { choice: "auto", world: { nft: "missing", iptables: "missing" }, message: "no backend works here: tried nft (cannot run nft" },
  { choice: "nft", world: { nft: "missing", iptables: "ok" }, message: "--backend nft does not work here" },
  { choice: "iptables-legacy", world: { nft: "ok", iptables: "missing" }, message: "--backend iptables-legacy does not work here" },
] as { choice: BackendChoice; world: World; message: string }[])("$choice fails when it cannot serve (never a silent switch)", async ({ choice, world, message }) => {
  const error = await selectBackend(choice, fakeRun(machine(world)).run, { probe: true }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(DomainwallError);
  expect((error as Error).message).toContain(message);
});

test("render does not probe: auto means nft, and an explicit choice is honoured", async () => {
  const { run, calls } = fakeRun();
  expect((await selectBackend("auto", run, { probe: false })).backend.name).toBe("nft");
  expect((await selectBackend("iptables-legacy", run, { probe: false })).backend.name).toBe("iptables-legacy");
  expect(calls).toEqual([]);
});

test("the choice is validated", () => {
  const choice = (from?: string, value?: string) =>
    parseConfig(new Map(from === undefined ? [] : [["backend", settingOf("backend", from, value ?? "")]]), "remove").config.backend;
  expect(choice()).toBe("auto");
  expect(choice("DOMAINWALL_BACKEND", "iptables-legacy")).toBe("iptables-legacy");
  expect(() => choice("--backend", "ipset")).toThrow('--backend: "ipset" must be one of auto, nft, iptables-legacy');
});
