import type { Run, RunResult } from "../../src/run.ts";
import type { RunCall } from "./fake-run.ts";

/**
 * A fake iptables-legacy that models each family's filter table (as knftables' Fake models nft's):
 * chains with policies and counters, rules in order. `*-legacy-restore` applies its input with
 * `--noflush` semantics in one commit: `:CHAIN POLICY [p:b]` sets a built-in chain's policy, creates
 * a user chain or flushes it; `-N`, `-A`, `-I CHAIN [N]`, `-D CHAIN RULE|N`, `-F [CHAIN]`, `-X CHAIN`;
 * `[p:b]` counters count only with `--counters`; `--test` changes nothing. A line the kernel would
 * refuse (a missing chain or rule, a jump to no chain, deleting a built-in, non-empty or referenced
 * chain) fails the whole commit with the real tool's message, leaving the table as it was.
 * `*-legacy-save [-c] -t filter` prints the table in the real order: built-in chains, then user
 * chains by name, then rules chain by chain.
 *
 * Rules are kept as text. Like the kernel it writes `-d/-s ADDRESS` with its prefix length and
 * ICMPv6 types by number; other spellings (a `--dport` without `-m udp`) are kept as written.
 */
type Family = 4 | 6;
interface Rule {
  readonly spec: string;
  readonly counters: readonly [number, number];
}
interface Chain {
  readonly policy: string;
  readonly counters: readonly [number, number];
  readonly rules: readonly Rule[];
}
type Table = ReadonlyMap<string, Chain>;

const BUILTIN = ["INPUT", "FORWARD", "OUTPUT"];
const TARGETS = new Set([
  "ACCEPT",
  "DROP",
  "RETURN",
  "REJECT",
  "LOG",
  "NFLOG",
  "QUEUE",
  "NFQUEUE",
  "AUDIT",
  "MARK",
  "CONNMARK",
  "CT",
  "TCPMSS",
]);
const ICMPV6_TYPES: Record<string, string> = {
  "router-solicitation": "133",
  "router-advertisement": "134",
  "neighbour-solicitation": "135",
  "neighbour-advertisement": "136",
};
const TOOLS = {
  "iptables-legacy-restore": { family: 4, kind: "restore", name: "iptables-restore" },
  "ip6tables-legacy-restore": { family: 6, kind: "restore", name: "ip6tables-restore" },
  "iptables-legacy-save": { family: 4, kind: "save", name: "iptables-save" },
  "ip6tables-legacy-save": { family: 6, kind: "save", name: "ip6tables-save" },
} as const;

const emptyTable = (): Table => new Map(BUILTIN.map((name) => [name, { policy: "ACCEPT", counters: [0, 0], rules: [] }]));

/** A rule as the kernel gives it back: addresses with their prefix, ICMPv6 types by number. */
function canonical(spec: string, family: Family): string {
  const words = spec.trim().split(/\s+/);
  return words
    .map((word, i) => {
      const option = words[i - 1];
      if ((option === "-d" || option === "-s") && !word.includes("/")) return `${word}/${family === 4 ? 32 : 128}`;
      if (option === "--icmpv6-type") return ICMPV6_TYPES[word] ?? word;
      return word;
    })
    .join(" ");
}
const targetOf = (spec: string) => /(?:^|\s)-[jg] (\S+)/.exec(spec)?.[1];

/** A line the kernel (or the tool) refuses: the whole commit fails with this exit code and message. */
class Refused extends Error {
  constructor(
    readonly line: number,
    readonly why: string,
    readonly code = 1,
  ) {
    super(`line ${line} failed (${why})`);
  }
  stderr(tool: string): string {
    return this.code === 2
      ? `${tool} v1.8.9 (legacy): ${this.why}\n\nError occurred at line: ${this.line}\nTry \`${tool} -h' or '${tool} --help' for more information.\n`
      : `${tool}: line ${this.line} failed\n`;
  }
}

