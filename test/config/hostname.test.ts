import { describe, expect, test } from "bun:test";
import { parseHost } from "../../src/config/hostname.ts";

describe("parseHost", () => {
  test.each([
    { input: "api.example.com", name: "api.example.com" },
    // A trailing dot makes a name absolute (no search list): it is kept, so DNS is asked exactly that name.
    { input: "API.Example.COM.", name: "api.example.com." },
    { input: "München.example.", name: "xn--mnchen-3ya.example." },
    { input: "localhost.", name: "localhost." },
    { input: `${"a".repeat(61)}.`.repeat(4).concat("a".repeat(5), "."), name: `${"a".repeat(61)}.`.repeat(4).concat("a".repeat(5), ".") },
    { input: "München.example", name: "xn--mnchen-3ya.example" },
    { input: "xn--mnchen-3ya.example", name: "xn--mnchen-3ya.example" },
    { input: "svc.cluster.local", name: "svc.cluster.local" },
    { input: "a-b.c0", name: "a-b.c0" },
    { input: "localhost", name: "localhost" },
    { input: `${"a".repeat(63)}.example`, name: `${"a".repeat(63)}.example` },
  ])("name $input → $name", ({ input, name }) => {
    expect(parseHost(input)).toEqual({ ok: true, host: { kind: "name", name } });
  });

  test.each([
    { input: "192.0.2.1", text: "192.0.2.1" },
    { input: "2001:db8::1", text: "2001:db8::1" },
    { input: "[2001:DB8::1]", text: "2001:db8::1" },
  ])("IP literal $input is an address", ({ input, text }) => {
    const parsed = parseHost(input);
    expect(parsed.ok && parsed.host.kind === "address" ? parsed.host.cidr.text : undefined).toBe(text);
  });

  test.each([
    { input: "*.Example.COM.", entry: "*.example.com" },
    { input: "**.pypi.org", entry: "**.pypi.org" },
    { input: "*.München.example", entry: "*.xn--mnchen-3ya.example" },
  ])("wildcard $input → $entry (config allows it only with --dns-proxy)", ({ input, entry }) => {
    expect(parseHost(input)).toEqual({ ok: true, host: { kind: "wildcard", entry } });
  });

  const rejected: { input: string; reason: string }[] = [
    { input: "a.example;drop", reason: "only letters" },
    { input: 'a"b.example', reason: "only letters" },
    { input: "a{b}.example", reason: "only letters" },
    { input: "a\nb.example", reason: "only letters" },
    { input: "a b.example", reason: "only letters" },
    { input: "a_b.example", reason: "only letters" },
    { input: "*example.com", reason: "whole leftmost label" },
    { input: "a.*.example.com", reason: "only letters" },
    { input: "*.*.example.com", reason: "whole leftmost label" },
    { input: "***.example.com", reason: "whole leftmost label" },
    { input: "*.192.0.2.1", reason: "not an address" },
    { input: "**.a_b.example", reason: "only letters" },
    { input: "-a.example", reason: 'label "-a"' },
    { input: "a-.example", reason: 'label "a-"' },
    { input: "a..example", reason: "label" },
    { input: `${"a".repeat(64)}.example`, reason: "label" },
    { input: `${"a".repeat(60)}.`.repeat(5), reason: "longer than 253" },
    { input: "1.2.3", reason: "all-numeric" },
    { input: "192.0.2.256", reason: "all-numeric" },
    { input: "192.0.2.0/24", reason: "only letters" },
    { input: ".", reason: "empty name" },
    { input: "1.2.3.0x4", reason: "hex or octal" },
    { input: "0x7f.0.0.0x1", reason: "hex or octal" },
    { input: "0300.0000.0002.0001", reason: "all-numeric" },
  ];
  test.each(rejected)("rejects $input ($reason)", ({ input, reason }) => {
    const parsed = parseHost(input);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toContain(reason);
  });
});
