import { describe, expect, test } from "bun:test";
import { Writable } from "node:stream";
import { cidr } from "../../src/net/ip.ts";
import type { Backend } from "../../src/backends/backend.ts";
import { admissionSets, upstreamsOf } from "../../src/watch/dns-proxy.ts";
import { carryingBackend } from "../../src/backends/nft/carrying-backend.ts";

import { EVERY_PORT_SETS, proxyPortSets } from "../../src/policy/proxy-sets.ts";
import { AUDIT_ENTRY } from "../../src/proxy/handler.ts";
import { PROXY_POLICIES } from "../fixtures/policies.ts";
import type { PortRange } from "../../src/net/port-range.ts";
import type { Admitter } from "../../src/backends/nft/admitter.ts";
import { startProxyRuntime } from "../../src/watch/dns-proxy.ts";
import { buildPolicy } from "../../src/policy/policy.ts";
import { createLogger } from "../../src/log.ts";
import { parseConfig } from "../support/config.ts";

describe("the DNS proxy's upstreams", () => {
  test("the resolvers, never one on loopback (a stub would send its upstream query back through the redirect)", () => {
    expect(upstreamsOf([cidr("127.0.0.53"), cidr("198.51.100.2"), cidr("::1"), cidr("2001:db8:1::2"), cidr("192.0.2.0/24")])).toEqual([
      { address: "198.51.100.2", port: 53 },
      { address: "2001:db8:1::2", port: 53 },
    ]);
    expect(upstreamsOf([cidr("127.0.0.53")])).toEqual([]);
  });
});

describe("the backend watch --dns-proxy hands its loop", () => {
  const base = {
    name: "nft",
    apply: () => Promise.reject(new Error("the plain apply would drop what was admitted")),
  } as unknown as Backend;
  const carryOver = { v4: "elements = { 203.0.113.7 timeout 30s expires 12s }", v6: "" };

  test("a full load goes through replaceTable with the admitted elements carried over", async () => {
    const scripts: string[] = [];
    const backend = carryingBackend(
      base,
      { replaceTable: async (script) => (scripts.push(script(carryOver)), { code: 0, stdout: "", stderr: "" }) },
      () => 0,
    );
    await backend.apply(PROXY_POLICIES["dns-proxy"]!);
    expect(scripts).toHaveLength(1);
    expect(scripts[0]).toContain(
      "set proxy_v4 {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t\telements = { 203.0.113.7 timeout 30s expires 12s }\n",
    );
  });

  test("a refused load is an error naming nft's complaint", async () => {
    const backend = carryingBackend(
      base,
      { replaceTable: async () => ({ code: 1, stdout: "", stderr: "Error: syntax error\n" }) },
      () => 0,
    );
    await expect(backend.apply(PROXY_POLICIES["dns-proxy"]!)).rejects.toThrow("nft -f failed: Error: syntax error");
  });
});

describe("the sets an admission goes into", () => {
  const { byEntry } = proxyPortSets(
    ["api.example", "*.pypi.org", "plain.example"],
    new Map([["api.example", [{ protocol: "tcp", first: 443, last: 443 }]]]),
  );

  test("the matched entry's pair (an absolute name is the same entry); every port for an entry without ports", () => {
    expect(admissionSets(byEntry, "api.example.")).toEqual({ v4: "proxy_v4_tcp443", v6: "proxy_v6_tcp443" });
    expect(admissionSets(byEntry, "*.pypi.org")).toBe(EVERY_PORT_SETS);
  });

  test("an unlisted name admitted in audit mode opens every port; an unknown entry is an error, never a guess", () => {
    expect(admissionSets(byEntry, AUDIT_ENTRY)).toBe(EVERY_PORT_SETS);
    expect(() => admissionSets(byEntry, "other.example")).toThrow('no sets for the entry "other.example"');
  });
});

