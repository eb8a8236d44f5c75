import { describe, expect, test } from "bun:test";
import type { LoadedStatus } from "../../src/status.ts";
import { parseDestination, type Destination } from "../../src/config/destination.ts";
import { explain } from "../../src/visibility/explain.ts";
import { explainProxyName, proxyNamesOf, type ProxyWatchState } from "../../src/visibility/explain-proxy.ts";

const status = (more: Partial<LoadedStatus> = {}): LoadedStatus => ({
  loaded: true,
  enforcing: true,
  sets: [],
  counters: [],
  allowed: [{ network: "192.0.2.0/24", ports: "all" }],
  dns: ["198.51.100.2"],
  proxy: [
    { address: "203.0.113.57", set: "proxy_v4", ports: "all", timeoutSeconds: 60, expiresInSeconds: 57 },
    { address: "203.0.113.58", set: "proxy_v4", ports: "all", timeoutSeconds: 60, expiresInSeconds: 12 },
    { address: "203.0.113.59", set: "proxy_v4", ports: "all", timeoutSeconds: 60, expiresInSeconds: 0 },
  ],
  ...more,
});
const watch: ProxyWatchState = {
  list: { names: ["cdn.example"], wildcards: ["*.img.example"] },
  addresses: [
    { address: "203.0.113.57", names: ["cdn.example"], entries: ["cdn.example"] },
    { address: "203.0.113.58", names: ["a.img.example", "b.img.example"], entries: ["*.img.example"] },
    { address: "203.0.113.60", names: ["cdn.example"], entries: ["cdn.example"] },
  ],
};
const destination = (text: string): Destination => {
  const parsed = parseDestination(text);
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.destination;
};
const ofAddress = (text: string, s = status(), w: ProxyWatchState | null = watch) => {
  const d = destination(text);
  if (d.host.kind !== "address") throw new Error("not an address");
  return explain(s, d, [d.host.address], [], undefined, { proxyNames: proxyNamesOf(w ?? undefined) });
};
const ofName = (text: string, s = status(), w: ProxyWatchState | null = watch) => {
  const d = destination(text);
  if (d.host.kind !== "name") throw new Error("not a name");
  return explainProxyName(s, { ...d, host: d.host }, w ?? undefined);
};

describe("explain under --dns-proxy: an address", () => {
  test.each([
    {
      target: "203.0.113.57:443",
      allowed: true,
      says: "allowed: 203.0.113.57:443: 203.0.113.57 is allowed by the DNS proxy: cdn.example (entry cdn.example) told an app this address; it stays admitted for 57s more (every port)",
    },
    {
      target: "203.0.113.58",
      allowed: true,
      says: "allowed: 203.0.113.58: 203.0.113.58 is allowed by the DNS proxy: a.img.example, b.img.example (entry *.img.example) told an app this address; it stays admitted for 12s more (every port)",
    },
    {
      target: "203.0.113.59",
      allowed: false,
      says: "denied: 203.0.113.59: 203.0.113.59 is denied: not in the allowlist, and the DNS proxy has not admitted it (no answer for an allowed name told an app this address, or its time ran out)",
    },
    {
      target: "203.0.113.250",
      allowed: false,
      says: "denied: 203.0.113.250: 203.0.113.250 is denied: not in the allowlist, and the DNS proxy has not admitted it",
    },
    { target: "192.0.2.7", allowed: true, says: "allowed: 192.0.2.7: 192.0.2.7 is allowed by the network 192.0.2.0/24 (every port)" },
  ])("$target", ({ target, allowed, says }) => {
    const e = ofAddress(target);
    expect(e.summary).toStartWith(says);
    expect(e.allowed).toBe(allowed);
  });

  test("the JSON form names the entry and the expiry", () => {
    expect(ofAddress("203.0.113.57").addresses[0]?.by).toEqual([
      { kind: "proxy", names: ["cdn.example"], entries: ["cdn.example"], set: "proxy_v4", expiresInSeconds: 57, ports: "all" },
    ]);
  });

  test("without a running watch it is explained from the kernel alone", () => {
    const e = ofAddress("203.0.113.57", status(), null);
    expect(e.allowed).toBe(true);
    expect(e.summary).toBe(
      "allowed: 203.0.113.57: 203.0.113.57 is allowed by the DNS proxy: an allowed name's answer told an app this address (which name is not known: no running watch says); it stays admitted for 57s more (every port)",
    );
    expect(e.addresses[0]?.by).toEqual([{ kind: "proxy", names: [], entries: [], set: "proxy_v4", expiresInSeconds: 57, ports: "all" }]);
  });

  test("without the proxy the reason does not mention it", () => {
    expect(ofAddress("203.0.113.57", status({ proxy: undefined })).summary).toBe(
      "denied: 203.0.113.57: 203.0.113.57 is denied: not in the allowlist",
    );
  });
});

describe("explain under --dns-proxy: a name, never looked up", () => {
  test.each([
    {
      target: "cdn.example",
      allowed: true,
      says: "allowed: cdn.example: cdn.example is allowed by the DNS proxy's entry cdn.example: its addresses are admitted when an app asks; now 203.0.113.57 is allowed by the DNS proxy: cdn.example (entry cdn.example) told an app this address; it stays admitted for 57s more (every port)",
    },
    {
      target: "b.img.example:443",
      allowed: true,
      says: "allowed: b.img.example:443: b.img.example is allowed by the DNS proxy's entry *.img.example: its addresses are admitted when an app asks; now 203.0.113.58 is allowed by the DNS proxy",
    },
    {
      target: "new.img.example",
      allowed: true,
      says: "allowed: new.img.example: new.img.example is allowed by the DNS proxy's entry *.img.example: its addresses are admitted when an app asks; none is admitted now",
    },
    {
      target: "unlisted.example",
      allowed: false,
      says: "denied: unlisted.example: unlisted.example is not in the DNS proxy's list: the proxy answers NXDOMAIN for it (not looked up)",
    },
    {
      target: "a.b.img.example",
      allowed: false,
      says: "denied: a.b.img.example: a.b.img.example is not in the DNS proxy's list: the proxy answers NXDOMAIN for it",
    },
  ])("$target", ({ target, allowed, says }) => {
    const e = ofName(target);
    expect(e.summary).toStartWith(says);
    expect(e.allowed).toBe(allowed);
  });

  test("a listed name: which entry, in the JSON form too", () => {
    expect(ofName("cdn.example").name).toEqual({ name: "cdn.example", listed: true, addressesFrom: "proxy", entry: "cdn.example" });
  });

  test("in audit mode an unlisted name is forwarded anyway (and still exits denied)", () => {
    const e = ofName("unlisted.example", status({ enforcing: false }));
    expect(e.allowed).toBe(false);
    expect(e.summary).toEndWith("(not looked up) (audit mode: the proxy forwards it anyway, and records it)");
  });

  test("no running watch: nothing answers the redirected queries, so no name resolves", () => {
    const e = ofName("cdn.example", status(), null);
    expect(e.allowed).toBe(false);
    expect(e.summary).toBe(
      "denied: cdn.example: DNS goes to the DNS proxy here, but no watch --dns-proxy runs: DNS fails closed, so cdn.example does not resolve (not looked up)",
    );
  });
});
