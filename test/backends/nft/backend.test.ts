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
    const { run } = fakeRun(() => ({ code: 1, stderr: "Error: Could not process rule: Device or resource busy\n" }));
    const error = await createNftBackend(run)
      .apply(policy)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DomainwallError);
    expect((error as DomainwallError).kind).toBe("runtime");
    expect((error as Error).message).toBe("nft -f failed: Error: Could not process rule: Device or resource busy");
  });

  test("without the privilege: one line saying what is needed; nft's own output is the detail", async () => {
    const stderr = "/dev/stdin:1:1-28: Error: Could not process rule: Operation not permitted\ntable inet domainwall\n^^^^^^^^\n";
    const { run } = fakeRun(() => ({ code: 1, stderr }));
    for (const call of [
      (b: ReturnType<typeof createNftBackend>) => b.apply(policy),
      (b: ReturnType<typeof createNftBackend>) => b.status(),
    ]) {
      const error = (await call(createNftBackend(run)).catch((e: unknown) => e)) as DomainwallError;
      expect([error.kind, error.message]).toEqual([
        "runtime",
        "domainwall needs root with CAP_NET_ADMIN in this network namespace (nft: Operation not permitted)",
      ]);
      expect(error.detail).toContain("^^^^^^^^");
    }
  });

  test("remove deletes only our table", async () => {
    const { run, calls } = fakeRun();
    await createNftBackend(run).remove();
    expect(calls).toEqual([{ command: "nft", args: ["-f", "-"], stdin: renderNftRemove() }]);
  });

  test("status lists only our table and reads sets, counters, allowed networks, DNS and denied destinations", async () => {
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: "1.0.6" } },
        { table: { family: "inet", name: "domainwall" } },
        { chain: { family: "inet", table: "domainwall", name: "output", type: "filter", hook: "output", prio: 0, policy: "drop" } },
        { counter: { name: "output_dropped", packets: 7, bytes: 420 } },
        {
          set: {
            name: "allow_v4",
            elem: ["203.0.113.10", { prefix: { addr: "192.0.2.0", len: 24 } }, { range: ["198.51.100.7", "198.51.100.9"] }],
          },
        },
        { set: { name: "allow_v6" } },
        {
          set: {
            name: "allow_ports_v4",
            elem: [
              { concat: ["198.51.100.8", "tcp", { range: [8000, 8100] }] },
              { concat: [{ prefix: { addr: "203.0.113.0", len: 24 } }, "tcp", 443] },
              { concat: ["198.51.100.8", "udp", 123] },
            ],
          },
        },
        {
          set: {
            name: "denied_out_v4",
            timeout: 3600,
            elem: [
              { elem: { val: { concat: ["203.0.113.20", "tcp", 80] }, expires: 3590, counter: { packets: 2, bytes: 120 } } },
              { elem: { val: { concat: ["203.0.113.21", "icmp", 0] }, expires: 3000, counter: { packets: 5, bytes: 420 } } },
            ],
          },
        },
        {
          set: {
            name: "denied_in_v6",
            timeout: 3600,
            elem: [{ elem: { val: { concat: ["2001:db8::9", 132, 5000] }, counter: { packets: 1, bytes: 60 } } }],
          },
        },
        {
          rule: {
            chain: "output",
            expr: [
              { match: { op: "==", left: { meta: { key: "l4proto" } }, right: { set: ["tcp", "udp"] } } },
              { match: { op: "==", left: { payload: { protocol: "th", field: "dport" } }, right: 53 } },
              {
                match: {
                  op: "==",
                  left: { payload: { protocol: "ip", field: "daddr" } },
                  right: { set: ["198.51.100.2", "198.51.100.3"] },
                },
              },
              { accept: null },
            ],
          },
        },
        {
          rule: {
            chain: "output",
            expr: [
              { match: { op: "==", left: { meta: { key: "l4proto" } }, right: { set: ["tcp", "udp"] } } },
              { match: { op: "==", left: { payload: { protocol: "th", field: "dport" } }, right: 53 } },
              { match: { op: "==", left: { payload: { protocol: "ip6", field: "daddr" } }, right: "2001:db8:1::2" } },
              { accept: null },
            ],
          },
        },
      ],
    });
    const { run, calls } = fakeRun(() => ({ stdout: json }));
    expect(await createNftBackend(run).status()).toEqual({
      loaded: true,
      enforcing: true,
      acceptsLoopback: false,
      sets: [
        { name: "allow_v4", elements: 3 },
        { name: "allow_v6", elements: 0 },
        { name: "allow_ports_v4", elements: 3 },
      ],
      counters: [{ name: "output_dropped", packets: 7, bytes: 420 }],
      allowed: [
        { network: "203.0.113.10", ports: "all" },
        { network: "192.0.2.0/24", ports: "all" },
        { network: "198.51.100.7-198.51.100.9", ports: "all" },
        {
          network: "198.51.100.8",
          ports: [
            { protocol: "tcp", first: 8000, last: 8100 },
            { protocol: "udp", first: 123, last: 123 },
          ],
        },
        { network: "203.0.113.0/24", ports: [{ protocol: "tcp", first: 443, last: 443 }] },
      ],
      dns: ["198.51.100.2", "198.51.100.3", "2001:db8:1::2"],
      denied: [
        { address: "203.0.113.21", protocol: "icmp", port: 0, direction: "out", packets: 5, bytes: 420, lastSeenSecondsAgo: 600 },
        { address: "203.0.113.20", protocol: "tcp", port: 80, direction: "out", packets: 2, bytes: 120, lastSeenSecondsAgo: 10 },
        { address: "2001:db8::9", protocol: "132", port: 5000, direction: "in", packets: 1, bytes: 60 },
      ],
      deniedFull: [],
    });
    expect(calls[0]?.args).toEqual(["-j", "list", "table", "inet", "domainwall"]);
  });

  test("status refuses a kernel listing whose denied element is not an address, protocol and port", async () => {
    const hostile = (concat: unknown[]) =>
      JSON.stringify({ nftables: [{ set: { name: "denied_out_v4", timeout: 3600, elem: [{ elem: { val: { concat } } }] } }] });
    for (const concat of [
      ["203.0.113.20\n# evil", "tcp", 80],
      ["203.0.113.20", "tcp reset", 80],
      ["203.0.113.20", "tcp", 70000],
    ]) {
      const { run } = fakeRun(() => ({ stdout: hostile(concat) }));
      await expect(createNftBackend(run).status()).rejects.toThrow("nft -j printed a denied element");
    }
  });

  test("status refuses a kernel listing whose port set element is not a network, protocol and port range", async () => {
    const hostile = (concat: unknown[]) => JSON.stringify({ nftables: [{ set: { name: "allow_ports_v4", elem: [{ concat }] } }] });
    for (const concat of [
      ["203.0.113.20\n# evil", "tcp", 80],
      ["203.0.113.20", "sctp", 80],
      ["203.0.113.20", "tcp", 70000],
      ["203.0.113.20", "tcp", { range: [90, 80] }],
    ]) {
      const { run } = fakeRun(() => ({ stdout: hostile(concat) }));
      await expect(createNftBackend(run).status()).rejects.toThrow("nft -j printed");
    }
  });

  test("status: audit mode is not enforcing; DNS without a destination match goes anywhere", async () => {
    const json = JSON.stringify({
      nftables: [
        { counter: { name: "output_audited", packets: 1, bytes: 60 } },
        {
          rule: {
            chain: "output",
            expr: [{ match: { op: "==", left: { payload: { protocol: "th", field: "dport" } }, right: 53 } }, { accept: null }],
          },
        },
      ],
    });
    const status = await createNftBackend(fakeRun(() => ({ stdout: json })).run).status();
    expect(status.loaded && { enforcing: status.enforcing, dns: status.dns }).toEqual({ enforcing: false, dns: "any" });
  });

  test.each([
    {
      name: "the output chain missing",
      chains: [],
      problems: ["nft: the output chain of table inet domainwall is missing: nothing filters outgoing traffic"],
    },
    {
      name: "the output chain without its hook",
      chains: [{ name: "output" }],
      problems: ["nft: the output chain of table inet domainwall has no output hook: nothing filters outgoing traffic"],
    },
    {
      name: "the input chain without its hook",
      chains: [{ name: "output", hook: "output" }, { name: "input" }],
      problems: ["nft: the input chain of table inet domainwall has no input hook: nothing filters incoming traffic"],
    },
    {
      name: "both hooked",
      chains: [
        { name: "output", hook: "output" },
        { name: "input", hook: "input" },
      ],
      problems: undefined,
    },
  ])("status reports chains missing their hooks as not enforcing: $name", async ({ chains, problems }) => {
    const json = JSON.stringify({
      nftables: [
        { table: { family: "inet", name: "domainwall" } },
        ...chains.flatMap((chain) => [
          { chain: { family: "inet", table: "domainwall", ...chain } },
          { rule: { family: "inet", table: "domainwall", chain: chain.name, expr: [] } },
        ]),
      ],
    });
    const status = await createNftBackend(fakeRun(() => ({ stdout: json })).run).status();
    expect(status).toMatchObject({ loaded: true, enforcing: true, sets: [], counters: [] });
    expect(status.loaded && status.problems).toEqual(problems);
  });

  test("status of a missing table is 'not loaded'; other errors are errors", async () => {
    const missing = fakeRun(() => ({ code: 1, stderr: "Error: No such file or directory\nlist table inet domainwall\n" }));
    expect(await createNftBackend(missing.run).status()).toEqual({ loaded: false });
    const denied = fakeRun(() => ({ code: 1, stderr: "Error: Device or resource busy" }));
    await expect(createNftBackend(denied.run).status()).rejects.toThrow("nft list table failed: Error: Device or resource busy");
  });
});
