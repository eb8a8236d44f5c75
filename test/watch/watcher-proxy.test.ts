import { describe, expect, test } from "bun:test";
import { Writable } from "node:stream";
import type { Backend } from "../../src/backends/backend.ts";
import type { Lookup } from "../../src/dns/resolve.ts";
import { createLogger } from "../../src/log.ts";
import { buildPolicy, type Policy } from "../../src/policy/policy.ts";
import { createWatcher } from "../../src/watch/watcher.ts";
import { realSetTimer } from "../../src/timer.ts";
import { parseConfig } from "../support/config.ts";

describe("the loop under watch --dns-proxy (lookUpNames: false)", () => {
  const { config: parsed } = parseConfig({
    strict: false,
    reject: false,
    requireHosts: true,
    hosts: { from: "FILE: hosts", value: "api.example:443,ntp.example:123/udp,plain.example" },
    watch: { removeOnExit: false },
  });
  const { watch: _watch, ...policy } = parsed;
  const config = { ...policy, dnsProxy: { port: 15353, gid: 2000053 } };

  test("looks no name up, and a full load it makes declares the proxy's port sets of the names too", async () => {
    const asked: string[] = [];
    const lookup: Lookup = async (host) => (asked.push(host), [{ address: "203.0.113.9", ttl: 30 }]);
    const applied: Policy[] = [];
    const backend = { name: "nft", apply: async (p: Policy) => (applied.push(p), { renderMs: 0, loadMs: 0 }) } as unknown as Backend;
    const loaded = buildPolicy(config, [], []).policy;
    const watcher = createWatcher(
      {
        config,
        lookUpNames: false,
        schedule: { minTtlMs: 5_000, maxTtlMs: 60_000, graceMs: 1_000 },
        resolvers: [],
        resolutions: [],
        policy: loaded,
        loadedAt: 0,
      },
      {
        backend,
        lookup,
        log: createLogger("text", new Writable({ write: (_c, _e, done) => done() }) as unknown as NodeJS.WriteStream),
        now: () => 0,
        sleep: async () => {},
        setTimer: realSetTimer,
        random: () => 0,
      },
    );
    // A reloaded list with the same ports (a new name on tcp443) forces a cycle; the loop still looks nothing up.
    watcher.reconfigure({
      config: {
        ...config,
        hosts: [...config.hosts, "new.example"],
        hostPorts: new Map([...config.hostPorts, ["new.example", config.hostPorts.get("api.example")!]]),
      },
      schedule: { minTtlMs: 5_000, maxTtlMs: 60_000, graceMs: 1_000 },
      resolvers: [],
    });
    await watcher.cycle();
    expect(asked).toEqual([]);
    expect(watcher.snapshot().state.size).toBe(0);
    expect(loaded.proxy?.portSets?.map((s) => s.v4)).toEqual(["proxy_v4_tcp443", "proxy_v4_udp123"]);
    expect(applied.length).toBeGreaterThan(0);
    for (const p of applied)
      expect(p.proxy?.portSets?.map((s) => [s.v4, s.ports])).toEqual(loaded.proxy!.portSets!.map((s) => [s.v4, s.ports]));
  });
});
