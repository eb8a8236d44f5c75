import { describe, expect, test } from "bun:test";
import { parseNftStatus } from "../../../src/backends/nft/state.ts";

// Rules as nft 1.0.6 prints them (`nft -j list table`), checked in a namespace.
const daddr = (ip: "ip" | "ip6", set: string) => ({
  match: { op: "==", left: { payload: { protocol: ip, field: "daddr" } }, right: `@${set}` },
});
const dport = (protocol: string, right: unknown) => ({ match: { op: "==", left: { payload: { protocol, field: "dport" } }, right } });
const rule = (...expr: unknown[]) => ({ rule: { family: "inet", table: "domainwall", chain: "output", expr } });
const accept = { accept: null };
const set = (name: string, elem: unknown[] = []) => ({
  set: { name, type: name.includes("v6") ? "ipv6_addr" : "ipv4_addr", flags: ["timeout"], elem },
});
const element = (val: string) => ({ elem: { val, timeout: 60, expires: 50 } });
const listing = (...objects: object[]) =>
  JSON.stringify({ nftables: [{ metainfo: { version: "1.0.6" } }, { chain: { name: "output", hook: "output" } }, ...objects] });

describe("parseNftStatus: the ports each DNS-proxy set opens, from the output chain's rules", () => {
  const sets = [set("proxy_v4", [element("203.0.113.62")]), set("proxy_v4_tcp443", [element("203.0.113.60")]), set("proxy_v6_tcp443")];
  test.each([
    {
      name: "every port for a rule without a port match; the rule's port for a port set",
      rules: [rule(daddr("ip", "proxy_v4"), accept), rule(daddr("ip", "proxy_v4_tcp443"), dport("tcp", 443), accept)],
      expected: { proxy_v4: "all", proxy_v4_tcp443: [{ protocol: "tcp", first: 443, last: 443 }], proxy_v6_tcp443: [] },
    },
    {
      name: "a port list, a range and a second rule for the other protocol add up",
      rules: [
        rule(daddr("ip", "proxy_v4_tcp443"), dport("tcp", { set: [80, 443, { range: [8000, 8100] }] }), accept),
        rule(daddr("ip", "proxy_v4_tcp443"), dport("udp", { range: [8000, 8100] }), accept),
      ],
      expected: {
        proxy_v4: [],
        proxy_v4_tcp443: [
          { protocol: "tcp", first: 80, last: 80 },
          { protocol: "tcp", first: 443, last: 443 },
          { protocol: "tcp", first: 8000, last: 8100 },
          { protocol: "udp", first: 8000, last: 8100 },
        ],
        proxy_v6_tcp443: [],
      },
    },
    {
      name: "the set's name says nothing: a set named tcp443 whose rule opens every port opens every port",
      rules: [rule(daddr("ip", "proxy_v4_tcp443"), accept)],
      expected: { proxy_v4: [], proxy_v4_tcp443: "all", proxy_v6_tcp443: [] },
    },
    {
      name: "a rule that drops, or narrows by something else, opens nothing",
      rules: [
        rule(daddr("ip", "proxy_v4"), { drop: null }),
        rule(daddr("ip", "proxy_v4_tcp443"), { match: { op: "==", left: { meta: { key: "skgid" } }, right: 5 } }, accept),
      ],
      expected: { proxy_v4: [], proxy_v4_tcp443: [], proxy_v6_tcp443: [] },
    },
  ])("$name", ({ rules, expected }) => {
    const status = parseNftStatus(listing(...sets, ...rules));
    expect(Object.fromEntries((status.proxySets ?? []).map((s) => [s.name, s.ports]))).toEqual(expected);
    expect(status.proxy?.map((e) => [e.address, e.set, e.ports])).toEqual([
      ["203.0.113.62", "proxy_v4", expected.proxy_v4],
      ["203.0.113.60", "proxy_v4_tcp443", expected.proxy_v4_tcp443],
    ]);
  });

  test("a port match whose value is not ports is refused, naming it", () => {
    expect(() => parseNftStatus(listing(...sets, rule(daddr("ip", "proxy_v4_tcp443"), dport("tcp", "https"), accept)))).toThrow(
      'tcp dport match that is not ports: "https"',
    );
  });

  test("acceptsLoopback: the output chain's oifname lo accept, and only that rule", () => {
    const lo = (extra: unknown[] = []) => rule({ match: { op: "==", left: { meta: { key: "oifname" } }, right: "lo" } }, ...extra, accept);
    expect(parseNftStatus(listing(lo())).acceptsLoopback).toBe(true);
    expect(parseNftStatus(listing(lo([dport("tcp", 53)]))).acceptsLoopback).toBe(false);
    expect(parseNftStatus(listing()).acceptsLoopback).toBe(false);
  });
});

describe("parseNftStatus: the DNS proxy's redirect, from the dns_redirect chain", () => {
  const redirect = (...expr: unknown[]) => ({ rule: { chain: "dns_redirect", expr } });
  test("the port the pod's DNS goes to and the group left alone", () => {
    const status = parseNftStatus(
      listing(
        redirect({ match: { op: "==", left: { meta: { key: "skgid" } }, right: 2000053 } }, { return: null }),
        redirect({ match: { op: "==", left: { payload: { protocol: "th", field: "dport" } }, right: 53 } }, { redirect: { port: 15353 } }),
      ),
    );
    expect(status.proxyRedirect).toEqual({ port: 15353, group: 2000053 });
  });
  test("none without a redirect rule", () => {
    expect(parseNftStatus(listing()).proxyRedirect).toBeUndefined();
  });
});
