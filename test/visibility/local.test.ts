import { expect, test } from "bun:test";
import { localNetworks } from "../../src/visibility/local.ts";

// As a namespace with 198.51.100.1/24 on a veth and `ip route add local 203.0.113.0/24 dev lo` prints them.
const FIB_TRIE = `Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 198.51.100.0/24 2 0 2
        |-- 198.51.100.0
           /24 link UNICAST
        |-- 198.51.100.1
           /32 host LOCAL
Local:
  +-- 0.0.0.0/0 2 0 2
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     |-- 198.51.100.1
        /32 host LOCAL
     |-- 198.51.100.255
        /32 link BROADCAST
     |-- 203.0.113.0
        /24 host LOCAL
`;
const IF_INET6 = `00000000000000000000000000000001 01 80 10 80       lo
20010db8000100000000000000000001 02 40 00 80 dw1va
fe80000000000000b0a1c2fffed3e4f5 02 40 20 80 dw1va
garbage line
`;

test.each([
  {
    name: "the local routes, every address of the interfaces, loopback",
    fib: FIB_TRIE,
    inet6: IF_INET6,
    expected: ["127.0.0.0/8", "127.0.0.1", "198.51.100.1", "2001:db8:1::1", "203.0.113.0/24", "::1", "fe80::b0a1:c2ff:fed3:e4f5"],
  },
  { name: "unreadable files: loopback only", fib: undefined, inet6: undefined, expected: ["127.0.0.0/8", "::1"] },
  {
    name: "a broadcast or unicast route is not local",
    fib: "|-- 192.0.2.255\n /32 link BROADCAST\n",
    inet6: "",
    expected: ["127.0.0.0/8", "::1"],
  },
] as { name: string; fib: string | undefined; inet6: string | undefined; expected: string[] }[])("$name", ({ fib, inet6, expected }) => {
  expect(localNetworks(fib, inet6)).toEqual(expected);
});