describe("a reloaded policy for the running proxy (replace)", () => {
  const tcp443 = [{ protocol: "tcp" as const, first: 443, last: 443 }];
  /** The policy watch --dns-proxy builds for `hosts` and `*.pypi.org` with `wildcardPorts` ("every": every port; "none": not listed). */
  const policyOf = (hosts: string, wildcardPorts: PortRange[] | "every" | "none" = tcp443) => {
    const { config } = parseConfig({
      strict: false,
      reject: false,
      requireHosts: true,
      hosts: { from: "--hosts", value: hosts },
      watch: { removeOnExit: false },
    });
    const { watch: _watch, ...policy } = config;
    const hostPorts = new Map(policy.hostPorts);
    if (Array.isArray(wildcardPorts)) hostPorts.set("*.pypi.org", wildcardPorts);
    const wildcards = wildcardPorts === "none" ? [] : ["*.pypi.org"];
    return buildPolicy({ ...policy, wildcards, hostPorts, dnsProxy: { port: 0, gid: 2000053 } }, [], []).policy;
  };
  const admitted: { entry: string; sets: unknown }[] = [];
  const admitter: Admitter = {
    admit: async (a) => void admitted.push({ entry: a.entry, sets: a.sets }),
    snapshot: () => ({ elements: [] }),
    seedFromKernel: async () => 0,
    renderCarryOver: () => ({ v4: "", v6: "", ports: new Map() }),
    replaceTable: async () => ({ code: 0, stdout: "", stderr: "" }),
  };
  let logged = "";
  const sink = new Writable({ write: (chunk, _enc, done) => ((logged += chunk.toString()), done()) }) as unknown as NodeJS.WriteStream;
  const start = (hosts: string) =>
    startProxyRuntime({
      policy: policyOf(hosts),
      upstreams: [],
      minTtlMs: 5_000,
      maxTtlMs: 3_600_000,
      graceMs: 60_000,
      executor: { run: async () => ({ code: 0, stdout: "", stderr: "" }) } as never,
      log: createLogger("text", sink),
      now: () => 0,
      admitter,
    });
  const loaded = "api.example:443,plain.example";

  test("entries moving between the declared sets are taken: the new list, and its entries admit into their sets", async () => {
    const runtime = await start(loaded);
    try {
      // A new name on a spec another entry has, a name without ports, the wildcard gone (api.example keeps tcp443).
      runtime.replace(policyOf("api.example:443,new.example:443,other.example", "none"));
      expect(runtime.report().list).toEqual({ names: ["api.example", "new.example", "other.example"], wildcards: [] });
      admitted.length = 0;
      await runtime.admitResolved([{ host: "new.example", addresses: [{ address: "203.0.113.7", family: 4, ttl: 30 }] }]);
      expect(admitted).toEqual([{ entry: "new.example", sets: { v4: "proxy_v4_tcp443", v6: "proxy_v6_tcp443" } }]);
    } finally {
      runtime.stop();
    }
  });

  test("a port spec added, gone or widened is refused and changes nothing (the sets are declared in the loaded table)", async () => {
    const runtime = await start(loaded);
    try {
      const next = [
        policyOf("api.example:8443"),
        policyOf("api.example,plain.example", "every"),
        policyOf("api.example:443", [...tcp443, { protocol: "udp", first: 443, last: 443 }]),
      ];
      for (const policy of next)
        expect(() => runtime.replace(policy)).toThrow("the ports of the DNS proxy's list cannot change while watch runs");
      expect(runtime.report().list).toEqual({ names: ["api.example", "plain.example"], wildcards: ["*.pypi.org"] });
    } finally {
      runtime.stop();
    }
  });

  test("what the names resolved at start gave and the gate refused is warned about name by name, never held back, and counted", async () => {
    const runtime = await start(Array.from({ length: 12 }, (_, i) => `n${i}.example`).join(","));
    try {
      logged = "";
      const names = Array.from({ length: 12 }, (_, i) => ({
        host: `n${i}.example`,
        addresses: [
          { address: "127.0.0.1", family: 4 as const, ttl: 30 },
          { address: "203.0.113.7", family: 4 as const, ttl: 30 },
        ],
      }));
      expect(await runtime.admitResolved(names)).toBe(12);
      expect(logged.match(/not admitting 127\.0\.0\.1 \(loopback\) from DNS/g)).toHaveLength(12);
      expect(logged).not.toContain("held back");
      expect(runtime.report().refusedAddresses).toBe(12);
    } finally {
      runtime.stop();
    }
  });
});
