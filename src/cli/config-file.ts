import { clip, messageOf, show } from "../messages.ts";
import { FILE_KEYS, OPTIONS, type OptionName } from "../config/options.ts";
import { settingOf, type Setting } from "../config/settings.ts";

/**
 * A configuration file (`--config FILE`) is TOML whose keys are the long flag names:
 *
 *     hosts = ["api.example.com", "deb.debian.org"]   # comments say why each name is here
 *     ports = [22]
 *     dns-servers = "any"
 *     strict = true
 *
 * TOML rather than JSON because a list of allowed names wants comments, and Bun parses TOML
 * natively (no dependency). Values are checked here for shape only; the option table's parsers
 * validate their content, as for flags and variables. A TOML array stays a list of items (an item
 * holding a comma is refused, never split); a number keeps the text it was written as, so
 * `ports = 8080.0` is refused as a port rather than read as 8080.
 */
export interface ConfigFile {
  readonly settings: ReadonlyMap<OptionName, Setting>;
  readonly problems: readonly string[];
}

type Scalar = string | number;

/** The number literals of each top-level key, in order, as written (`8080.0`, `1e3`, `0x50`). */
function numberLiterals(text: string): Map<string, string[]> {
  const literals = new Map<string, string[]>();
  let key: string | undefined;
  let depth = 0;
  // Strings (basic, literal, multi-line), comments, keys at depth 0, and anything number-like.
  const token =
    /"""[\s\S]*?"""|'''[\s\S]*?'''|"(?:[^"\\\n]|\\.)*"|'[^'\n]*'|#[^\n]*|[[\]{}]|^[ \t]*([A-Za-z0-9_-]+)[ \t]*=|[+-]?(?:\d[\w.+-]*|inf|nan)/gm;
  for (const match of text.matchAll(token)) {
    const [whole, name] = match;
    if (name !== undefined && depth === 0) key = name;
    else if (whole === "[" || whole === "{") depth++;
    else if (whole === "]" || whole === "}") depth--;
    else if (key !== undefined && /^[+-]?(\d|inf|nan)/.test(whole)) literals.set(key, [...(literals.get(key) ?? []), whole]);
  }
  return literals;
}

/**
 * The line where a TOML statement that does not parse begins: the one after the longest prefix of
 * whole lines that parses (Bun's parser does not say).
 */
function errorLine(text: string): number | undefined {
  const lines = text.split("\n");
  // One parse per line: quadratic, so only for a file of a length people write by hand.
  if (lines.length > ERROR_LINE_MAX_LINES) return undefined;
  let good = 0;
  for (let n = 1; n <= lines.length; n++) {
    try {
      Bun.TOML.parse(lines.slice(0, n).join("\n"));
      good = n;
    } catch {
      // an unfinished statement (a multi-line array) may still parse with more lines
    }
  }
  return Math.min(good + 1, lines.length);
}

const ERROR_LINE_MAX_LINES = 2000;

const isScalar = (value: unknown): value is Scalar => typeof value === "string" || typeof value === "number";

export function parseConfigFile(text: string, path: string): ConfigFile {
  let data: unknown;
  try {
    data = Bun.TOML.parse(text);
  } catch (error) {
    return {
      settings: new Map(),
      problems: [`${path}:${errorLine(text) ?? ""}: not valid TOML: ${clip(messageOf(error).replace(/^TOML Parse error: /, ""))}`],
    };
  }
  if (typeof data !== "object" || data === null || Array.isArray(data))
    return { settings: new Map(), problems: [`${path}: expected key = value pairs`] };
  const literals = numberLiterals(text);
  const problems: string[] = [];
  const settings = new Map<OptionName, Setting>();
  for (const [key, raw] of Object.entries(data)) {
    if (!(FILE_KEYS as readonly string[]).includes(key)) {
      problems.push(`${path}: unknown setting ${show(key)}; known: ${FILE_KEYS.join(", ")}`);
      continue;
    }
    const name = key as OptionName;
    const from = `${path}: ${key}`;
    const numbers = [...(literals.get(key) ?? [])];
    const written = (value: Scalar) => (typeof value === "number" ? (numbers.shift() ?? String(value)) : value);
    const kind = OPTIONS[name].kind;
    if (!isScalar(raw) && !(Array.isArray(raw) && raw.every(isScalar)) && typeof raw !== "boolean") {
      problems.push(`${path}: "${key}" must be a string, number, boolean or a list of strings/numbers`);
    } else if ((kind === "switch") !== (typeof raw === "boolean")) {
      problems.push(
        `${path}: "${key}" must be ${kind === "switch" ? "true or false" : "a string, a number or a list"}, not ${clip(JSON.stringify(raw))}`,
      );
    } else if (typeof raw === "boolean") {
      settings.set(name, { from, kind: "switch", on: raw });
    } else if (Array.isArray(raw)) {
      const items = raw.map(written);
      if (kind !== "list") {
        settings.set(name, settingOf(name, from, items.join(",")));
        continue;
      }
      for (const item of items)
        if (item.includes(",")) problems.push(`${from}: ${show(item)} holds a comma: write each entry as its own string`);
      settings.set(name, { from, kind: "list", items: items.map((item) => item.trim()), text: JSON.stringify(items) });
    } else {
      settings.set(name, settingOf(name, from, written(raw)));
    }
  }
  return { settings, problems };
}

/** `--config FILE`: read and parse it; a missing file, a directory or an unreadable one is a problem like any other. */
export async function readConfigFile(
  readFile: (path: string) => Promise<string | undefined>,
  setting: { from: string; text: string },
): Promise<ConfigFile> {
  const path = setting.text;
  let text: string | undefined;
  try {
    text = await readFile(path);
  } catch (error) {
    return { settings: new Map(), problems: [`${setting.from}: ${show(path)} cannot be read: ${messageOf(error)}`] };
  }
  if (text === undefined) return { settings: new Map(), problems: [`${setting.from}: ${show(path)} does not exist`] };
  return parseConfigFile(text, path);
}
