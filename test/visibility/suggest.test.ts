import { describe, expect, test } from "bun:test";
import type { DeniedDestination } from "../../src/status.ts";
import { renderSuggestion, suggestAllowlist } from "../../src/visibility/suggest.ts";

const out = (address: string, protocol: string, port: number, packets: number): DeniedDestination => ({
  address,
  protocol,
  port,
  direction: "out",
  packets,
  bytes: packets * 60,
});

describe("suggest and DNS to a resolver", () => {
  const denied = [
    out("203.0.113.20", "tcp", 443, 5),
    out("9.9.9.9", "udp", 53, 7),
    out("9.9.9.9", "tcp", 53, 1),
    out("2001:db8::53", "udp", 53, 2),
  ];

  test("an address's port 53 is never an allowlist entry: it is proposed for --dns-servers, with a warning", () => {
    const suggestion = suggestAllowlist(denied, () => []);
    expect(suggestion.hosts.map((s) => s.entry)).toEqual(["203.0.113.20:443/tcp"]);
    expect(suggestion.dnsServers).toEqual([
      { address: "9.9.9.9", packets: 8 },
      { address: "2001:db8::53", packets: 2 },
    ]);
    const text = renderSuggestion(suggestion, denied.length);
    expect(text).toContain("\nhosts_csv=203.0.113.20:443/tcp\n");
    expect(text).not.toContain("9.9.9.9:53");
    expect(text).toContain(
      "# WARNING: DNS (port 53) to 9.9.9.9 (8 packets), 2001:db8::53 (2 packets) was denied. An entry for it would let anything here send data to that server as DNS queries; if this host should use it as its resolver, add it to --dns-servers instead:\n# --dns-servers 9.9.9.9,2001:db8::53\n",
    );
  });

  test("even under a listed name (a resolver's address a name also had)", () => {
    const suggestion = suggestAllowlist([out("9.9.9.9", "udp", 53, 3)], () => ["dns.example"]);
    expect(suggestion.hosts).toEqual([]);
    expect(renderSuggestion(suggestion, 1)).not.toContain("hosts_csv");
  });
});
