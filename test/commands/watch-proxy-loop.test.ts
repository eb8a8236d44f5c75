import { describe, expect, test } from "bun:test";
import { proxyLoopConfig } from "../../src/commands/watch.ts";
import { buildPolicy } from "../../src/policy/policy.ts";
import { parseConfig } from "../support/config.ts";

describe("watch --dns-proxy: the loop's configuration", () => {
  const { config: parsed } = parseConfig({
    strict: false,
    reject: false,
    requireHosts: true,
    hosts: { from: "FILE: hosts", value: "api.example:443,ntp.example:123/udp,plain.example" },
    watch: { removeOnExit: false },
  });
  const { watch: _watch, ...policy } = parsed;
  const config = { ...policy, dnsProxy: { port: 15353, gid: 2000053 } };

  test("looks no name up, yet the policy it builds declares the proxy's port sets of the names too (a reload or a retried full load keeps them)", () => {
    const loop = proxyLoopConfig(config);
    expect(loop.hosts).toEqual([]);
    const loaded = buildPolicy(config, [], []).policy.proxy;
    expect(loaded?.portSets?.map((s) => s.v4)).toEqual(["proxy_v4_tcp443", "proxy_v4_udp123"]);
    expect(buildPolicy(loop, [], []).policy.proxy).toEqual(loaded);
  });
});