/** Apply one restore input to a copy of `table`; throws Refused naming the line the kernel refuses. */
function restore(table: Table, input: string, family: Family, withCounters: boolean): Table {
  const chains = new Map([...table].map(([name, chain]) => [name, { ...chain, rules: [...chain.rules] }]));
  const lines = input.split("\n");
  let inFilter = false;
  lines.forEach((raw, index) => {
    const line = raw.trim();
    const refuse = (why: string, code = 1): never => {
      throw new Refused(index + 1, why, code);
    };
    if (line === "" || line.startsWith("#")) return;
    if (line.startsWith("*")) {
      if (line !== "*filter") refuse(`only the filter table is modelled: ${line}`);
      inFilter = true;
      return;
    }
    if (!inFilter) refuse("no table");
    if (line === "COMMIT") {
      inFilter = false;
      return;
    }
    if (line.startsWith(":")) {
      const match = /^:(\S+) (\S+)(?: \[(\d+):(\d+)\])?$/.exec(line) ?? refuse("bad chain line");
      const [name, policy, p, b] = [match[1]!, match[2]!, match[3], match[4]];
      const counters: [number, number] = withCounters && p !== undefined ? [Number(p), Number(b)] : [0, 0];
      const existing = chains.get(name);
      // A built-in chain keeps its rules; without --counters its counters start again from zero.
      if (BUILTIN.includes(name)) chains.set(name, { ...existing!, policy: policy === "-" ? existing!.policy : policy, counters });
      else chains.set(name, { policy: "-", counters: [0, 0], rules: [] }); // --noflush: a named chain is created or flushed
      return;
    }
    const match = /^(?:\[(\d+):(\d+)\] )?(-[AIDFXN])(?: (\S+))?(?: (.*))?$/.exec(line) ?? refuse("not a command");
    const [p, b, command, name, rest] = [match[1], match[2], match[3]!, match[4], match[5] ?? ""];
    const counters: [number, number] = withCounters && p !== undefined ? [Number(p), Number(b)] : [0, 0];
    const chainOf = (chainName: string | undefined) =>
      (chainName !== undefined ? chains.get(chainName) : undefined) ?? refuse(`no chain ${chainName}`);
    const checkTarget = (spec: string) => {
      const target = targetOf(spec);
      if (target !== undefined && !TARGETS.has(target) && !chains.has(target))
        refuse(`Couldn't load target \`${target}':No such file or directory`, 2);
    };
    switch (command) {
      case "-N":
        if (name === undefined || chains.has(name)) refuse(`chain ${name} exists`);
        chains.set(name!, { policy: "-", counters: [0, 0], rules: [] });
        return;
      case "-A": {
        const chain = chainOf(name);
        const spec = canonical(rest, family);
        checkTarget(spec);
        chains.set(name!, { ...chain, rules: [...chain.rules, { spec, counters }] });
        return;
      }
      case "-I": {
        const chain = chainOf(name);
        const position = /^(\d+)(?: (.*))?$/.exec(rest);
        const at = position ? Number(position[1]) : 1;
        const spec = canonical(position ? (position[2] ?? "") : rest, family);
        if (at < 1 || at > chain.rules.length + 1) refuse(`index ${at} out of range`);
        checkTarget(spec);
        chains.set(name!, { ...chain, rules: [...chain.rules.slice(0, at - 1), { spec, counters }, ...chain.rules.slice(at - 1)] });
        return;
      }
      case "-D": {
        const chain = chainOf(name);
        const at = /^\d+$/.test(rest) ? Number(rest) - 1 : chain.rules.findIndex((rule) => rule.spec === canonical(rest, family));
        if (at < 0 || at >= chain.rules.length) refuse(`no such rule in ${name}: ${rest}`);
        chains.set(name!, { ...chain, rules: chain.rules.filter((_, i) => i !== at) });
        return;
      }
      case "-F":
        for (const chainName of name === undefined ? [...chains.keys()] : [name])
          chains.set(chainName, { ...chainOf(chainName), rules: [] });
        return;
      case "-X": {
        if (name === undefined) refuse("-X without a chain is not modelled");
        if (BUILTIN.includes(name!)) refuse(`${name} is built in`);
        if (chainOf(name).rules.length > 0) refuse(`${name} is not empty`);
        const referrer = [...chains].find(([, chain]) => chain.rules.some((rule) => targetOf(rule.spec) === name));
        if (referrer !== undefined) refuse(`${name} is referenced from ${referrer[0]}`);
        chains.delete(name!);
        return;
      }
    }
  });
  if (inFilter) throw new Refused(lines.length, "no COMMIT");
  return chains;
}

