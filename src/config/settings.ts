import { OPTIONS, OPTION_NAMES, takes, type Command, type OptionName } from "./options.ts";

/**
 * One option's raw value and where it came from (`--hosts`, `hosts_csv`, `FILE: hosts`), so every
 * message can name it: a list's items, a value's text, a switch's state.
 */
export type Setting =
  | { readonly from: string; readonly kind: "list"; readonly items: readonly string[]; readonly text: string }
  | { readonly from: string; readonly kind: "value"; readonly text: string }
  | { readonly from: string; readonly kind: "switch"; readonly on: boolean };

export type Settings = ReadonlyMap<OptionName, Setting>;

/** Split a comma-separated list; whitespace around items and empty items are tolerated. */
const splitList = (value: string): string[] =>
  value
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");

/** A setting from text (a flag or a variable): a list option's text is comma-separated. */
export function settingOf(name: OptionName, from: string, text: string): Setting {
  const kind = OPTIONS[name].kind;
  if (kind === "list") return { from, kind, items: splitList(text), text };
  if (kind === "switch") return { from, kind, on: text === "true" };
  return { from, kind, text };
}

/** The raw value a setting hands to its option's parser. */
export function rawOf(setting: Setting | undefined): unknown {
  if (setting === undefined) return undefined;
  return setting.kind === "list" ? setting.items : setting.kind === "value" ? setting.text : setting.on;
}

/**
 * Merge the layers for `command`: a flag overrides the config file, which overrides the environment.
 * Only the options `command` takes are kept (a stray variable for another command is ignored).
 */
export function layerSettings(
  command: Command,
  layers: { readonly env: Record<string, string | undefined>; readonly file: Settings; readonly flags: Settings },
): Settings {
  const merged = new Map<OptionName, Setting>();
  for (const name of OPTION_NAMES) {
    if (!takes(command, name)) continue;
    const variable = OPTIONS[name].env;
    const fromEnv = variable === undefined ? undefined : layers.env[variable];
    const setting =
      layers.flags.get(name) ?? layers.file.get(name) ?? (fromEnv === undefined ? undefined : settingOf(name, variable!, fromEnv));
    if (setting !== undefined) merged.set(name, setting);
  }
  // Added to the hosts and ports from whichever layer set them, never replaced by a file's: the
  // cluster-wide entries and the probe port a webhook-injected sidecar gets as flags.
  if (command !== "webhook") {
    addList(merged, "hosts", merged.get("extra-hosts"), true);
    addList(merged, "ports", merged.get("extra-ports"), false);
  }
  return merged;
}

/** Append `extra`'s items to the list `name`, naming both sources; without `create`, only to a list that holds items. */
function addList(merged: Map<OptionName, Setting>, name: OptionName, extra: Setting | undefined, create: boolean): void {
  const base = merged.get(name);
  if (extra?.kind !== "list" || (base !== undefined && base.kind !== "list")) return;
  if (!create && (base === undefined || base.items.length === 0)) return;
  const items = [...(base?.items ?? []), ...extra.items];
  merged.set(name, {
    from: base === undefined ? extra.from : `${base.from} (with ${extra.from})`,
    kind: "list",
    items,
    text: items.join(","),
  });
}
