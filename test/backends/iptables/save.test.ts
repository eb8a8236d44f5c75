import { describe, expect, test } from "bun:test";
import {
  acceptsLoopback,
  allowedEntries,
  enforcementProblems,
  jumpsBehind,
  portEntries,
  verdictCounters,
  INPUT_CHAIN,
  OUTPUT_CHAIN,
  ourPart,
  parseIptablesState,
} from "../../../src/backends/iptables/save.ts";
import { IN_RULES, OUT_RULES, TABLES } from "../../fixtures/iptables-saves.ts";

describe("parseIptablesState", () => {
  test("reads our state from *-save output, with or without counters", () => {
    const save =
      "*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [5:300]\n:DOMAINWALL-OUTPUT - [0:0]\n[3:180] -A OUTPUT -j DOMAINWALL-OUTPUT\n-A OUTPUT -d 192.0.2.1/32 -j ACCEPT\nCOMMIT\n";
    expect(parseIptablesState(save)).toEqual({ outputJumps: 1, inputJumps: 0, outputChain: true, inputChain: false });
  });

  test("a jump of ours that is not the first rule of its built-in chain is behind", () => {
    const save =
      "*filter\n:DOMAINWALL-OUTPUT - [0:0]\n:DOMAINWALL-INPUT - [0:0]\n-A INPUT -j DOMAINWALL-INPUT\n-A OUTPUT -j ACCEPT\n-A OUTPUT -j DOMAINWALL-OUTPUT\nCOMMIT\n";
    expect(parseIptablesState(save)).toEqual({
      outputJumps: 1,
      inputJumps: 1,
      outputChain: true,
      inputChain: true,
      behind: ["DOMAINWALL-OUTPUT"],
    });
  });
});

describe("enforcementProblems", () => {
  const chains = ":DOMAINWALL-OUTPUT - [0:0]\n:DOMAINWALL-INPUT - [0:0]\n";
  test.each([
    {
      name: "both jumps first",
      rules: "-A INPUT -j DOMAINWALL-INPUT\n-A OUTPUT -j DOMAINWALL-OUTPUT\n-A OUTPUT -j ACCEPT\n",
      problems: [],
    },
    {
      name: "the output jump missing",
      rules: "-A INPUT -j DOMAINWALL-INPUT\n",
      problems: ["IPv4: OUTPUT does not jump to DOMAINWALL-OUTPUT"],
    },
    {
      name: "the input jump missing",
      rules: "-A OUTPUT -j DOMAINWALL-OUTPUT\n",
      problems: ["IPv4: INPUT does not jump to DOMAINWALL-INPUT"],
    },
    {
      name: "a rule above our jump",
      rules: "-A INPUT -j DOMAINWALL-INPUT\n-A OUTPUT -j ACCEPT\n-A OUTPUT -j DOMAINWALL-OUTPUT\n",
      problems: ["IPv4: a rule in OUTPUT comes before the jump to DOMAINWALL-OUTPUT and decides first"],
    },
  ])("$name", ({ rules, problems }) => {
    expect(enforcementProblems(`*filter\n${chains}${rules}COMMIT\n`, "IPv4")).toEqual([...problems]);
    // What the watch's guard puts back on its own: a jump decided before (a missing jump is missingRules').
    expect(jumpsBehind(`*filter\n${chains}${rules}COMMIT\n`, "IPv4")).toEqual(problems.filter((p) => p.includes("comes before")));
  });
});

describe("ourPart", () => {
  test.each([
    { name: "nothing of ours", save: TABLES.foreignOnly, part: "" },
    {
      name: "the output chain, its jump and counters; no foreign line",
      save: TABLES.outputOnly,
      part: [":DOMAINWALL-OUTPUT - [0:0]", "[9:540] -A OUTPUT -j DOMAINWALL-OUTPUT", ...OUT_RULES("203.0.113.10"), ""].join("\n"),
    },
    {
      name: "both chains and jumps",
      save: TABLES.withInput,
      part: [
        ":DOMAINWALL-INPUT - [0:0]",
        ":DOMAINWALL-OUTPUT - [0:0]",
        "[2:120] -A INPUT -j DOMAINWALL-INPUT",
        "[9:540] -A OUTPUT -j DOMAINWALL-OUTPUT",
        ...IN_RULES,
        ...OUT_RULES("203.0.113.10"),
        "",
      ].join("\n"),
    },
    {
      name: "a save without counters",
      save: "*filter\n:OUTPUT ACCEPT\n:DOMAINWALL-OUTPUT -\n-A OUTPUT -j DOMAINWALL-OUTPUT\n-A OUTPUT -o eth0 -j DOMAINWALL-OUTPUT\n-A DOMAINWALL-OUTPUT -j DROP\n-A DOMAINWALL-OUTPUTS -j DROP\nCOMMIT\n",
      part: ":DOMAINWALL-OUTPUT - [0:0]\n-A OUTPUT -j DOMAINWALL-OUTPUT\n-A DOMAINWALL-OUTPUT -j DROP\n",
    },
    {
      name: "another table's chains of the same name",
      save: `*nat\n:DOMAINWALL-OUTPUT - [0:0]\n-A DOMAINWALL-OUTPUT -j RETURN\nCOMMIT\n${TABLES.outputOnly}`,
      part: ourPart(TABLES.outputOnly),
    },
  ])("$name", ({ save, part }) => {
    expect(ourPart(save)).toBe(part);
  });
});

