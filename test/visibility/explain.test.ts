// The pure explain logic against kernel states as parseNftStatus reads them: each answer must be
// what the kernel does with a connect (ports of the set or entry that holds the address, local
// addresses through lo, IPv4-mapped addresses as IPv4, names compared as DNS does).
import { describe, expect, test } from "bun:test";
import type { LoadedStatus, ProxyElement } from "../../src/status.ts";
import { parseDestination, type Destination } from "../../src/config/destination.ts";
import { explain, type HeldName } from "../../src/visibility/explain.ts";
import { explainProxyName, proxyNamesOf, type ProxyWatchState } from "../../src/visibility/explain-proxy.ts";

const tcp = (first: number, last = first) => ({ protocol: "tcp" as const, first, last });
const udp = (first: number) => ({ protocol: "udp" as const, first, last: first });
const element = (address: string, set: string, ports: ProxyElement["ports"]): ProxyElement => ({
  address,
  set,
  ports,
  timeoutSeconds: 330,
  expiresInSeconds: 300,
});

/** `watch --dns-proxy --hosts 'ported.x:443,*.pw.x:8080,allowed.x,udp.x:443/udp'` after each name was asked. */
const proxied: LoadedStatus = {
  loaded: true,
  enforcing: true,
  sets: [],
  counters: [],
  allowed: [],
  dns: ["198.51.100.2"],
  acceptsLoopback: true,
  proxySets: [
    { name: "proxy_v4", family: 4, ports: "all" },
    { name: "proxy_v6", family: 6, ports: "all" },
    { name: "proxy_v4_tcp443", family: 4, ports: [tcp(443)] },
    { name: "proxy_v6_tcp443", family: 6, ports: [tcp(443)] },
    { name: "proxy_v4_tcp8080", family: 4, ports: [tcp(8080)] },
    { name: "proxy_v6_tcp8080", family: 6, ports: [tcp(8080)] },
    { name: "proxy_v4_udp443", family: 4, ports: [udp(443)] },
    { name: "proxy_v6_udp443", family: 6, ports: [udp(443)] },
  ],
  proxy: [
    element("203.0.113.60", "proxy_v4_tcp443", [tcp(443)]),
    element("2001:db8:ff::60", "proxy_v6_tcp443", [tcp(443)]),
    element("203.0.113.61", "proxy_v4_tcp8080", [tcp(8080)]),
    element("203.0.113.62", "proxy_v4", "all"),
    element("203.0.113.63", "proxy_v4_udp443", [udp(443)]),
    // Shared: allowed.x (every port) and ported.x (443) were both told 203.0.113.64.
    element("203.0.113.64", "proxy_v4", "all"),
    element("203.0.113.64", "proxy_v4_tcp443", [tcp(443)]),
  ],
};
const watch: ProxyWatchState = {
  list: {
    names: ["ported.x", "allowed.x", "udp.x"],
    wildcards: ["*.pw.x"],
    ported: {
      "ported.x": { v4: "proxy_v4_tcp443", v6: "proxy_v6_tcp443" },
      "*.pw.x": { v4: "proxy_v4_tcp8080", v6: "proxy_v6_tcp8080" },
      "udp.x": { v4: "proxy_v4_udp443", v6: "proxy_v6_udp443" },
    },
  },
  addresses: [
    { address: "203.0.113.60", set: "proxy_v4_tcp443", names: ["ported.x"], entries: ["ported.x"] },
    { address: "2001:db8:ff::60", set: "proxy_v6_tcp443", names: ["ported.x"], entries: ["ported.x"] },
    { address: "203.0.113.61", set: "proxy_v4_tcp8080", names: ["a.pw.x"], entries: ["*.pw.x"] },
    { address: "203.0.113.62", set: "proxy_v4", names: ["allowed.x"], entries: ["allowed.x"] },
    { address: "203.0.113.63", set: "proxy_v4_udp443", names: ["udp.x"], entries: ["udp.x"] },
    { address: "203.0.113.64", set: "proxy_v4", names: ["allowed.x"], entries: ["allowed.x"] },
    { address: "203.0.113.64", set: "proxy_v4_tcp443", names: ["ported.x"], entries: ["ported.x"] },
  ],
};
const LOCAL = ["127.0.0.0/8", "198.51.100.1", "2001:db8:1::1", "::1"];

