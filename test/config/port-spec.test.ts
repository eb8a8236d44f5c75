import { describe, expect, test } from "bun:test";
import { formatEntry, splitPortSpec, type SplitEntry } from "../../src/config/port-spec.ts";

describe("splitPortSpec", () => {
  const good: { input: string; expected: SplitEntry }[] = [
    { input: "api.example.com", expected: { target: "api.example.com" } },
    { input: "api.example.com:443", expected: { target: "api.example.com", ports: { protocol: "tcp", first: 443, last: 443 } } },
    { input: "db.example.com:5432/tcp", expected: { target: "db.example.com", ports: { protocol: "tcp", first: 5432, last: 5432 } } },
    { input: "ntp.example.com:123/udp", expected: { target: "ntp.example.com", ports: { protocol: "udp", first: 123, last: 123 } } },
    { input: "ntp.example.com:123/UDP", expected: { target: "ntp.example.com", ports: { protocol: "udp", first: 123, last: 123 } } },
    {
      input: "mirror.example.com:8000-8100",
      expected: { target: "mirror.example.com", ports: { protocol: "tcp", first: 8000, last: 8100 } },
    },
    { input: "*.example.com:443", expected: { target: "*.example.com", ports: { protocol: "tcp", first: 443, last: 443 } } },
    { input: "203.0.113.0/24:443", expected: { target: "203.0.113.0/24", ports: { protocol: "tcp", first: 443, last: 443 } } },
    { input: "203.0.113.7", expected: { target: "203.0.113.7" } },
    { input: "[2001:db8::1]:443", expected: { target: "2001:db8::1", ports: { protocol: "tcp", first: 443, last: 443 } } },
    { input: "[2001:db8::/64]:443", expected: { target: "2001:db8::/64", ports: { protocol: "tcp", first: 443, last: 443 } } },
    { input: "[2001:db8::1]", expected: { target: "2001:db8::1" } },
    { input: "2001:db8::1", expected: { target: "2001:db8::1" } },
    { input: "2001:db8::/64", expected: { target: "2001:db8::/64" } },
    { input: "2001:db8::1:443", expected: { target: "2001:db8::1:443" } },
    { input: "a.example:1-65535/udp", expected: { target: "a.example", ports: { protocol: "udp", first: 1, last: 65535 } } },
  ];
  for (const { input, expected } of good) {
    test(`${input}`, () => expect(splitPortSpec(input)).toEqual({ ok: true, ...expected }));
  }

  const bad: { input: string; reason: string }[] = [
    { input: "api.example.com:0", reason: "is not a port" },
    { input: "api.example.com:65536", reason: "is not a port" },
    { input: "api.example.com:8100-8000", reason: "runs backwards" },
    { input: "api.example.com:53/icmp", reason: 'unknown protocol "icmp"' },
    { input: "api.example.com:53/", reason: "unknown protocol" },
    { input: "api.example.com:", reason: "nothing after ':'" },
    { input: "api.example.com:https", reason: "is not a port" },
    { input: "api.example.com:44 3", reason: "is not a port" },
    { input: "api.example.com:-443", reason: "is not a port" },
    { input: "api.example.com:443-", reason: "is not a port" },
    { input: "api.example.com:+443", reason: "is not a port" },
    { input: "api.example.com:0443000", reason: "is not a port" },
    { input: "2001:db8::/64:443", reason: "needs brackets: [2001:db8::/64]:443" },
    { input: "2001:db8::1:443/tcp", reason: "needs brackets: [2001:db8::1]:443/tcp" },
    { input: "2001:db8::1:8000-8100", reason: "needs brackets" },
    { input: "[2001:db8::1", reason: "'[' without ']'" },
    { input: "[2001:db8::1]443", reason: "expected ':PORT' after ']'" },
    { input: "[2001:db8::1]:", reason: "nothing after ':'" },
  ];
  for (const { input, reason } of bad) {
    test(`${input} is refused`, () => {
      const result = splitPortSpec(input);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.reason).toContain(reason);
    });
  }
});

describe("formatEntry and splitPortSpec round-trip", () => {
  // A small deterministic generator (no dependency): the same cases every run, many of them.
  let seed = 20261201;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const targets = () => {
    const byte = () => random(256);
    const hex = () => random(65536).toString(16);
    switch (random(5)) {
      case 0:
        return `${["api", "db", "x-1", "ntp"][random(4)]}.${["example", "example.com"][random(2)]}`;
      case 1:
        return `${["*", "**"][random(2)]}.example.org`;
      case 2:
        return `${byte()}.${byte()}.${byte()}.${byte()}`;
      case 3:
        return `203.0.113.0/${24 + random(9)}`;
      default:
        return random(2) === 0 ? `2001:db8:${hex()}::${hex()}` : `2001:db8:${hex()}::/${48 + random(17)}`;
    }
  };
  test("2,000 random entries read back to what was written", () => {
    for (let i = 0; i < 2000; i++) {
      const first = 1 + random(65535);
      const last = random(2) === 0 ? first : first + random(65536 - first);
      const entry: SplitEntry =
        random(4) === 0 ? { target: targets() } : { target: targets(), ports: { protocol: random(2) === 0 ? "tcp" : "udp", first, last } };
      expect(splitPortSpec(formatEntry(entry))).toEqual({ ok: true, ...entry });
    }
  });
});