describe("what status counts", () => {
  test("allowed entries are the plain -d ACCEPT rules of our output chain; DNS, ICMPv6 and foreign rules are not", () => {
    const save = [
      "*filter",
      ":DOMAINWALL-OUTPUT - [0:0]",
      "[0:0] -A OUTPUT -d 192.0.2.99/32 -j ACCEPT",
      "[0:0] -A DOMAINWALL-OUTPUT -d 198.51.100.2/32 -p udp -m udp --dport 53 -j ACCEPT",
      "[0:0] -A DOMAINWALL-OUTPUT -d ff02::/16 -p ipv6-icmp -m icmp6 --icmpv6-type 131 -m hl --hl-eq 1 -j ACCEPT",
      "[1:60] -A DOMAINWALL-OUTPUT -d 203.0.113.10/32 -j ACCEPT",
      "[0:0] -A DOMAINWALL-OUTPUT -d 203.0.113.0/24 -j ACCEPT",
      "COMMIT",
    ].join("\n");
    expect(allowedEntries(save)).toBe(2);
  });

  test("entries with ports are the -d -p --dport ACCEPT rules of our output chain; rules to port 53 (DNS to a resolver looks the same) are not", () => {
    const save = [
      "*filter",
      ":DOMAINWALL-OUTPUT - [0:0]",
      "[0:0] -A OUTPUT -d 192.0.2.99/32 -p tcp -m tcp --dport 443 -j ACCEPT",
      "[0:0] -A DOMAINWALL-OUTPUT -d 198.51.100.2/32 -p udp -m udp --dport 53 -j ACCEPT",
      "[0:0] -A DOMAINWALL-OUTPUT -d 198.51.100.2/32 -p tcp -m tcp --dport 53 -j ACCEPT",
      "[1:60] -A DOMAINWALL-OUTPUT -d 203.0.113.10/32 -j ACCEPT",
      "[0:0] -A DOMAINWALL-OUTPUT -d 198.51.100.9/32 -p tcp -m tcp --dport 53 -j ACCEPT",
      "[0:0] -A DOMAINWALL-OUTPUT -d 198.51.100.9/32 -p udp -m udp --dport 53 -j ACCEPT",
      "[0:0] -A DOMAINWALL-OUTPUT -d 203.0.113.0/24 -p tcp -m tcp --dport 8000:8100 -j ACCEPT",
      "COMMIT",
    ].join("\n");
    expect(portEntries(save)).toBe(1);
    expect(allowedEntries(save)).toBe(1);
  });

  test("drop counters add up the final drop or reject rules, not the INVALID drop", () => {
    expect(verdictCounters(TABLES.withInput, OUTPUT_CHAIN)).toEqual({ packets: 4, bytes: 240, audit: false });
    expect(verdictCounters(TABLES.withInput, INPUT_CHAIN)).toEqual({ packets: 5, bytes: 300, audit: false });
    const withInvalid = TABLES.outputOnly.replace("COMMIT", "[7:700] -A DOMAINWALL-OUTPUT -m conntrack --ctstate INVALID -j DROP\nCOMMIT");
    expect(verdictCounters(withInvalid, OUTPUT_CHAIN)).toEqual({ packets: 4, bytes: 240, audit: false });
  });
});

describe("acceptsLoopback: our output chain's -o lo -j ACCEPT, that rule alone", () => {
  const saved = (rule: string) => `*filter\n:${OUTPUT_CHAIN} - [0:0]\n[3:180] -A ${OUTPUT_CHAIN} ${rule}\nCOMMIT\n`;
  test.each([
    { rule: "-o lo -j ACCEPT", expected: true },
    { rule: "-o lo -p tcp -m tcp --dport 53 -j ACCEPT", expected: false },
    { rule: "-o lo -j DROP", expected: false },
  ])("$rule: $expected", ({ rule, expected }) => {
    expect(acceptsLoopback(saved(rule))).toBe(expected);
  });
});