const destination = (text: string): Destination => {
  const parsed = parseDestination(text);
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.destination;
};
const ask = (text: string, status: LoadedStatus, names: readonly HeldName[] = []) => {
  const d = destination(text);
  if (d.host.kind === "address")
    return explain(status, d, [d.host.address], names, undefined, { proxyNames: proxyNamesOf(watch), local: LOCAL });
  return explainProxyName(status, { ...d, host: d.host }, watch, { local: LOCAL });
};

describe("explain under --dns-proxy: the ports of the set that admitted the address", () => {
  test.each([
    {
      target: "203.0.113.60:80",
      allowed: false,
      says: "203.0.113.60 is denied: not open on 80/tcp: the DNS proxy admitted it on 443/tcp only (for ported.x, entry ported.x)",
    },
    { target: "203.0.113.60:443", allowed: true, says: "it stays admitted for 300s more (443/tcp)" },
    { target: "203.0.113.60:443/udp", allowed: false, says: "not open on 443/udp" },
    { target: "[2001:db8:ff::60]:80", allowed: false, says: "not open on 80/tcp: the DNS proxy admitted it on 443/tcp only" },
    { target: "[2001:db8:ff::60]:443", allowed: true, says: "(443/tcp)" },
    { target: "203.0.113.61:80", allowed: false, says: "admitted it on 8080/tcp only (for a.pw.x, entry *.pw.x)" },
    { target: "203.0.113.61:8080", allowed: true, says: "a.pw.x (entry *.pw.x) told an app this address" },
    { target: "203.0.113.63:443/udp", allowed: true, says: "(443/udp)" },
    { target: "203.0.113.63:443", allowed: false, says: "not open on 443/tcp" },
    { target: "203.0.113.62:80", allowed: true, says: "(every port)" },
    {
      target: "203.0.113.64:80",
      allowed: true,
      says: "allowed.x (entry allowed.x) told an app this address; it stays admitted for 300s more (every port)",
    },
    {
      target: "ported.x:80",
      allowed: false,
      says: "ported.x is in the DNS proxy's list (entry ported.x), but its addresses are admitted on 443/tcp only: not open on 80/tcp",
    },
    {
      target: "ported.x:443",
      allowed: true,
      says: "ported.x is allowed by the DNS proxy's entry ported.x: its addresses are admitted when an app asks on 443/tcp only",
    },
    { target: "a.pw.x:80", allowed: false, says: "not open on 80/tcp" },
    {
      target: "b.pw.x:80",
      allowed: false,
      says: "(entry *.pw.x), but its addresses are admitted on 8080/tcp only: not open on 80/tcp; none is admitted now",
    },
    { target: "b.pw.x:8080", allowed: true, says: "b.pw.x is allowed by the DNS proxy's entry *.pw.x" },
    { target: "udp.x:443", allowed: false, says: "not open on 443/tcp" },
    { target: "udp.x:443/udp", allowed: true, says: "udp.x is allowed" },
    { target: "ALLOWED.X.:80", allowed: true, says: "allowed.x is allowed by the DNS proxy's entry allowed.x" },
  ])("$target", ({ target, allowed, says }) => {
    const e = ask(target, proxied);
    expect(e.summary).toContain(says);
    expect(e.allowed).toBe(allowed);
  });

  test("the JSON form carries the set and its ports, never every port for a port set", () => {
    expect(ask("203.0.113.60:443", proxied).addresses[0]?.by).toEqual([
      { kind: "proxy", names: ["ported.x"], entries: ["ported.x"], set: "proxy_v4_tcp443", expiresInSeconds: 300, ports: [tcp(443)] },
    ]);
    expect(ask("203.0.113.64", proxied).addresses[0]?.by.map((b) => [b.kind === "proxy" && b.set, b.ports])).toEqual([
      ["proxy_v4", "all"],
      ["proxy_v4_tcp443", [tcp(443)]],
    ]);
  });

  test("ALLOWED.X. counts the addresses admitted for allowed.x", () => {
    expect(ask("ALLOWED.X.", proxied).addresses.map((a) => a.address)).toEqual(["203.0.113.62", "203.0.113.64"]);
  });
});

