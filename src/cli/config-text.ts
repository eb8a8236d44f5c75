import type { Settings } from "../config/settings.ts";
import type { Runtime } from "../runtime.ts";
import type { SettingSources } from "./load.ts";

/**
 * Setting sources that read `--config`'s path as `text` (the text a reload already read, or the
 * last accepted text a new DNS proxy worker starts from), and remember the text it was read as:
 * what the configuration was parsed from, to be kept as the accepted one.
 */
export function configTextSources(
  world: Pick<SettingSources, "env" | "readFile">,
  runtime: Pick<Runtime, "normalJit">,
  flags: Settings,
  text?: string,
): { readonly sources: SettingSources; readonly text: () => string | undefined } {
  const setting = flags.get("config");
  const path = setting?.kind === "value" ? setting.text : undefined;
  let read = text;
  const sources: SettingSources = {
    env: world.env,
    normalJit: runtime.normalJit,
    async readFile(file, maxBytes) {
      if (file !== path) return world.readFile(file, maxBytes);
      if (text !== undefined) return text;
      read = await world.readFile(file, maxBytes);
      return read;
    },
  };
  return { sources, text: () => read };
}
