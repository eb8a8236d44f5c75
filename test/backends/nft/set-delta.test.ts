// watch's set update sends only what changed (renderNftSetDelta), and falls back to flushing and
// refilling the sets when the kernel does not hold what the loaded policy says. Against the stateful
// nft fake: what the sets hold after each update, and how many elements each transaction names.
import { describe, expect, test } from "bun:test";
import { createNftBackend } from "../../../src/backends/nft/backend.ts";
import { renderNftSetDelta } from "../../../src/backends/nft/render.ts";
import { cidr } from "../../../src/net/ip.ts";
import type { Policy } from "../../../src/policy/policy.ts";
import { POLICIES } from "../../fixtures/policies.ts";
import { fakeNft } from "../../support/fake-nft.ts";

const el = (text: string, ...sources: string[]) => ({ cidr: cidr(text), sources });
const base = POLICIES["egress-only"]!;
/** `base` with `count` single IPv4 addresses 203.0.113.<from>…, one /24 and the given extra elements. */
const withAddresses = (from: number, count: number, network = "192.0.2.0/24"): Policy => ({
  ...base,
  allowV4: [el(network, "--allow"), ...Array.from({ length: count }, (_, i) => el(`203.0.113.${from + i}`, `n${from + i}.example`))],
});
const SETS = ["allow_addr_v4", "allow_addr_v6", "allow_net64_v6", "allow_v4", "allow_v6"];
/** What each set should hold for `policy`, as the fake lists them (sorted). */
const expectedHeld = async (policy: Policy) => {
  const fresh = fakeNft(() => 0);
  await createNftBackend(fresh.executor).apply(policy);
  return SETS.map((set) => fresh.held(set));
};
/** The element lines a transaction names (one per element, each ends with a comma). */
const elementLines = (script: string) => script.split("\n").filter((line) => /^\t\S.*,/.test(line)).length;

describe("watch's set update: only what changed", () => {
  test("10 of 100 addresses replaced: one transaction names the 10 gone and the 10 new, and the sets hold the new policy", async () => {
    const kernel = fakeNft(() => 0);
    const backend = createNftBackend(kernel.executor);
    const [before, after] = [withAddresses(1, 100), withAddresses(11, 100)];
    await backend.apply(before);
    expect(await backend.updateSets(after, before)).toBeUndefined();
    expect(kernel.transactions.length).toBe(2);
    // The 20 changed, and in each non-empty hash set (v4, v6) one kept element deleted and added back.
    expect(elementLines(kernel.transactions[1]!)).toBe(20 + 2 * 2);
    expect(kernel.transactions[1]).not.toContain("flush set");
    expect(SETS.map((set) => kernel.held(set))).toEqual(await expectedHeld(after));
  });

  test("the same sets: no transaction at all", async () => {
    const kernel = fakeNft(() => 0);
    const backend = createNftBackend(kernel.executor);
    await backend.apply(withAddresses(1, 50));
    await backend.updateSets(withAddresses(1, 50), withAddresses(1, 50));
    expect(kernel.transactions.length).toBe(1);
    expect(renderNftSetDelta(withAddresses(1, 50), withAddresses(1, 50))).toBeUndefined();
  });

  test("an interval set that changed is flushed and filled (a merged range cannot be deleted in part)", async () => {
    const kernel = fakeNft(() => 0);
    const backend = createNftBackend(kernel.executor);
    const [before, after] = [withAddresses(1, 5, "192.0.2.0/24"), withAddresses(1, 5, "198.51.100.0/24")];
    await backend.apply(before);
    await backend.updateSets(after, before);
    expect(kernel.transactions[1]).toContain("flush set inet domainwall allow_v4");
    // The new network, and the one kept element of each hash set checked (deleted and added back).
    expect(elementLines(kernel.transactions[1]!)).toBe(1 + 2 * 2);
    expect(SETS.map((set) => kernel.held(set))).toEqual(await expectedHeld(after));
  });

  test("the kernel lost an element the change deletes: the transaction fails whole, and the sets are flushed and refilled instead", async () => {
    const kernel = fakeNft(() => 0);
    const backend = createNftBackend(kernel.executor);
    const [before, after] = [withAddresses(1, 20), withAddresses(6, 20)];
    await backend.apply(before);
    expect((await kernel.executor.run("delete element inet domainwall allow_addr_v4 { 203.0.113.1 }\n")).code).toBe(0);
    expect(await backend.updateSets(after, before)).toContain("No such file or directory");
    expect(kernel.transactions.at(-1)).toContain("flush set inet domainwall allow_addr_v4");
    expect(SETS.map((set) => kernel.held(set))).toEqual(await expectedHeld(after));
  });

  test("a set flushed from outside is refilled by the next update, even one that only adds (each changed set's delta first checks one element it keeps)", async () => {
    const kernel = fakeNft(() => 0);
    const backend = createNftBackend(kernel.executor);
    const before = withAddresses(1, 20);
    const after: Policy = { ...before, allowV4: [...before.allowV4, el("203.0.113.99", "new.example")] };
    await backend.apply(before);
    expect((await kernel.executor.run("flush set inet domainwall allow_addr_v4\n")).code).toBe(0);
    await backend.updateSets(after, before);
    expect(SETS.map((set) => kernel.held(set))).toEqual(await expectedHeld(after));
  });

  test("an element added behind watch's back goes at the next update that flushes, and a delta never re-adds what the policy dropped", async () => {
    const kernel = fakeNft(() => 0);
    const backend = createNftBackend(kernel.executor);
    const [before, after] = [withAddresses(1, 20), withAddresses(2, 20)];
    await backend.apply(before);
    await backend.updateSets(after, before);
    expect(kernel.held("allow_addr_v4")).not.toContain("203.0.113.1");
    // Without the loaded policy (a full set update), whatever else the set held goes.
    expect((await kernel.executor.run("add element inet domainwall allow_addr_v4 { 203.0.113.250 }\n")).code).toBe(0);
    await backend.updateSets(after);
    expect(kernel.held("allow_addr_v4")).not.toContain("203.0.113.250");
  });

  test("port sets that appear or go: the whole set update", () => {
    const withPorts = POLICIES["ports"] ?? Object.values(POLICIES).find((p) => p.allowPorts !== undefined)!;
    const script = renderNftSetDelta(base, withPorts)!;
    expect(script).toContain("flush set inet domainwall allow_ports_v4");
    expect(script).toContain("flush set inet domainwall allow_addr_v4");
  });

  test("a failing nft on the fallback is the update's error (the watch retries it as a full load)", async () => {
    const kernel = fakeNft(() => 0);
    const backend = createNftBackend(kernel.executor);
    await backend.apply(withAddresses(1, 5));
    kernel.failNext("Error: Could not process rule: Device or resource busy");
    kernel.failNext("Error: Could not process rule: Device or resource busy");
    const error = await backend.updateSets(withAddresses(2, 5), withAddresses(1, 5)).catch((e: unknown) => e);
    expect((error as Error).message).toContain("Device or resource busy");
    expect(kernel.held("allow_addr_v4")).toEqual(["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4", "203.0.113.5"]);
  });
});
