import * as v from "valibot";
import { OPTIONS, takes, type BackendChoice, type Command, type OptionName, type ValueOf } from "./options.ts";
import { rawOf, type Settings } from "./settings.ts";
import { usageError } from "../errors.ts";
import { IPTABLES_NO_PROXY } from "../messages.ts";
import { mergeByCidr, sortByCidr, type Cidr } from "../net/ip.ts";
import { allowFileEntries, type AllowEntry } from "./allow-file.ts";
import { parseDestination, type Destination } from "./destination.ts";
import { mappedProblems } from "./mapped.ts";
import { formatEntry } from "./port-spec.ts";
import { comparePortRange, formatPortRange, type PortRange } from "../net/port-range.ts";
import { show, type DnsServers, type ListenAddress, type LogFormat } from "./values.ts";
import { webhookConfig, type WebhookConfig } from "./webhook.ts";

export type { DnsServers, ListenAddress, LogFormat } from "./values.ts";
export { parseAllowFile, type AllowEntry } from "./allow-file.ts";

/** Validated policy settings of the commands that build a ruleset: everything downstream trusts them. */
export interface Config {
  /** DNS names to resolve: ASCII, lower case, no trailing dot, unique, in input order. */
  readonly hosts: readonly string[];
  /**
   * The ports of the names and wildcards listed only with ports (`api.example.com:443`,
   * `*.pypi.org:443`), sorted and unique; an entry absent here opens every port and protocol, as in
   * the original image.
   */
  readonly hostPorts: ReadonlyMap<string, readonly PortRange[]>;
  /** `*.NAME` and `**.NAME` entries (canonical, unique): only with `dnsProxy`, never resolved ahead. */
  readonly wildcards: readonly string[];
  /** `watch --dns-proxy`: the proxy's port and group id (see Policy.proxy). */
  readonly dnsProxy?: { readonly port: number; readonly gid: number };
  /** `--allow` and `--allow-file` networks, and IP literals from the host list; sorted by `compareCidr`. */
  readonly allow: readonly AllowEntry[];
  /** Inbound TCP ports, sorted; empty leaves inbound traffic untouched. */
  readonly ports: readonly number[];
  readonly dnsServers: DnsServers;
  readonly strict: boolean;
  readonly onResolveError: "fail" | "warn";
  readonly reject: boolean;
  /**
   * `--refuse-private-answers`: DNS answers in private, CGNAT, ULA space or the resolvers' own
   * networks are refused (PRIVATE_FROM_DNS in policy/forbidden.ts), except for names under `privateDomains`.
   */
  readonly refusePrivateAnswers: boolean;
  /** Domains (ASCII, lower case) whose names may answer with private addresses anyway. */
  readonly privateDomains: readonly string[];
  /** `--forward`: filter forwarded traffic with the same egress policy. */
  readonly forward: boolean;
  /** Load the same policy but accept what it would refuse, recording it (`verdict: "audit"`). */
  readonly audit: boolean;
  readonly resolveTimeoutMs: number;
}

/** `watch`: when to look names up again, how long unseen addresses stay, what to expose. */
export interface WatchConfig {
  /** A name is looked up again when its TTL runs out, but never sooner than this... */
  readonly minTtlMs: number;
  /** ...and never later than this. */
  readonly maxTtlMs: number;
  /** An address stays allowed this long after DNS last returned it. */
  readonly graceMs: number;
  /** Written once the first ruleset is loaded (for a startupProbe). */
  readonly readyFile?: string;
  /** Where to serve /healthz and /metrics. */
  readonly metricsAddr?: ListenAddress;
  /** On SIGTERM/SIGINT remove the rules (default: leave them, so the pod stays protected). */
  readonly removeOnExit: boolean;
  /** `--config FILE`: reloaded on SIGHUP and when it changes. */
  readonly configFile?: string;
}

interface Common {
  readonly logFormat: LogFormat;
}
interface WithBackend extends Common {
  readonly backend: BackendChoice;
}

/** Each command's configuration: `policy` for the commands that build one, `watch` for watch alone. */
export type CommandConfig =
  | (WithBackend & { readonly command: "apply"; readonly policy: Config; readonly confirmWithinMs?: number })
  | (WithBackend & { readonly command: "render"; readonly policy: Config })
  | (WithBackend & { readonly command: "check"; readonly policy: Config })
  | (WithBackend & { readonly command: "watch"; readonly policy: Config; readonly watch: WatchConfig })
  | (WithBackend & { readonly command: "remove" })
  | (WithBackend & { readonly command: "status"; readonly json: boolean; readonly follow: boolean })
  | (WithBackend & { readonly command: "explain"; readonly json: boolean; readonly destination: Destination })
  | (WithBackend & { readonly command: "suggest" })
  | (Common & { readonly command: "confirm" })
  | (Common & { readonly command: "webhook"; readonly webhook: WebhookConfig });

