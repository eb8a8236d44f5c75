import { describe, expect, test } from "bun:test";
import { DomainwallError } from "../../../src/errors.ts";
import { createNftBackend as createWithExecutor } from "../../../src/backends/nft/backend.ts";
import { processExecutor } from "../../../src/backends/nft/process-executor.ts";
import type { Run } from "../../../src/run.ts";
import { renderNft, renderNftRemove, renderNftSetUpdate } from "../../../src/backends/nft/render.ts";
import { POLICIES } from "../../fixtures/policies.ts";
import { fakeRun } from "../../support/fake-run.ts";

const policy = POLICIES["egress-only"]!;
/** The backend over the nft binary's executor, with a fake process runner. */
const createNftBackend = (run: Run) => createWithExecutor(processExecutor(run));

describe("nft backend", () => {
  test("apply pipes exactly the rendered text to one `nft -f -`", async () => {
    const { run, calls } = fakeRun();
    await createNftBackend(run).apply(policy);
    expect(calls).toEqual([{ command: "nft", args: ["-f", "-"], stdin: renderNft(policy) }]);
  });

  test("updateSets pipes only the set update to one `nft -f -`", async () => {
    const { run, calls } = fakeRun();
    await createNftBackend(run).updateSets?.(policy);
    expect(calls).toEqual([{ command: "nft", args: ["-f", "-"], stdin: renderNftSetUpdate(policy) }]);
  });

  test("check uses --check with the same text", async () => {
    const { run, calls } = fakeRun();
    await createNftBackend(run).check(policy);
    expect(calls).toEqual([{ command: "nft", args: ["--check", "-f", "-"], stdin: renderNft(policy) }]);
  });

  test("a failing nft is an apply error carrying nft's stderr", async () => {
    const { run } = fakeRun(() => ({ code: 1, stderr: "Error: Could not process rule: Operation not permitted\n" }));
    const error = await createNftBackend(run).apply(policy).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DomainwallError);
    expect((error as DomainwallError).kind).toBe("runtime");
    expect((error as Error).message).toBe("nft -f failed: Error: Could not process rule: Operation not permitted");
  });

  test("remove deletes only our table", async () => {
    const { run, calls } = fakeRun();
    await createNftBackend(run).remove();
    expect(calls).toEqual([{ command: "nft", args: ["-f", "-"], stdin: renderNftRemove() }]);
  });

  test("status lists only our table and reads sets and counters", async () => {
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: "1.0.6" } },
        { table: { family: "inet", name: "domainwall" } },
        { chain: { family: "inet", table: "domainwall", name: "output", type: "filter", hook: "output", prio: 0, policy: "drop" } },
        { counter: { name: "output_dropped", packets: 7, bytes: 420 } },
        { set: { name: "allow_v4", elem: ["203.0.113.10", { prefix: { addr: "192.0.2.0", len: 24 } }] } },
        { set: { name: "allow_v6" } },
      ],
    });
    const { run, calls } = fakeRun(() => ({ stdout: json }));
    expect(await createNftBackend(run).status()).toEqual({
      loaded: true,
      sets: [
        { name: "allow_v4", elements: 2 },
        { name: "allow_v6", elements: 0 },
      ],
      counters: [{ name: "output_dropped", packets: 7, bytes: 420 }],
    });
    expect(calls[0]?.args).toEqual(["-j", "list", "table", "inet", "domainwall"]);
  });

  test.each([
    { name: "the output chain missing", chains: [], problems: ["nft: the output chain of table inet domainwall is missing: nothing filters outgoing traffic"] },
    { name: "the output chain without its hook", chains: [{ name: "output" }], problems: ["nft: the output chain of table inet domainwall has no output hook: nothing filters outgoing traffic"] },
    { name: "the input chain without its hook", chains: [{ name: "output", hook: "output" }, { name: "input" }], problems: ["nft: the input chain of table inet domainwall has no input hook: nothing filters incoming traffic"] },
    { name: "both hooked", chains: [{ name: "output", hook: "output" }, { name: "input", hook: "input" }], problems: undefined },
  ])("status reports chains missing their hooks as not enforcing: $name", async ({ chains, problems }) => {
    const json = JSON.stringify({ nftables: [{ table: { family: "inet", name: "domainwall" } }, ...chains.map((chain) => ({ chain: { family: "inet", table: "domainwall", ...chain } }))] });
    expect(await createNftBackend(fakeRun(() => ({ stdout: json })).run).status()).toEqual({ loaded: true, sets: [], counters: [], ...(problems ? { problems } : {}) });
  });

  test("status of a missing table is 'not loaded'; other errors are errors", async () => {
    const missing = fakeRun(() => ({ code: 1, stderr: "Error: No such file or directory\nlist table inet domainwall\n" }));
    expect(await createNftBackend(missing.run).status()).toEqual({ loaded: false });
    const denied = fakeRun(() => ({ code: 1, stderr: "Error: Operation not permitted" }));
    await expect(createNftBackend(denied.run).status()).rejects.toThrow("nft list table failed: Error: Operation not permitted");
  });
});
