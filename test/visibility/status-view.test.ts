import { describe, expect, test } from "bun:test";
import type { AllowedEntry, LoadedStatus } from "../../src/status.ts";
import { allowedJson, dnsProxyJson, portedOnly, proxyLines } from "../../src/visibility/status-view.ts";

const tcp = (first: number) => ({ protocol: "tcp" as const, first, last: first });

describe("portedOnly: entries open on some ports only, never those an every-port entry holds whole", () => {
  test.each([
    {
      name: "example.com (every port) and api.example.com:443 share 2001:db8::10",
      allowed: [
        { network: "2001:db8::10", ports: "all" },
        { network: "2001:db8::10", ports: [tcp(443)] },
        { network: "2001:db8::11", ports: [tcp(443)] },
      ],
      expected: ["2001:db8::11"],
    },
    {
      name: "inside an every-port network, or a range; a wider network is not covered by a narrower one",
      allowed: [
        { network: "192.0.2.0/24", ports: "all" },
        { network: "198.51.100.1-198.51.100.9", ports: "all" },
        { network: "192.0.2.7", ports: [tcp(443)] },
        { network: "192.0.2.0/25", ports: [tcp(443)] },
        { network: "192.0.0.0/16", ports: [tcp(443)] },
        { network: "198.51.100.5", ports: [tcp(443)] },
        { network: "198.51.100.2-198.51.100.3", ports: [tcp(443)] },
        { network: "198.51.100.8-198.51.100.12", ports: [tcp(443)] },
      ],
      expected: ["192.0.0.0/16", "198.51.100.8-198.51.100.12"],
    },
  ] as { name: string; allowed: AllowedEntry[]; expected: string[] }[])("$name", ({ allowed, expected }) => {
    expect(portedOnly(allowed).map((e) => e.network)).toEqual(expected);
  });
});

const proxied: LoadedStatus = {
  loaded: true,
  enforcing: true,
  sets: [],
  counters: [],
  allowed: [{ network: "192.0.2.0/24", ports: "all" }],
  dns: ["198.51.100.2"],
  proxyRedirect: { port: 15353, group: 2000053 },
  proxySets: [
    { name: "proxy_v4", family: 4, ports: "all" },
    { name: "proxy_v4_tcp443", family: 4, ports: [tcp(443)] },
  ],
  proxy: [
    { address: "203.0.113.62", set: "proxy_v4", ports: "all", timeoutSeconds: 330, expiresInSeconds: 300 },
    { address: "203.0.113.60", set: "proxy_v4_tcp443", ports: [tcp(443)], timeoutSeconds: 330, expiresInSeconds: 200 },
    { address: "203.0.113.59", set: "proxy_v4", ports: "all", timeoutSeconds: 330, expiresInSeconds: 0 },
  ],
};
const admitted = [
  { address: "203.0.113.60", set: "proxy_v4_tcp443", names: ["ported.x"], entries: ["ported.x"] },
  { address: "203.0.113.62", set: "proxy_v4", names: ["allowed.x"], entries: ["allowed.x"] },
];

describe("status --json with the DNS proxy", () => {
  test("allowed: the allowlist, then each admission with time left, on its set's ports, named", () => {
    expect(allowedJson(proxied, admitted)).toEqual([
      { network: "192.0.2.0/24", ports: "all", from: "allowlist" },
      { network: "203.0.113.62", ports: "all", from: "dns-proxy", set: "proxy_v4", expiresInSeconds: 300, names: ["allowed.x"] },
      {
        network: "203.0.113.60",
        ports: ["443/tcp"],
        from: "dns-proxy",
        set: "proxy_v4_tcp443",
        expiresInSeconds: 200,
        names: ["ported.x"],
      },
    ]);
  });

  test("dnsProxy: the kernel's port and group, each set with its ports and elements, named from the watch", () => {
    expect(dnsProxyJson(proxied, { running: true, admitted, workerPid: 4243, supervisorPid: 4242 })).toEqual({
      port: 15353,
      group: 2000053,
      running: true,
      workerPid: 4243,
      supervisorPid: 4242,
      sets: [
        {
          name: "proxy_v4",
          family: 4,
          ports: "all",
          elements: [
            { address: "203.0.113.62", timeoutSeconds: 330, expiresInSeconds: 300, names: ["allowed.x"], entries: ["allowed.x"] },
            { address: "203.0.113.59", timeoutSeconds: 330, expiresInSeconds: 0, names: [], entries: [] },
          ],
        },
        {
          name: "proxy_v4_tcp443",
          family: 4,
          ports: ["443/tcp"],
          elements: [{ address: "203.0.113.60", timeoutSeconds: 330, expiresInSeconds: 200, names: ["ported.x"], entries: ["ported.x"] }],
        },
      ],
    });
    expect(dnsProxyJson({ ...proxied, proxySets: undefined }, { running: false, admitted: [] })).toBeNull();
    expect(dnsProxyJson(proxied, { running: false, admitted: [] })).toMatchObject({ running: false, workerPid: null, supervisorPid: null });
  });

  test("the text lines: by set with its ports, bounded", () => {
    expect(proxyLines(proxied, admitted, 1)).toEqual([
      "admitted by the DNS proxy (DNS redirected to port 15353): 2 addresses",
      "  proxy_v4 (every port):",
      "    203.0.113.62 (allowed.x): 300s left",
      "  proxy_v4_tcp443 (443/tcp):",
      "    and 1 more ('status --json' lists them all)",
    ]);
  });
});