export type ConfigOf<C extends Command> = Extract<CommandConfig, { command: C }>;

export interface ParsedConfig<C extends Command = Command> {
  readonly config: ConfigOf<C>;
  /** Accepted but worth telling: normalised CIDRs, networks that allow everything. */
  readonly warnings: readonly string[];
}

/** What the caller read for the settings (config stays pure). */
export interface ConfigInputs {
  /** Problems already found on the command line or in the config file, reported with the rest. */
  readonly problems?: readonly string[];
  /** The `--allow-file` text; undefined when it does not exist. */
  readonly allowFileText?: string;
  /** The command's words after its name (`explain DESTINATION`). */
  readonly args?: readonly string[];
}

const cidrOfEntry = (entry: AllowEntry): Cidr => entry.cidr;

/** Where an option's value came from, for messages: the setting's source, or the flag. */
const fromOf = (settings: Settings, name: OptionName): string => settings.get(name)?.from ?? `--${name}`;

/** A network that holds every address of its family: it allows everything, which is rarely meant. */
const everything = (cidr: Cidr): boolean => cidr.prefix === 0;

/**
 * Validate everything `command` takes before anything touches DNS or the kernel. All problems are
 * reported at once (with `inputs.problems`, found earlier), each naming the variable, flag or file
 * key and the bad value; the error maps to exit code 2.
 */
