import { expect, test } from "bun:test";
import { cidr } from "../../src/net/ip.ts";
import { onlyLocalStub, parseResolvConf } from "../../src/dns/resolv-conf.ts";

test.each([
  {
    name: "kubernetes pod",
    text: "search ns.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n",
    servers: ["10.96.0.10"],
    ignored: [],
  },
  {
    name: "both families, indented, comments",
    text: "# generated\n nameserver 198.51.100.2\nnameserver\t2001:db8::53\n;nameserver 192.0.2.9\n",
    servers: ["198.51.100.2", "2001:db8::53"],
    ignored: [],
  },
  { name: "zone id dropped", text: "nameserver fe80::1%eth0\n", servers: ["fe80::1"], ignored: [] },
  {
    name: "garbage reported, not used",
    text: "nameserver dns.example\nnameserver 192.0.2.0/24\nnameserver 192.0.2.1;drop\n",
    servers: [],
    ignored: ["dns.example", "192.0.2.0/24", "192.0.2.1;drop"],
  },
  { name: "empty", text: "", servers: [], ignored: [] },
])("$name", ({ text, servers, ignored }) => {
  const parsed = parseResolvConf(text);
  expect(parsed.servers.map((s) => s.text)).toEqual([...servers]);
  expect(parsed.ignored).toEqual([...ignored]);
});

test.each([
  { servers: ["127.0.0.53"], expected: true },
  { servers: ["127.0.0.1", "::1"], expected: true },
  { servers: ["127.0.0.53", "198.51.100.2"], expected: false },
  { servers: ["10.96.0.10"], expected: false },
  { servers: [], expected: false },
])("onlyLocalStub($servers) is $expected", ({ servers, expected }) => {
  expect(onlyLocalStub(servers.map(cidr))).toBe(expected);
});
