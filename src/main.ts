#!/usr/bin/env bun
import type { Backend, Status } from "./backend.ts";
import { helpText, parseCli, type Command } from "./cli.ts";
import { parseConfig, type Config, type LogFormat, type RawConfig, type Setting } from "./config.ts";
import { bunLookup } from "./dns-lookup.ts";
import { configError, DomainwallError, EXIT, exitCode } from "./errors.ts";
import type { Cidr } from "./ip.ts";
import { createLogger, type Logger } from "./log.ts";
import { createNftBackend } from "./nft-backend.ts";
import { buildPolicy, type PolicySummary } from "./policy.ts";
import { onlyLocalStub, parseResolvConf, RESOLVED_UPSTREAM_CONF } from "./resolv-conf.ts";
import { resolveHosts, type Lookup } from "./resolve.ts";
import { runProcess, type Run } from "./run.ts";
import { VERSION } from "./version.ts";

/** Everything the program touches in the world, injected so tests can replace any of it. */
export interface World {
  readonly argv: readonly string[];
  readonly env: Record<string, string | undefined>;
  /** Resolves once the text is written (a render can be megabytes and the process exits right after). */
  readonly stdout: (text: string) => Promise<unknown>;
  readonly stderr: NodeJS.WriteStream;
  readonly run: Run;
  readonly lookup: Lookup;
  readonly readFile: (path: string) => Promise<string | undefined>;
  readonly now: () => number;
}

export const RESOLV_CONF = "/etc/resolv.conf";

function logFormatOf(setting: Setting | undefined): LogFormat {
  const value = setting?.value ?? "text";
  if (value === "text" || value === "json") return value;
  throw configError(`${setting?.from}: ${JSON.stringify(value)} must be "text" or "json"`);
}

async function resolversFor(config: Config, world: World, log: Logger): Promise<Cidr[]> {
  if (config.dnsServers.kind === "any") return [];
  if (config.dnsServers.kind === "list") return [...config.dnsServers.servers];
  const read = async (path: string) => {
    const { servers, ignored } = parseResolvConf((await world.readFile(path)) ?? "");
    for (const entry of ignored) log.warn(`${path}: ignoring nameserver ${JSON.stringify(entry)}: not an IP address`);
    return servers;
  };
  const servers = await read(RESOLV_CONF);
  if (servers.length === 0) log.warn(`${RESOLV_CONF} lists no nameserver: DNS is allowed only over loopback; use --dns-servers`);
  if (!onlyLocalStub(servers)) return servers;
  const upstream = (await read(RESOLVED_UPSTREAM_CONF)).filter((server) => !onlyLocalStub([server]));
  if (upstream.length > 0) {
    log.info(`${RESOLV_CONF} points at a local stub resolver; allowing DNS to its upstream servers ${upstream.map((s) => s.text).join(", ")} (from ${RESOLVED_UPSTREAM_CONF})`);
  }
  return [...servers, ...upstream];
}

const describeSummary = (s: PolicySummary, resolveMs: number, loadMs?: number): string =>
  [
    `${s.namesResolved} names resolved, ${s.namesSkipped} skipped${s.namesFailed > 0 ? `, ${s.namesFailed} failed` : ""}`,
    `${s.ipv4} IPv4 and ${s.ipv6} IPv6 allowed`,
    s.ports.length > 0 ? `inbound TCP ${s.ports.join(",")}` : "inbound untouched",
    `resolve ${resolveMs} ms${loadMs === undefined ? "" : `, load ${loadMs} ms`}`,
  ].join("; ");

function renderStatus(status: Status, backend: string): string {
  if (!status.loaded) return `nothing loaded: domainwall has no rules here (${backend})\n`;
  const lines = [
    `domainwall is loaded (${backend})`,
    ...status.sets.map((s) => `  set ${s.name}: ${s.elements} elements`),
    ...status.counters.map((c) => `  counter ${c.name}: ${c.packets} packets, ${c.bytes} bytes`),
  ];
  return `${lines.join("\n")}\n`;
}

async function execute(world: World, log: Logger, command: Command, backend: Backend, raw: RawConfig): Promise<void> {
  if (command === "remove") {
    await backend.remove();
    log.success("removed domainwall's rules (if any were loaded)");
    return;
  }
  if (command === "status") {
    await world.stdout(renderStatus(await backend.status(), backend.name));
    return;
  }
  const { config, warnings } = parseConfig(raw);
  for (const warning of warnings) log.warn(warning);
  const resolvers = await resolversFor(config, world, log);
  const started = world.now();
  const resolutions = await resolveHosts(config.hosts, { lookup: world.lookup, deadlineMs: config.resolveTimeoutMs });
  const resolveMs = Math.round(world.now() - started);
  const built = buildPolicy(config, resolutions, resolvers);
  for (const warning of built.warnings) log.warn(warning);
  if (config.ports.length === 0 && command === "apply") log.info("no listening ports given: inbound traffic is left untouched");
  if (command === "render") {
    await world.stdout(backend.render(built.policy));
    return;
  }
  const loadStarted = world.now();
  if (command === "check") {
    await backend.check(built.policy);
    log.success({ message: `the kernel accepts the ruleset: ${describeSummary(built.summary, resolveMs)}`, summary: built.summary });
    return;
  }
  await backend.apply(built.policy);
  const loadMs = Math.round(world.now() - loadStarted);
  log.success({
    message: `applied: ${describeSummary(built.summary, resolveMs, loadMs)}`,
    summary: { ...built.summary, resolveMs, loadMs, backend: backend.name },
  });
}

/** The whole program: parse, run one command, map the outcome to an exit code. */
export async function main(world: World): Promise<number> {
  let log = createLogger("text", world.stderr);
  try {
    const invocation = parseCli(world.argv, world.env);
    if (invocation.kind === "version") {
      await world.stdout(`domainwall ${VERSION}\n`);
      return EXIT.ok;
    }
    if (invocation.kind === "help") {
      await world.stdout(`${helpText(invocation.command)}\n`);
      return EXIT.ok;
    }
    log = createLogger(logFormatOf(invocation.logFormat), world.stderr);
    const backend = createNftBackend(world.run);
    await execute(world, log, invocation.command, backend, invocation.raw);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof DomainwallError) log.error(error.message);
    else log.error(`unexpected failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return exitCode(error);
  }
}

if (import.meta.main) {
  const code = await main({
    argv: process.argv.slice(2),
    env: process.env,
    stdout: (text) => Bun.write(Bun.stdout, text),
    stderr: process.stderr,
    run: runProcess,
    lookup: bunLookup,
    readFile: async (path) => {
      const file = Bun.file(path);
      return (await file.exists()) ? file.text() : undefined;
    },
    now: () => performance.now(),
  });
  process.exit(code);
}