export function parseConfig<C extends Command>(settings: Settings, command: C, inputs: ConfigInputs = {}): ParsedConfig<C> {
  const problems = [...(inputs.problems ?? [])];
  const warnings: string[] = [];
  const value = <N extends OptionName>(name: N): ValueOf<N> => {
    const result = v.safeParse(OPTIONS[name].parse(fromOf(settings, name)), takes(command, name) ? rawOf(settings.get(name)) : undefined);
    if (result.success) return result.output as ValueOf<N>;
    problems.push(...result.issues.map((issue) => issue.message));
    return undefined as ValueOf<N>;
  };
  const logFormat = value("log-format");
  value("log-level"); // validated here (exit 2 naming it); main reads it before the logger exists
  const backend = value("backend");
  const policy = takes(command, "hosts") ? policyConfig(settings, value, inputs, problems, warnings) : undefined;
  const watch = command === "watch" ? watchConfig(settings, value, problems) : undefined;
  const confirmWithinMs = command === "apply" ? value("confirm-within") : undefined;
  const webhook = command === "webhook" ? webhookConfig(value, (name) => fromOf(settings, name), problems) : undefined;
  const json = takes(command, "json") ? value("json") : undefined;
  const follow = command === "status" ? value("follow") : undefined;
  const destination = command === "explain" ? destinationArg(inputs.args ?? [], problems) : undefined;
  if (command !== "explain" && (inputs.args ?? []).length > 0)
    problems.push(`unexpected argument ${show(inputs.args?.[0] ?? "")}; run 'domainwall --help'`);
  if (policy?.dnsProxy !== undefined && backend === "iptables-legacy")
    problems.push(`${fromOf(settings, "backend")}: ${IPTABLES_NO_PROXY}`);
  if (problems.length > 0) throw usageError(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  const config = {
    command,
    logFormat,
    ...(command !== "confirm" && command !== "webhook" && { backend }),
    ...(webhook && { webhook }),
    ...(policy && { policy }),
    ...(watch && { watch }),
    ...(confirmWithinMs !== undefined && { confirmWithinMs }),
    ...(json !== undefined && { json }),
    ...(follow !== undefined && { follow }),
    ...(destination !== undefined && { destination }),
  };
  return { config: config as unknown as ConfigOf<C>, warnings };
}

/**
 * The names in input order, unique, and the ports of those listed only with ports. A name listed
 * both with and without ports opens every port (the entry without ports says so), with a warning.
 */
function portsByName(
  named: readonly { name: string; raw: string; ports?: PortRange }[],
  from: string,
  warnings: string[],
): { names: string[]; hostPorts: Map<string, PortRange[]> } {
  const ports = new Map<string, Map<string, PortRange> | "every">();
  /** Each name's entries written with ports, in order (one pass: 300 names, 300 filters each, cost ms). */
  const specs = new Map<string, string[]>();
  for (const { name, raw, ports: range } of named) {
    const known = ports.get(name);
    if (range === undefined) ports.set(name, "every");
    else if (known === undefined) ports.set(name, new Map([[formatPortRange(range), range]]));
    else if (known !== "every") known.set(formatPortRange(range), range);
    if (range !== undefined) specs.set(name, [...(specs.get(name) ?? []), raw]);
  }
  const hostPorts = new Map<string, PortRange[]>();
  for (const [name, known] of ports) {
    const written = specs.get(name);
    if (known === "every" && written !== undefined) {
      warnings.push(
        `${from}: ${name} is listed both with ports (${written.map(show).join(", ")}) and without: every port of it is allowed`,
      );
    }
    if (known !== "every") hostPorts.set(name, [...known.values()].sort(comparePortRange));
  }
  return { names: [...ports.keys()], hostPorts };
}

/**
 * An address or network listed (anywhere: --allow, the allow file, the host list) both without
 * ports and with ports: every port wins, and the entries with ports are dropped with a warning.
 * `lists` are where the entries came from; each is returned without the dropped entries.
 */
function everyPortWins(lists: readonly (readonly AllowEntry[])[], warnings: string[]): (readonly AllowEntry[])[] {
  const entries = lists.flat();
  if (!entries.some((e) => e.ports !== undefined)) return [...lists];
  const everyPort = new Set(entries.flatMap((e) => (e.ports === undefined ? [e.cidr.text] : [])));
  const dropped = entries.filter((e) => e.ports !== undefined && everyPort.has(e.cidr.text));
  for (const e of dropped)
    warnings.push(
      `${e.source}: ${show(formatEntry({ target: e.cidr.text, ports: e.ports }))} is also allowed on every port: every port of it is allowed`,
    );
  const gone = new Set(dropped);
  return lists.map((list) => list.filter((e) => !gone.has(e)));
}

/** `explain`'s one argument: the destination to explain. */
function destinationArg(args: readonly string[], problems: string[]): Destination | undefined {
  if (args.length !== 1) {
    problems.push(
      args.length === 0
        ? "explain needs a DESTINATION: ADDRESS, ADDRESS:PORT, NAME or NAME:PORT"
        : `explain takes one DESTINATION, not ${args.length}`,
    );
    return undefined;
  }
  const parsed = parseDestination(args[0] ?? "");
  if (!parsed.ok) problems.push(`DESTINATION ${show(args[0] ?? "")}: ${parsed.reason}`);
  return parsed.ok ? parsed.destination : undefined;
}

type ValueReader = <N extends OptionName>(name: N) => ValueOf<N>;

function policyConfig(settings: Settings, value: ValueReader, inputs: ConfigInputs, problems: string[], warnings: string[]): Config {
  const hosts = value("hosts");
  const allow = value("allow");
  const ports = value("ports");
  const dnsServers = value("dns-servers");
  const allowFile = allowFileEntries(settings, inputs.allowFileText);
  problems.push(...allowFile.problems);
  const hostsSetting = settings.get("hosts");
  if (hosts !== undefined && hosts.length === 0) {
    problems.push(
      hostsSetting === undefined
        ? `${OPTIONS.hosts.env} (or --hosts) is required: the names to allow outbound`
        : `${hostsSetting.from}: ${show(hostsSetting.kind === "list" ? hostsSetting.text : "")} lists no host names`,
    );
  }
  const allowFrom = fromOf(settings, "allow");
  for (const entry of allow ?? []) {
    if (entry.hostBitsSet) warnings.push(`${allowFrom}: ${show(entry.raw)} has host bits set; using ${entry.cidr.text}`);
  }
  warnings.push(...allowFile.warnings);
  const hostsFrom = fromOf(settings, "hosts");
  const named = (hosts ?? []).flatMap((h) =>
    h.host.kind === "name"
      ? [{ name: h.host.name, raw: h.raw, ports: h.ports }]
      : h.host.kind === "wildcard"
        ? [{ name: h.host.entry, raw: h.raw, ports: h.ports }]
        : [],
  );
  const { names: entries, hostPorts } = portsByName(named, hostsFrom, warnings);
  const names = entries.filter((name) => !name.startsWith("*"));
  const wildcards = entries.filter((name) => name.startsWith("*"));
  const proxied = value("dns-proxy");
  if (wildcards.length > 0 && !proxied) {
    problems.push(
      `${hostsFrom}: ${wildcards.map(show).join(", ")}: wildcards need --dns-proxy (only 'watch --dns-proxy' can allow names that cannot be resolved ahead)`,
    );
  }
  const literals: AllowEntry[] = (hosts ?? []).flatMap((h) =>
    h.host.kind === "address" ? [{ cidr: h.host.cidr, source: hostsFrom, ...(h.ports && { ports: h.ports }) }] : [],
  );
  const flagged = (allow ?? []).map(
    (entry): AllowEntry => ({ cidr: entry.cidr, source: allowFrom, ...(entry.ports && { ports: entry.ports }) }),
  );
  problems.push(...mappedProblems([...flagged, ...allowFile.entries, ...literals]));
  const [fromFlags = [], fromFile = [], fromLiterals = []] = everyPortWins([flagged, allowFile.entries, literals], warnings);
  const refusePrivateAnswers = value("refuse-private-answers");
  const privateDomains = value("private-domains");
  if (!refusePrivateAnswers && (privateDomains ?? []).length > 0) {
    warnings.push(
      `${fromOf(settings, "private-domains")} has no effect without --refuse-private-answers: private answers are allowed for every name`,
    );
  }
  for (const entry of [fromFlags, fromFile, fromLiterals].flatMap((list) => list.filter((e) => everything(e.cidr)))) {
    warnings.push(
      `${entry.source}: ${entry.cidr.text} allows every IPv${entry.cidr.family} address: outbound IPv${entry.cidr.family} is not restricted`,
    );
  }
  if (dnsServers?.kind === "list") {
    for (const server of dnsServers.servers.filter(everything)) {
      warnings.push(
        `${fromOf(settings, "dns-servers")}: ${server.text} allows DNS (port 53) to every IPv${server.family} address, as "any" does`,
      );
    }
  }
  const forward = value("forward");
  if (proxied && forward) {
    problems.push(
      `${fromOf(settings, "forward")} cannot go with --dns-proxy yet: forwarded DNS would not pass through the proxy (its redirect is on the output hook only), so forwarded names could not be admitted`,
    );
  }
  if (proxied && dnsServers?.kind === "any") {
    problems.push(
      `${fromOf(settings, "dns-servers")}: "any" cannot go with --dns-proxy (all DNS goes through the proxy, which forwards to the resolvers): name them, or leave it to resolv.conf`,
    );
  }
  return {
    hosts: names,
    hostPorts,
    wildcards,
    ...(proxied && { dnsProxy: { port: value("dns-proxy-port"), gid: value("dns-proxy-gid") } }),
    // the file's entries come sorted: the few others are placed among them (stable, in this order on ties)
    allow: mergeByCidr([sortByCidr(fromFlags, cidrOfEntry), fromFile, sortByCidr(fromLiterals, cidrOfEntry)], cidrOfEntry),
    ports: [...new Set(ports ?? [])].sort((a, b) => a - b),
    dnsServers: dnsServers ?? { kind: "resolv.conf" },
    strict: value("strict"),
    onResolveError: value("on-resolve-error"),
    reject: value("reject"),
    forward,
    refusePrivateAnswers,
    privateDomains: privateDomains ?? [],
    audit: value("audit"),
    resolveTimeoutMs: value("resolve-timeout"),
  };
}

function watchConfig(settings: Settings, value: ValueReader, problems: string[]): WatchConfig | undefined {
  const minTtlMs = value("min-ttl");
  const maxTtlMs = value("max-ttl");
  const readyFile = value("ready-file");
  const metricsAddr = value("metrics-addr");
  const configFile = value("config");
  if (minTtlMs !== undefined && maxTtlMs !== undefined && minTtlMs > maxTtlMs) {
    problems.push(
      `${fromOf(settings, "min-ttl")} (${minTtlMs / 1000}s) must not be longer than ${fromOf(settings, "max-ttl")} (${maxTtlMs / 1000}s)`,
    );
  }
  return {
    minTtlMs,
    maxTtlMs,
    graceMs: value("grace"),
    ...(readyFile !== undefined && { readyFile }),
    ...(metricsAddr !== undefined && { metricsAddr }),
    removeOnExit: value("remove-on-exit"),
    ...(configFile !== undefined && { configFile }),
  };
}
