import { expect, test } from "bun:test";
import { describeSummary } from "../../src/commands/prepare.ts";

test.each([
  { resolved: 1, text: "1 name resolved, 0 skipped" },
  { resolved: 0, text: "0 names resolved, 0 skipped" },
  { resolved: 2, text: "2 names resolved, 0 skipped" },
])("the summary says $text", ({ resolved, text }) => {
  const summary = { namesResolved: resolved, namesSkipped: 0, namesFailed: 0, ipv4: 1, ipv6: 0, ports: [] };
  expect(describeSummary(summary, 5)).toStartWith(`${text}; 1 IPv4 and 0 IPv6 allowed`);
});
