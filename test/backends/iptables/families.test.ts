import { expect, test } from "bun:test";
import { policyMark, renderIptables } from "../../../src/backends/iptables/render.ts";
import { familyProblems, missingRules, policyMarkOf } from "../../../src/backends/iptables/save.ts";
import { POLICIES } from "../../fixtures/policies.ts";

/** What `*-save` prints after a fresh load of `rendered`: the chain declared, its rules appended, the jump. */
const savedAfter = (rendered: string): string =>
  rendered
    .split("\n")
    .filter((l) => l.startsWith(":") || l.startsWith("-A ") || l.startsWith("-I ") || l === "*filter" || l === "COMMIT")
    .map((l) => l.replace(/^-I (\S+) 1 /, "-A $1 "))
    .join("\n");

const [one, other] = [POLICIES["egress-only"]!, POLICIES["ports"]!];

test("one policy has one mark in both families' rules; another policy another", () => {
  expect(policyMark(one)).toMatch(/^[0-9a-f]{16}$/);
  expect(policyMarkOf(savedAfter(renderIptables(one, 4)))).toBe(policyMark(one));
  expect(policyMarkOf(savedAfter(renderIptables(one, 6)))).toBe(policyMark(one));
  expect(policyMark(other)).not.toBe(policyMark(one));
});

test.each([
  { name: "the same policy in both", v4: savedAfter(renderIptables(one, 4)), v6: savedAfter(renderIptables(one, 6)), differ: false },
  { name: "IPv4 new, IPv6 old", v4: savedAfter(renderIptables(other, 4)), v6: savedAfter(renderIptables(one, 6)), differ: true },
  { name: "IPv4 loaded, IPv6 nothing", v4: savedAfter(renderIptables(one, 4)), v6: "*filter\n:OUTPUT ACCEPT [0:0]\nCOMMIT", differ: true },
  {
    name: "both unmarked (an older domainwall loaded them)",
    v4: ":DOMAINWALL-OUTPUT - [0:0]\n-A DOMAINWALL-OUTPUT -j DROP",
    v6: ":DOMAINWALL-OUTPUT - [0:0]\n-A DOMAINWALL-OUTPUT -j DROP",
    differ: false,
  },
  { name: "nothing in either", v4: "", v6: "", differ: false },
])("families: $name", ({ v4, v6, differ }) => {
  const problems = familyProblems(v4, v6);
  expect(problems.length > 0).toBe(differ);
  if (differ) expect(problems[0]).toStartWith("IPv4 and IPv6 policies differ (IPv4: ");
});

test("missing rules: a family's chain, its rule count and its jump, against the rendered policy", () => {
  const rendered = renderIptables(one, 4);
  const saved = savedAfter(rendered);
  expect(missingRules(rendered, saved, "IPv4")).toEqual([]);
  expect(missingRules(rendered, "*filter\nCOMMIT", "IPv4")).toEqual(["IPv4: chain DOMAINWALL-OUTPUT"]);
  const flushed = saved
    .split("\n")
    .filter((l) => !l.startsWith("-A DOMAINWALL-OUTPUT"))
    .join("\n");
  expect(missingRules(rendered, flushed, "IPv4")).toEqual([
    expect.stringMatching(/^IPv4: rules of chain DOMAINWALL-OUTPUT \(0 held of \d+\)$/),
  ]);
  const unjumped = saved.replace("-A OUTPUT -j DOMAINWALL-OUTPUT", "");
  expect(missingRules(rendered, unjumped, "IPv4")).toEqual(["IPv4: the jump from OUTPUT to DOMAINWALL-OUTPUT"]);
});
