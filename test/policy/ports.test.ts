import { describe, expect, test } from "bun:test";
import { splitPortSpec } from "../../src/config/port-spec.ts";
import { cidr } from "../../src/net/ip.ts";
import { portElements, type PortEntry } from "../../src/policy/ports.ts";

/** `203.0.113.0/24:443 a` → an entry; `[2001:db8::1]:80/udp b` too. */
const entry = (spec: string): PortEntry => {
  const [text, source = "x"] = spec.split(" ");
  const split = splitPortSpec(text!);
  if (!split.ok || split.ports === undefined) throw new Error(`bad test entry ${spec}`);
  return { cidr: cidr(split.target), ports: split.ports, source };
};
const shown = (entries: readonly string[]) =>
  portElements(entries.map(entry)).map(
    (e) =>
      `${e.cidr.text} . ${e.ports.protocol} . ${e.ports.first}${e.ports.last === e.ports.first ? "" : `-${e.ports.last}`} # ${e.sources.join(", ")}`,
  );

describe("portElements: disjoint, sorted, with sources (the kernel refuses an element inside another)", () => {
  test.each([
    { name: "one entry", entries: ["203.0.113.10:443 a"], expected: ["203.0.113.10 . tcp . 443 # a"] },
    {
      name: "sorted by network, protocol, port",
      entries: ["203.0.113.10:443 a", "192.0.2.1:53/udp b", "203.0.113.10:80 a", "203.0.113.10:123/udp a"],
      expected: ["192.0.2.1 . udp . 53 # b", "203.0.113.10 . tcp . 80 # a", "203.0.113.10 . tcp . 443 # a", "203.0.113.10 . udp . 123 # a"],
    },
    {
      name: "the same element twice: one, with both sources",
      entries: ["203.0.113.10:443 b", "203.0.113.10:443 a"],
      expected: ["203.0.113.10 . tcp . 443 # a, b"],
    },
    {
      name: "overlapping ranges of one address are cut apart",
      entries: ["198.51.100.8:8000-8100 a", "198.51.100.8:8050-8200 b"],
      expected: ["198.51.100.8 . tcp . 8000-8049 # a", "198.51.100.8 . tcp . 8050-8100 # a, b", "198.51.100.8 . tcp . 8101-8200 # b"],
    },
    {
      name: "a range inside another",
      entries: ["198.51.100.8:1-65535 a", "198.51.100.8:443 b"],
      expected: ["198.51.100.8 . tcp . 1-442 # a", "198.51.100.8 . tcp . 443 # a, b", "198.51.100.8 . tcp . 444-65535 # a"],
    },
    {
      name: "tcp and udp of the same ports do not overlap",
      entries: ["198.51.100.8:53 a", "198.51.100.8:53/udp a"],
      expected: ["198.51.100.8 . tcp . 53 # a", "198.51.100.8 . udp . 53 # a"],
    },
    {
      name: "an address inside a network keeps only ports the network does not open",
      entries: ["203.0.113.0/24:443 net", "203.0.113.10:400-500 a", "203.0.113.11:443 b"],
      expected: ["203.0.113.0/24 . tcp . 443 # net", "203.0.113.10 . tcp . 400-442 # a", "203.0.113.10 . tcp . 444-500 # a"],
    },
    {
      name: "nested networks: each level subtracts every enclosing one",
      entries: ["203.0.113.0/24:80 n24", "203.0.113.0/28:81 n28", "203.0.113.1:80-82 a", "203.0.113.64:81 b"],
      expected: [
        "203.0.113.0/24 . tcp . 80 # n24",
        "203.0.113.0/28 . tcp . 81 # n28",
        "203.0.113.1 . tcp . 82 # a",
        "203.0.113.64 . tcp . 81 # b",
      ],
    },
    {
      name: "a network inside another, other protocol: kept",
      entries: ["203.0.113.0/24:443 net", "203.0.113.10:443/udp a"],
      expected: ["203.0.113.0/24 . tcp . 443 # net", "203.0.113.10 . udp . 443 # a"],
    },
    {
      name: "IPv6 after IPv4",
      entries: ["[2001:db8::/64]:443 n", "[2001:db8::1]:443 a", "192.0.2.1:443 b"],
      expected: ["192.0.2.1 . tcp . 443 # b", "2001:db8::/64 . tcp . 443 # n"],
    },
  ])("$name", ({ entries, expected }) => {
    expect(shown(entries)).toEqual([...expected]);
  });

  test("property: 300 random entries give disjoint elements that open exactly the ports the entries open", () => {
    let seed = 7;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let round = 0; round < 20; round++) {
      const entries = Array.from({ length: 15 }, () => {
        const prefix = [30, 31, 32][random(3)]!;
        const first = 1 + random(20);
        return entry(
          `192.0.2.${random(8) & ~((1 << (32 - prefix)) - 1)}/${prefix}:${first}-${first + random(6)}${random(3) === 0 ? "/udp" : ""} s${random(3)}`,
        );
      });
      const elements = portElements(entries);
      const opens = (
        list: readonly { cidr: { words: readonly number[]; prefix: number }; ports: { protocol: string; first: number; last: number } }[],
        address: number,
        protocol: string,
        port: number,
      ) =>
        list.filter((e) => {
          const size = 2 ** (32 - e.cidr.prefix);
          const base = e.cidr.words[0]! & 0xff;
          return address >= base && address < base + size && e.ports.protocol === protocol && e.ports.first <= port && port <= e.ports.last;
        }).length;
      for (let address = 0; address < 8; address++) {
        for (const protocol of ["tcp", "udp"]) {
          for (let port = 1; port <= 27; port++) {
            const want = opens(entries, address, protocol, port) > 0 ? 1 : 0;
            expect([address, protocol, port, opens(elements, address, protocol, port)]).toEqual([address, protocol, port, want]);
          }
        }
      }
    }
  });
});
