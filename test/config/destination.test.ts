import { describe, expect, test } from "bun:test";
import { parseDestination } from "../../src/config/destination.ts";

describe("parseDestination", () => {
  test.each([
    { input: "203.0.113.20", expected: { host: { kind: "address", address: "203.0.113.20" }, protocol: "tcp" } },
    { input: "203.0.113.20:80", expected: { host: { kind: "address", address: "203.0.113.20" }, port: 80, protocol: "tcp" } },
    { input: "203.0.113.5:8080/udp", expected: { host: { kind: "address", address: "203.0.113.5" }, port: 8080, protocol: "udp" } },
    { input: "2001:DB8:0::1", expected: { host: { kind: "address", address: "2001:db8::1" }, protocol: "tcp" } },
    { input: "[2001:db8::1]:443", expected: { host: { kind: "address", address: "2001:db8::1" }, port: 443, protocol: "tcp" } },
    { input: "API.example.", expected: { host: { kind: "name", name: "api.example." }, protocol: "tcp" } },
    { input: "api.example:443", expected: { host: { kind: "name", name: "api.example" }, port: 443, protocol: "tcp" } },
  ])("$input", ({ input, expected }) => {
    expect(parseDestination(input)).toEqual({ ok: true, destination: expected as never });
  });

  test.each([
    { input: "203.0.113.20:0", reason: "port 0 is not between 1 and 65535" },
    { input: "203.0.113.20:99999", reason: "port 99999 is not between 1 and 65535" },
    { input: "[203.0.113.20]:80", reason: "only an IPv6 address goes in brackets" },
    { input: "203.0.113.0/24", reason: "a network (CIDR) is not a destination: give one address" },
    { input: "api.example/udp", reason: "a protocol (/tcp, /udp) goes after a port: HOST:PORT/udp" },
    { input: "evil;drop", reason: "only letters, digits, '-' and '.' are allowed" },
    { input: "", reason: "empty name" },
  ])("refuses $input", ({ input, reason }) => {
    expect(parseDestination(input)).toEqual({ ok: false, reason });
  });
});
