#!/usr/bin/env bun
import type { Backend } from "./backends/backend.ts";
import { otherBackends, selectBackend } from "./backends/select.ts";
import { loadConfig, readSettings } from "./cli/load.ts";
import { configTextSources } from "./cli/config-text.ts";
import { ACCEPTED_CONFIG_FILE, acceptedConfigPath, catchEarly } from "./proxy/supervisor.ts";
import { helpText } from "./cli/help.ts";
import { parseCli } from "./cli/parse.ts";
import { applyCommand } from "./commands/apply.ts";
import { confirmCommand } from "./commands/confirm.ts";
import { watchStateFile, type Context } from "./commands/context.ts";
import { removeCommand } from "./commands/remove.ts";
import { checkCommand, renderCommand } from "./commands/render.ts";
import { statusCommand } from "./commands/status.ts";
import { explainCommand } from "./commands/explain.ts";
import { suggestCommand } from "./commands/suggest.ts";
import { watchCommand } from "./commands/watch.ts";
import { webhookCommand } from "./commands/webhook.ts";
import type { CommandConfig } from "./config/config.ts";
import { DomainwallError, EXIT, exitCode, runtimeError } from "./errors.ts";
import { createLogger, stderrSink, type Logger } from "./log.ts";
import { messageOf } from "./messages.ts";
import { VERSION } from "./version.ts";
import type { Runtime } from "./runtime.ts";
import type { World } from "./world.ts";

/** The commands that only read what is loaded (or remove it): their answer is all they print at the default level. */
const QUIET: readonly string[] = ["status", "explain", "suggest", "remove"];

/** Run one command with its typed configuration; a command may say its exit code (explain: 1 when denied). */
function dispatch(ctx: Context, config: CommandConfig): Promise<number | void> {
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
      return statusCommand(ctx, config);
    case "explain":
      return explainCommand(ctx, config);
    case "suggest":
      return suggestCommand(ctx);
    case "confirm":
      return confirmCommand(ctx);
    case "webhook":
      return webhookCommand(ctx, config);
  }
}

/** The whole program: parse, run one command, map the outcome to an exit code. */
export async function main(world: World, runtime: Runtime): Promise<number> {
  let log: Logger | undefined;
  let jsonLogs = false;
  try {
    const invocation = parseCli(world.argv);
    if (invocation.kind === "version") return (void (await world.stdout(`domainwall ${VERSION}\n`)), EXIT.ok);
    if (invocation.kind === "help") return (void (await world.stdout(`${helpText(invocation.command)}\n`)), EXIT.ok);
    if (invocation.kind === "usage") return (void world.writeStderr(`no command given\n\n${helpText()}\n`), EXIT.usage);
    const { command, flags } = invocation;
    // A DNS proxy worker starts from the last accepted --config text its supervisor keeps, never from a file a reload refused.
    const accepted = command === "watch" ? acceptedConfigPath(world.env, watchStateFile(world.env, ACCEPTED_CONFIG_FILE)) : undefined;
    const starting = configTextSources(world, runtime, flags, accepted === undefined ? undefined : await readAccepted(world, accepted));
    const { settings } = await readSettings(starting.sources, command, flags);
    const logFormat = settings.get("log-format");
    const logLevel = settings.get("log-level");
    jsonLogs = logFormat?.kind === "value" && logFormat.text === "json";
    log = createLogger(
      jsonLogs ? "json" : "text",
      stderrSink(world),
      logLevel?.kind === "value" && logLevel.text === "debug" ? "debug" : "info",
    );
    const logger = log;
    const { config, warnings } = await loadConfig(starting.sources, command, flags, {
      problems: invocation.problems,
      args: invocation.args,
    });
    // Once the configuration is valid, and before anything is logged, locked or opened: backgroundLoop
    // may start this program again (which reads its inputs again; the allow file is a regular file).
    if (config.command === "watch") (config.policy.dnsProxy === undefined ? runtime.backgroundLoop : runtime.normalJit)();
    for (const warning of warnings) logger.warn(warning);
    const probe = command !== "render";
    // Read commands print their answer and nothing else: which backend and executor answered is a detail.
    const detail = QUIET.includes(command) ? logger.debug : logger.info;
    let chosen: Promise<Backend> | undefined;
    const nft = () => world.nft().executor;
    const backend = () =>
      (chosen ??= selectBackend(
        "backend" in config ? config.backend : "auto",
        { run: world.run, nft, filterEmpty: world.legacyFilterEmpty },
        { probe, now: world.now },
      ).then((selected) => {
        if (probe) detail(`backend ${selected.backend.name} (${selected.reason})`);
        if (probe && selected.backend.name === "nft") detail(world.nft().reason);
        return selected.backend;
      }));
    let found: ReturnType<Context["others"]> | undefined;
    const others = () =>
      (found ??= backend().then((chosen) =>
        otherBackends(chosen.name, world.run, { nft, now: world.now, filterEmpty: world.legacyFilterEmpty }),
      ));
    return (
      (await dispatch(
        {
          world,
          runtime,
          log: logger,
          backend,
          others,
          reread: (text) => loadConfig(configTextSources(world, runtime, flags, text).sources, command, flags),
          configText: starting.text(),
        },
        config,
      )) ?? EXIT.ok
    );
  } catch (error) {
    log ??= createLogger("text", stderrSink(world));
    if (error instanceof DomainwallError && error.detail !== undefined) {
      // One line a person acts on; the tool's own (multi-line) words at debug, and as a field in JSON.
      log.error(jsonLogs ? { message: error.message, detail: error.detail } : error.message);
      if (!jsonLogs) log.debug(error.detail);
    } else if (error instanceof DomainwallError) log.error(error.message);
    else log.error(`unexpected failure: ${error instanceof Error ? (error.stack ?? error.message) : messageOf(error)}`);
    return exitCode(error);
  }
}

/** The accepted --config text a worker starts from; a worker without it cannot start (its supervisor wrote it). */
async function readAccepted(world: World, path: string): Promise<string> {
  const text = await world.readFile(path);
  if (text === undefined) throw runtimeError(`--dns-proxy: the accepted configuration ${path} is gone; nothing was loaded`);
  return text;
}

if (import.meta.main) {
  catchEarly(process.env);
  const { realWorld } = await import("./world.ts");
  const { realRuntime } = await import("./runtime.ts");
  process.exit(await main(realWorld(), realRuntime()));
}