/** The table as `*-save [-c] -t filter` prints it. */
function save(table: Table, tool: string, withCounters: boolean): string {
  const count = ([p, b]: readonly [number, number]) => `[${p}:${b}]`;
  const users = [...table.keys()].filter((name) => !BUILTIN.includes(name)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const order = [...BUILTIN, ...users];
  return [
    `# Generated by ${tool} v1.8.9`,
    "*filter",
    ...order.map((name) => `:${name} ${table.get(name)!.policy} ${count(withCounters ? table.get(name)!.counters : [0, 0])}`),
    ...order.flatMap((name) =>
      table.get(name)!.rules.map((rule) => `${withCounters ? `${count(rule.counters)} ` : ""}-A ${name} ${rule.spec}`.trimEnd()),
    ),
    "COMMIT",
    "# Completed",
    "",
  ].join("\n");
}

export interface FakeIptablesOptions {
  /** Each family's filter table to start from, as `*-save -c` prints it (counters kept); empty by default. */
  readonly tables?: Partial<Record<Family, string>>;
}

/**
 * The fake: `run` answers the four iptables-legacy tools (anything else fails, as a missing binary
 * would); `calls` records them. `failCommit` makes a family's restores fail (all, or those `when`
 * matches) with `stderr`, changing nothing, as a refused kernel commit does.
 */
export function fakeIptables(options: FakeIptablesOptions = {}) {
  const tables: Record<Family, Table> = { 4: emptyTable(), 6: emptyTable() };
  const failures: { family: Family; stderr: string; when: (call: RunCall) => boolean }[] = [];
  const calls: RunCall[] = [];
  /** Change a family's table outside domainwall, as another tool would: a `--noflush --counters` restore. */
  const load = (family: Family, input: string) => {
    tables[family] = restore(tables[family], input, family, true);
  };
  for (const family of [4, 6] as const) if (options.tables?.[family] !== undefined) load(family, options.tables[family]!);

  const run: Run = async (command, args, stdin) => {
    const call: RunCall = { command, args: [...args], stdin };
    calls.push(call);
    const tool = TOOLS[command as keyof typeof TOOLS];
    const result = (r: Partial<RunResult>): RunResult => ({ code: 0, stdout: "", stderr: "", ...r });
    if (tool === undefined) return result({ code: 127, stderr: `${command}: not found` });
    if (tool.kind === "save") {
      const table = args[args.indexOf("-t") + 1];
      if (args.indexOf("-t") < 0 || table !== "filter") return result({ code: 1, stderr: `${tool.name}: only -t filter is modelled` });
      return result({ stdout: save(tables[tool.family], tool.name, args.includes("-c")) });
    }
    if (!args.includes("--noflush")) return result({ code: 2, stderr: `${tool.name}: only --noflush is modelled` });
    const failure = failures.find((f) => f.family === tool.family && f.when(call));
    if (failure !== undefined) return result({ code: 1, stderr: failure.stderr });
    try {
      const next = restore(tables[tool.family], stdin ?? "", tool.family, args.includes("--counters"));
      if (!args.includes("--test")) tables[tool.family] = next;
      return result({});
    } catch (error) {
      if (!(error instanceof Refused)) throw error;
      return result({ code: error.code, stderr: error.stderr(tool.name) });
    }
  };

  return {
    run,
    calls,
    load,
    /** The family's table as `*-save -c -t filter` prints it. */
    saved: (family: Family) => save(tables[family], TOOLS[family === 4 ? "iptables-legacy-save" : "ip6tables-legacy-save"].name, true),
    failCommit(family: Family, stderr: string, when: (call: RunCall) => boolean = () => true) {
      failures.push({ family, stderr, when });
    },
  };
}