/** `apply --hosts example.com,api.example.com:443`: both resolve to 2001:db8::10; api.example.com alone to 2001:db8::11. */
const shared: LoadedStatus = {
  loaded: true,
  enforcing: true,
  sets: [],
  counters: [],
  allowed: [
    { network: "2001:db8::10", ports: "all" },
    { network: "2001:db8::10", ports: [tcp(443)] },
    { network: "2001:db8::11", ports: [tcp(443)] },
  ],
  dns: ["198.51.100.2"],
  acceptsLoopback: true,
};
const names: HeldName[] = [
  { name: "example.com", addresses: ["2001:db8::10"], ports: "all" },
  { name: "api.example.com", addresses: ["2001:db8::10", "2001:db8::11"], ports: ["443/tcp"] },
];

describe("explain: an address held by several entries, each with its own ports", () => {
  test.each([
    { target: "[2001:db8::10]:80", allowed: true, says: "2001:db8::10 is allowed by the name example.com (every port)\n" },
    {
      target: "[2001:db8::10]:443",
      allowed: true,
      says: "2001:db8::10 is allowed by the name example.com (every port) and api.example.com:443/tcp\n",
    },
    { target: "2001:db8::10", allowed: true, says: "the name example.com (every port) and api.example.com:443/tcp\n" },
    { target: "[2001:db8::11]:80", allowed: false, says: "not open on 80/tcp: the allowlist opens it on 443/tcp only\n" },
    { target: "[2001:db8::11]:443", allowed: true, says: "2001:db8::11 is allowed by api.example.com:443/tcp\n" },
  ])("$target", ({ target, allowed, says }) => {
    const e = ask(target, shared, names);
    expect(`${e.summary}\n`).toEndWith(says);
    expect(e.allowed).toBe(allowed);
  });

  test("every port only where an every-port set holds the address: a name without ports whose address only a port set holds", () => {
    const e = ask("[2001:db8::11]:80", shared, [{ name: "www.example.com", addresses: ["2001:db8::11"], ports: "all" }]);
    expect(e.allowed).toBe(false);
    expect(e.summary).not.toContain("every port");
  });

  test("names without known ports (an older names file) get what the kernel opens", () => {
    const e = ask("[2001:db8::11]:443", shared, [{ name: "api.example.com", addresses: ["2001:db8::11"] }]);
    expect(e.addresses[0]?.by).toEqual([{ kind: "name", name: "api.example.com", ports: [tcp(443)] }]);
  });
});

describe("explain: local and IPv4-mapped addresses, as the kernel routes them", () => {
  test.each([
    {
      target: "198.51.100.1:3000",
      status: proxied,
      allowed: true,
      says: "198.51.100.1 is allowed by this namespace's own address or loopback",
    },
    { target: "127.0.0.1:3000", status: shared, allowed: true, says: "127.0.0.1 is allowed by this namespace's own address or loopback" },
    { target: "[::1]:3000", status: shared, allowed: true, says: "::1 is allowed by this namespace's own address" },
    { target: "[2001:db8:1::1]:3000", status: shared, allowed: true, says: "own address" },
    { target: "198.51.100.1:3000", status: { ...shared, acceptsLoopback: false }, allowed: false, says: "198.51.100.1 is denied" },
    {
      target: "[::ffff:203.0.113.62]:80",
      status: proxied,
      allowed: true,
      says: "::ffff:cb00:713e (IPv4-mapped: a connect to it goes out as IPv4 to 203.0.113.62) is allowed by the DNS proxy",
    },
    {
      target: "[::ffff:203.0.113.60]:80",
      status: proxied,
      allowed: false,
      says: "goes out as IPv4 to 203.0.113.60) is denied: not open on 80/tcp",
    },
    {
      target: "[::ffff:127.0.0.1]:3000",
      status: proxied,
      allowed: true,
      says: "goes out as IPv4 to 127.0.0.1) is allowed by this namespace's own address",
    },
  ])("$target", ({ target, status, allowed, says }) => {
    const e = ask(target, status);
    expect(e.summary).toContain(says);
    expect(e.allowed).toBe(allowed);
  });

  test("the JSON form names the IPv4 address a mapped one goes out as", () => {
    expect(ask("[::ffff:203.0.113.62]:80", proxied).addresses[0]).toMatchObject({
      address: "::ffff:cb00:713e",
      sentAs: "203.0.113.62",
      allowed: true,
    });
  });
});
