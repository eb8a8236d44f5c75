import { show } from "../messages.ts";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { usageError } from "../errors.ts";
import { COMMANDS, OPTION_NAMES, OPTIONS, takes, type Command, type OptionName } from "../config/options.ts";
import { settingOf, type Setting, type Settings } from "../config/settings.ts";

export type Invocation =
  | { readonly kind: "help"; readonly command?: Command }
  | { readonly kind: "version" }
  /** No command: print the usage and exit 2. */
  | { readonly kind: "usage" }
  /** `problems`: unknown, repeated or misplaced flags, reported with the configuration's own. */
  /** `args`: the words after the command (`explain DESTINATION`); config says which commands take them. */
  | {
      readonly kind: "run";
      readonly command: Command;
      readonly flags: Settings;
      readonly args: readonly string[];
      readonly problems: readonly string[];
    };

/** parseArgs' options, from the table: every non-switch may repeat (a list adds up; a value given twice is reported). */
const PARSE_OPTIONS: ParseArgsConfig["options"] = Object.fromEntries(
  OPTION_NAMES.map((name) => {
    const spec = OPTIONS[name];
    return [
      name,
      { type: spec.kind === "switch" ? "boolean" : "string", multiple: spec.kind !== "switch", ...(spec.short && { short: spec.short }) },
    ];
  }),
);

const isCommand = (word: string): word is Command => (COMMANDS as readonly string[]).includes(word);
const isOption = (name: string): name is OptionName => Object.hasOwn(OPTIONS, name);

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = row;
  }
  return previous[b.length]!;
}

const closest = (name: string): OptionName | undefined => {
  const ranked = OPTION_NAMES.map((option) => ({ option, d: distance(name, option) })).sort((x, y) => x.d - y.d)[0];
  return ranked !== undefined && ranked.d <= Math.max(2, Math.floor(name.length / 3)) ? ranked.option : undefined;
};

/** Parse argv (without the executable). Only flags here: the file and environment come in `layerSettings`. */
export function parseCli(argv: readonly string[]): Invocation {
  const { tokens } = parseArgs({ args: [...argv], options: PARSE_OPTIONS, allowPositionals: true, strict: false, tokens: true });
  const problems: string[] = [];
  const positionals: string[] = [];
  const given = new Map<OptionName, { raw: string; values: string[] }>();
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token.kind === "positional") positionals.push(token.value);
    if (token.kind !== "option") continue;
    if (!isOption(token.name)) {
      const guess = closest(token.name);
      problems.push(`unknown option ${token.rawName}${guess ? ` (did you mean --${guess}?)` : ""}`);
      // `--hots a.example`: the value belongs to the misspelt option, not to the command line.
      const next = tokens[i + 1];
      if (token.value === undefined && guess && OPTIONS[guess].kind !== "switch" && next?.kind === "positional") i++;
      continue;
    }
    const spec = OPTIONS[token.name];
    const value = spec.kind === "switch" ? "true" : token.value;
    if (value === undefined || (!token.inlineValue && spec.kind !== "switch" && value.startsWith("-") && value !== "-")) {
      problems.push(
        `${token.rawName} needs a value${value === undefined ? "" : ` (to give one that starts with '-', write --${token.name}=${value})`}`,
      );
      continue;
    }
    if (spec.kind === "switch" && token.value !== undefined) problems.push(`--${token.name} takes no value`);
    const entry = given.get(token.name) ?? { raw: `--${token.name}`, values: [] };
    entry.values.push(value);
    given.set(token.name, entry);
  }
  const dryRun = given.has("dry-run");
  if (given.has("version")) return { kind: "version" };
  const [word, extra] = positionals;
  if (word === "help" && !given.has("help")) {
    if (extra !== undefined && !isCommand(extra)) throw usageError(`unknown command ${show(extra)}; commands: ${COMMANDS.join(", ")}`);
    return { kind: "help", ...(extra !== undefined && { command: extra as Command }) };
  }
  if (word !== undefined && !isCommand(word)) throw usageError(`unknown command ${show(word)}; commands: ${COMMANDS.join(", ")}`);
  if (dryRun && word !== undefined && word !== "render")
    throw usageError(`--dry-run is the same as 'render' and cannot be combined with '${word}'`);
  const command: Command | undefined = dryRun ? "render" : word;
  if (given.has("help")) return { kind: "help", ...(command !== undefined && { command }) };
  if (command === undefined) return { kind: "usage" };
  const flags = new Map<OptionName, Setting>();
  for (const [name, { raw, values }] of given) {
    const spec = OPTIONS[name];
    if (!takes(command, name)) problems.push(`${raw} does not apply to '${command}'`);
    else if (spec.kind === "value" && new Set(values).size > 1)
      problems.push(`${raw} is given ${values.length} times (${values.map((v) => show(v)).join(" and ")}): give it once`);
    else flags.set(name, settingOf(name, raw, spec.kind === "list" ? values.join(",") : values[0]!));
  }
  const args = positionals.slice(1);
  return { kind: "run", command, flags, args, problems };
}
