import type { Command } from "../config/options.ts";
import { readConfigFile } from "./config-file.ts";
import { layerSettings, type Settings } from "../config/settings.ts";
import { parseConfig, type ParsedConfig } from "../config/config.ts";
import { show } from "../config/values.ts";
import { ALLOW_FILE_CAP } from "../files.ts";
import { messageOf } from "../messages.ts";

/** Where settings come from besides the flags: the environment and files (a `World` fits). */
export interface SettingSources {
  readonly env: Record<string, string | undefined>;
  /** See World.readFile: throws for anything but a regular file, or one over `maxBytes`. */
  readonly readFile: (path: string, maxBytes?: number) => Promise<string | undefined>;
  /** The JIT's normal tier-up policy (see `Runtime.normalJit`), for a long allow file. */
  readonly normalJit?: () => void;
}

/**
 * An allow file this long (about 37,000 lines) is parsed, sorted and rendered with the JIT's normal
 * tier-up policy: the reluctant one a one-shot command starts with (scripts/build.ts) leaves those
 * loops over every entry in the slower tiers. Below it, the reluctant one costs less (docs/performance.md).
 */
export const LONG_ALLOW_FILE = 1024 * 1024;

/**
 * The allow file's text for `parseConfig` (which stays pure); undefined when there is none to read.
 * One that cannot be read (not a regular file, over ALLOW_FILE_CAP) is a problem, with empty text.
 */
async function readAllowFile(world: SettingSources, settings: Settings): Promise<{ text?: string; problem?: string }> {
  const setting = settings.get("allow-file");
  if (setting?.kind !== "value" || setting.text.trim() === "") return {};
  try {
    const text = await world.readFile(setting.text, ALLOW_FILE_CAP);
    if (text !== undefined && text.length >= LONG_ALLOW_FILE) world.normalJit?.();
    return text === undefined ? {} : { text };
  } catch (error) {
    return { text: "", problem: `${setting.from}: ${show(setting.text)} cannot be read: ${messageOf(error)}` };
  }
}

/** The layered settings of a command: environment, then the `--config` file (read now), then the flags. */
export async function readSettings(
  world: SettingSources,
  command: Command,
  flags: Settings,
): Promise<{ settings: Settings; problems: readonly string[] }> {
  const configSetting = flags.get("config");
  const file =
    configSetting?.kind === "value" ? await readConfigFile(world.readFile, configSetting) : { settings: new Map(), problems: [] };
  return { settings: layerSettings(command, { env: world.env, file: file.settings, flags }), problems: file.problems };
}

/**
 * Read and validate a command's whole configuration: the settings, the allow file, the words after
 * the command. Throws a usage error naming every problem. `watch` calls it again to reload.
 */
export async function loadConfig<C extends Command>(
  world: SettingSources,
  command: C,
  flags: Settings,
  extra: { readonly problems?: readonly string[]; readonly args?: readonly string[] } = {},
): Promise<ParsedConfig<C>> {
  const { settings, problems } = await readSettings(world, command, flags);
  const allowFile = await readAllowFile(world, settings);
  return parseConfig(settings, command, {
    problems: [...(extra.problems ?? []), ...problems, ...(allowFile.problem === undefined ? [] : [allowFile.problem])],
    ...(allowFile.text !== undefined && { allowFileText: allowFile.text }),
    args: extra.args ?? [],
  });
}
