import * as v from "valibot";
import { configError } from "../errors.ts";

/**
 * A configuration file (`--config FILE`) is TOML whose keys are the long flag names:
 *
 *     hosts = ["api.example.com", "deb.debian.org"]   # comments say why each name is here
 *     ports = [22]
 *     dns-servers = "any"
 *     strict = true
 *
 * TOML rather than JSON because a list of allowed names wants comments, and Bun parses TOML
 * natively (no dependency). Values are checked here for shape only; the same valibot schema as
 * for flags and variables validates their content.
 */
export type FileValue = string | boolean;

const scalar = v.union([v.string(), v.number()]);
const value = v.union([v.boolean(), scalar, v.array(scalar)]);

/** `booleanKeys` take only `true` or `false`; the other keys take anything but a boolean. */
export function parseConfigFile(text: string, path: string, allowedKeys: readonly string[], booleanKeys: readonly string[] = []): Map<string, FileValue> {
  let data: unknown;
  try {
    data = Bun.TOML.parse(text);
  } catch (error) {
    throw configError(`${path}: not valid TOML: ${error instanceof Error ? error.message : String(error)}`);
  }
  const result = v.safeParse(v.record(v.string(), value), data);
  if (!result.success) {
    const key = result.issues[0]?.path?.[0]?.key;
    throw configError(`${path}: ${key === undefined ? "expected key = value pairs" : `"${String(key)}" must be a string, number, boolean or a list of strings/numbers`}`);
  }
  const problems: string[] = [];
  const values = new Map<string, FileValue>();
  for (const [key, raw] of Object.entries(result.output)) {
    if (!allowedKeys.includes(key)) problems.push(`${path}: unknown setting "${key}"; known: ${allowedKeys.join(", ")}`);
    else if (booleanKeys.includes(key) !== (typeof raw === "boolean")) {
      problems.push(`${path}: "${key}" must be ${booleanKeys.includes(key) ? "true or false" : "a string, a number or a list"}, not ${JSON.stringify(raw)}`);
    } else values.set(key, typeof raw === "boolean" ? raw : Array.isArray(raw) ? raw.map(String).join(",") : String(raw));
  }
  if (problems.length > 0) throw configError(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  return values;
}
