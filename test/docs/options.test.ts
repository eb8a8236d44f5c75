// The option table (src/config/options.ts) and the docs say the same: every option has a row in an
// option table of the docs (a table whose header starts `flag | environment | config key`) with its
// variable, its config key and its commands; every option, command and config key the docs name
// exists. Nothing here lists the options: a new one fails until it is documented, and passes then.
import { describe, expect, test } from "bun:test";
import { COMMANDS, type Command, FILE_KEYS, OPTION_NAMES, OPTIONS, type OptionName, takes } from "../../src/config/options.ts";
import { cells, codeBlocks, inlineCode, MARKDOWN, prose, read, tablesOf } from "./docs.ts";

const isOption = (name: string): name is OptionName => Object.hasOwn(OPTIONS, name);
const flagsIn = (text: string): string[] => [...text.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)].map((m) => m[1]!);
const codeSpan = (text: string): string[] => [...text.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
const DASH = new Set(["–", "-", ""]);

interface OptionRow {
  readonly doc: string;
  readonly flags: string[];
  readonly env: string;
  readonly key: string;
  readonly commands: string;
}

const optionRows: OptionRow[] = MARKDOWN.flatMap((doc) =>
  tablesOf(read(doc))
    .filter((t) => t.header[0] === "flag" && t.header[1] === "environment" && t.header[2] === "config key")
    .flatMap((t) =>
      t.rows.map((row) => ({
        doc,
        flags: flagsIn(row[0] ?? ""),
        env: row[1] ?? "",
        key: row[2] ?? "",
        commands: t.header[3] === "commands" ? (row[3] ?? "") : "",
      })),
    ),
);

/** "apply, render", "every command", "every command but confirm" → the commands named. */
export function commandsOf(cell: string): Command[] | undefined {
  if (cell === "") return undefined;
  const every = /^every command(?: but (.+))?$/.exec(cell);
  if (every) {
    const except = (every[1] ?? "").split(/,\s*|\s+and\s+/).filter(Boolean);
    return COMMANDS.filter((c) => !except.includes(c));
  }
  return cell.split(/,\s*/) as Command[];
}

/** What is wrong with one option row, compared with the option table. */
export function rowProblems(row: OptionRow): string[] {
  const where = `${row.doc}: --${row.flags.join(", --")}`;
  if (row.flags.length === 0) return [`${row.doc}: an option-table row without a --flag`];
  return row.flags.flatMap((flag) => {
    if (!isOption(flag)) return [`${where}: --${flag} is not an option of src/config/options.ts`];
    const spec = OPTIONS[flag];
    const problems: string[] = [];
    const envs = codeSpan(row.env);
    if (spec.env ? !envs.includes(spec.env) : !DASH.has(row.env))
      problems.push(`${where}: environment should be ${spec.env ? `\`${spec.env}\`` : "–"}, is "${row.env}"`);
    const keys = codeSpan(row.key);
    if (spec.file ? !keys.includes(flag) : !DASH.has(row.key))
      problems.push(`${where}: config key should be ${spec.file ? `\`${flag}\`` : "–"}, is "${row.key}"`);
    const commands = commandsOf(row.commands);
    if (commands && [...commands].sort().join() !== [...spec.commands].sort().join())
      problems.push(`${where}: commands should be ${spec.commands.join(", ")}, are "${row.commands}"`);
    return problems;
  });
}

test("every option of src/config/options.ts has a row in an option table of the docs", () => {
  const documented = new Set(optionRows.flatMap((r) => r.flags));
  expect(OPTION_NAMES.filter((name) => !documented.has(name))).toEqual([]);
});

describe("each option row says the option's variable, config key and commands", () => {
  for (const doc of [...new Set(optionRows.map((r) => r.doc))])
    test(doc, () => {
      expect(optionRows.filter((r) => r.doc === doc).flatMap(rowProblems)).toEqual([]);
    });
});

test("a row with a wrong variable, key, command list or option is caught", () => {
  const row = (flags: string[], env: string, key: string, commands = "") => ({ doc: "x.md", flags, env, key, commands });
  expect(rowProblems(row(["hosts"], "`hosts_csv`", "`hosts`", "apply, render, check, watch"))).toEqual([]);
  expect(rowProblems(row(["hosts"], "–", "`hosts`"))[0]).toContain("environment should be `hosts_csv`");
  expect(rowProblems(row(["audit"], "–", "–"))[0]).toContain("config key should be `audit`");
  expect(rowProblems(row(["json"], "–", "`json`"))[0]).toContain("config key should be –");
  expect(rowProblems(row(["grace"], "–", "`grace`", "apply, watch"))[0]).toContain("commands should be watch");
  expect(rowProblems(row(["hots"], "–", "–"))[0]).toContain("--hots is not an option");
  expect(commandsOf("every command but confirm")).toEqual(COMMANDS.filter((c) => c !== "confirm"));
});

/** Flags of other tools that the docs name in code of their own (`--test` of iptables-restore). */
const OTHER_TOOLS = new Set(["dport", "test", "check", "noflush", "counters", "service-cluster-ip-range", "kill-who"]);

/** Words after "domainwall" in domainwall's own output, quoted in the docs: the iptables policy mark, status's "domainwall has no rules here". */
const OUTPUT_WORDS = new Set(["policy", "has"]);

/** Each `domainwall COMMAND ...` the docs show (in code), with the flags it is given. */
function invocations(markdown: string): { line: string; command: string; flags: string[] }[] {
  const shell = codeBlocks(markdown)
    .filter((b) => b.lang === "sh" || b.lang === "console")
    .flatMap((b) => b.text.split("\n"));
  const code = [...shell, ...inlineCode(prose(markdown))].map((line) => line.replace(/(^|\s)#.*$/, ""));
  return code.flatMap((text) =>
    [...text.matchAll(/(?:^|[\s(/"'$])domainwall\s+([a-z-]+)([^|;&\n]*)/g)].map((m) => ({
      line: text.trim(),
      command: m[1]!,
      flags: flagsIn(m[2] ?? ""),
    })),
  );
}

describe("every option and command the docs use exists, and the command takes it", () => {
  for (const doc of MARKDOWN)
    test(doc, () => {
      const markdown = read(doc);
      const problems: string[] = [];
      for (const { line, command, flags } of invocations(markdown)) {
        if (command === "help" || OUTPUT_WORDS.has(command)) continue;
        if (!(COMMANDS as readonly string[]).includes(command)) {
          if (!command.startsWith("-")) problems.push(`${line}: no command ${command}`);
          continue;
        }
        for (const flag of flags)
          if (!isOption(flag)) problems.push(`${line}: no option --${flag}`);
          else if (!takes(command as Command, flag)) problems.push(`${line}: ${command} does not take --${flag}`);
      }
      for (const span of inlineCode(prose(markdown)))
        for (const flag of span.startsWith("--") ? flagsIn(span).slice(0, 1) : [])
          if (!isOption(flag) && !OTHER_TOOLS.has(flag)) problems.push(`\`${span}\`: no option --${flag}`);
      for (const block of codeBlocks(markdown).filter((b) => b.lang === "toml"))
        for (const m of block.text.matchAll(/^([a-z][a-z0-9-]*)\s*=/gm))
          if (!(FILE_KEYS as readonly string[]).includes(m[1]!)) problems.push(`toml: no config key ${m[1]}`);
      expect(problems).toEqual([]);
    });
});

test("the README's commands table lists every command, and only commands", () => {
  const table = tablesOf(read("README.md")).find((t) => t.header[0] === "command");
  const named = (table?.rows ?? []).map((row) => codeSpan(row[0] ?? "")[0]?.split(" ")[0] ?? "");
  expect([...named].sort()).toEqual([...COMMANDS].sort());
});

test("the list of keys a config file takes is the option table's", () => {
  const keys = optionRows.flatMap((r) => codeSpan(r.key)).filter((k) => !DASH.has(k));
  expect([...new Set(keys)].sort()).toEqual([...FILE_KEYS].sort());
});

// cells is re-exported for tests that parse a row by hand.
export { cells };

test("the options docs/configuration.md calls list options are the option table's lists", () => {
  const text = read("docs/configuration.md").replace(/\s+/g, " ");
  const named = flagsIn(/A list option \(([^)]*)\)/.exec(text)?.[1] ?? "");
  expect(named.sort()).toEqual(OPTION_NAMES.filter((name) => OPTIONS[name].kind === "list").sort());
});
