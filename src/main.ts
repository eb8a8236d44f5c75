#!/usr/bin/env bun
import { otherBackends, selectBackend } from "./backends/select.ts";
import type { Backend } from "./backends/backend.ts";
import { readConfigFile } from "./cli/config-file.ts";
import { helpText } from "./cli/help.ts";
import { parseCli } from "./cli/parse.ts";
import { layerSettings, type Settings } from "./cli/settings.ts";
import { applyCommand } from "./commands/apply.ts";
import { confirmCommand } from "./commands/confirm.ts";
import type { Context } from "./commands/context.ts";
import { removeCommand } from "./commands/remove.ts";
import { checkCommand, renderCommand } from "./commands/render.ts";
import { statusCommand } from "./commands/status.ts";
import { watchCommand } from "./commands/watch.ts";
import { parseConfig, type CommandConfig } from "./config/config.ts";
import { DomainwallError, EXIT, exitCode } from "./errors.ts";
import { createLogger, type Logger } from "./log.ts";
import { messageOf } from "./messages.ts";
import { VERSION } from "./version.ts";
import type { World } from "./world.ts";

/** Run one command with its typed configuration. */
function dispatch(ctx: Context, config: CommandConfig): Promise<void> {
  switch (config.command) {
    case "apply":
      return applyCommand(ctx, config);
    case "render":
      return renderCommand(ctx, config);
    case "check":
      return checkCommand(ctx, config);
    case "watch":
      return watchCommand(ctx, config);
    case "remove":
      return removeCommand(ctx);
    case "status":
      return statusCommand(ctx);
    case "confirm":
      return confirmCommand(ctx);
  }
}

/** The allow file's text for `parseConfig` (which stays pure); undefined when there is none to read. */
async function readAllowFile(world: World, settings: Settings): Promise<string | undefined> {
  const setting = settings.get("allow-file");
  if (setting?.kind !== "value" || setting.text.trim() === "") return undefined;
  return world.readFile(setting.text);
}

/** The whole program: parse, run one command, map the outcome to an exit code. */
export async function main(world: World): Promise<number> {
  let log: Logger | undefined;
  try {
    const invocation = parseCli(world.argv);
    if (invocation.kind === "version") return void (await world.stdout(`domainwall ${VERSION}\n`)), EXIT.ok;
    if (invocation.kind === "help") return void (await world.stdout(`${helpText(invocation.command)}\n`)), EXIT.ok;
    if (invocation.kind === "usage") return void world.stderr.write(`no command given\n\n${helpText()}\n`), EXIT.usage;
    const { command, flags } = invocation;
    const configSetting = flags.get("config");
    const file = configSetting?.kind === "value" ? await readConfigFile(world.readFile, configSetting) : { settings: new Map(), problems: [] };
    const settings = layerSettings(command, { env: world.env, file: file.settings, flags });
    const logFormat = settings.get("log-format");
    log = createLogger(logFormat?.kind === "value" && logFormat.text === "json" ? "json" : "text", world.stderr);
    const logger = log;
    const problems = [...invocation.problems, ...file.problems];
    const { config, warnings } = parseConfig(settings, command, { problems, allowFileText: await readAllowFile(world, settings) });
    for (const warning of warnings) logger.warn(warning);
    const probe = command !== "render";
    let chosen: Promise<Backend> | undefined;
    const backend = () =>
      (chosen ??= selectBackend(config.command === "confirm" ? "auto" : config.backend, world.run, { probe, now: world.now }).then((selected) => {
        if (probe) logger.info(`backend ${selected.backend.name} (${selected.reason})`);
        return selected.backend;
      }));
    const others = async () => otherBackends((await backend()).name, world.run, { inProcessNft: world.inProcessNft, now: world.now });
    await dispatch({ world, log: logger, backend, others }, config);
    return EXIT.ok;
  } catch (error) {
    log ??= createLogger("text", world.stderr);
    if (error instanceof DomainwallError) log.error(error.message);
    else log.error(`unexpected failure: ${error instanceof Error ? (error.stack ?? error.message) : messageOf(error)}`);
    return exitCode(error);
  }
}

if (import.meta.main) {
  const { realWorld } = await import("./world.ts");
  process.exit(await main(realWorld()));
}
