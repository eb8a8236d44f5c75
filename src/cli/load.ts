import type { Command } from "../config/options.ts";
import { readConfigFile } from "./config-file.ts";
import { layerSettings, type Settings } from "../config/settings.ts";
import { parseConfig, type ParsedConfig } from "../config/config.ts";

/** Where settings come from besides the flags: the environment and files (a `World` fits). */
export interface SettingSources {
  readonly env: Record<string, string | undefined>;
  readonly readFile: (path: string) => Promise<string | undefined>;
}

/** The allow file's text for `parseConfig` (which stays pure); undefined when there is none to read. */
async function readAllowFile(world: SettingSources, settings: Settings): Promise<string | undefined> {
  const setting = settings.get("allow-file");
  if (setting?.kind !== "value" || setting.text.trim() === "") return undefined;
  return world.readFile(setting.text);
}

/** The layered settings of a command: environment, then the `--config` file (read now), then the flags. */
export async function readSettings(world: SettingSources, command: Command, flags: Settings): Promise<{ settings: Settings; problems: readonly string[] }> {
  const configSetting = flags.get("config");
  const file = configSetting?.kind === "value" ? await readConfigFile(world.readFile, configSetting) : { settings: new Map(), problems: [] };
  return { settings: layerSettings(command, { env: world.env, file: file.settings, flags }), problems: file.problems };
}

/**
 * Read and validate a command's whole configuration: the settings, the allow file, the words after
 * the command. Throws a usage error naming every problem. `watch` calls it again to reload.
 */
export async function loadConfig<C extends Command>(world: SettingSources, command: C, flags: Settings, extra: { readonly problems?: readonly string[]; readonly args?: readonly string[] } = {}): Promise<ParsedConfig<C>> {
  const { settings, problems } = await readSettings(world, command, flags);
  return parseConfig(settings, command, { problems: [...(extra.problems ?? []), ...problems], allowFileText: await readAllowFile(world, settings), args: extra.args ?? [] });
}
