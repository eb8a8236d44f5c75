import * as v from "valibot";
import { OPTIONS, takes, type BackendChoice, type Command, type OptionName, type ValueOf } from "./options.ts";
import { rawOf, type Settings } from "./settings.ts";
import { usageError } from "../errors.ts";
import { IPTABLES_NO_PROXY } from "../messages.ts";
import { mergeByCidr, parseCidr, SCANNED, sortByCidr, type Cidr } from "../net/ip.ts";
import { addCidr, addScanned, cidrAt, cidrColumns, cidrOrder, type CidrColumns } from "../net/cidr-columns.ts";
import { parseDestination, type Destination } from "./destination.ts";
import { comparePortRange, formatEntry, formatPortRange, type PortRange } from "./port-spec.ts";
import { parseCidrItem, show, type DnsServers, type ListenAddress, type LogFormat } from "./values.ts";

export type { DnsServers, ListenAddress, LogFormat } from "./values.ts";

/** An allowed network and where it came from (shown as a `#` comment in the ruleset). */
export interface AllowEntry {
  readonly cidr: Cidr;
  readonly source: string;
  /** The ports it opens; absent: every port and protocol. */
  readonly ports?: PortRange;
}

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
  | (Common & { readonly command: "confirm" });

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

/**
 * An allow-file line: a line without a port (the common case of a 100,000-line file) as `parseCidr`
 * reads it, anything else (ports, brackets, mistakes) as `--allow` does.
 */
function parseAllowLine(value: string): ReturnType<typeof parseCidrItem> {
  const parsed = parseCidr(value);
  return parsed.ok ? { ok: true, value: { raw: value, cidr: parsed.cidr, hostBitsSet: parsed.hostBitsSet } } : parseCidrItem(value);
}

/** At most this many problems (or host-bits warnings) of an allow file are listed one by one. */
const FILE_PROBLEMS_SHOWN = 10;

/** Whitespace that `trim` takes off a line of plain ASCII; anything else is left to the general path. */
const isAsciiSpace = (c: number): boolean => c === 32 || (c >= 9 && c <= 13);

/**
 * `--allow-file`: one address or CIDR per line, as in `--allow`; `#` starts a comment, blank lines
 * are skipped. Each entry's source is `PATH:LINE`, so the ruleset's comments point back at it. The
 * entries come sorted by `compareCidr` (stable: in file order among equal networks). A plain
 * CIDR line (nearly all of a 100,000-line file) is scanned into typed arrays, and objects are made
 * only once sorted (see net/cidr-columns.ts); any other line is read by `parseAllowLine`.
 */
export function parseAllowFile(
  from: string,
  path: string,
  text: string,
): { entries: AllowEntry[]; problems: string[]; warnings: string[] } {
  const columns = cidrColumns(1024);
  const problems: string[] = [];
  const warnings: string[] = [];
  /** Entries read by `parseAllowLine`, by their index in `columns`. */
  const others = new Map<number, AllowEntry>();
  for (let start = 0, line = 1; start <= text.length; start++, line++) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    let a = start;
    let b = start;
    while (b < end && text.charCodeAt(b) !== HASH) b++;
    while (a < b && isAsciiSpace(text.charCodeAt(a))) a++;
    while (b > a && isAsciiSpace(text.charCodeAt(b - 1))) b--;
    const info = a === b ? -1 : addScanned(columns, text, a, b, line);
    if (info >= 0 && info & SCANNED.hostBits) {
      const value = text.slice(a, b);
      warnings.push(`${from}: ${path}:${line}: ${show(value)} has host bits set; using ${cidrAt(columns, columns.count - 1, text).text}`);
    } else if (info < 0) {
      const raw = text.slice(start, end);
      const hash = raw.indexOf("#");
      const value = (hash < 0 ? raw : raw.slice(0, hash)).trim();
      if (value !== "") {
        const parsed = parseAllowLine(value);
        if (!parsed.ok) problems.push(`${from}: ${path}:${line}: ${show(value)} ${parsed.reason}`);
        else {
          const { cidr, hostBitsSet, ports } = parsed.value;
          if (hostBitsSet) warnings.push(`${from}: ${path}:${line}: ${show(value)} has host bits set; using ${cidr.text}`);
          const source = [path, line].join(":");
          others.set(addCidr(columns, cidr, line), ports === undefined ? { cidr, source } : { cidr, source, ports });
        }
      }
    }
    start = end;
  }
  const capped = (messages: string[], what: string) =>
    messages.length <= FILE_PROBLEMS_SHOWN
      ? messages
      : [...messages.slice(0, FILE_PROBLEMS_SHOWN), `${from}: ${path}: and ${messages.length - FILE_PROBLEMS_SHOWN} more ${what}`];
  return {
    entries: sortedEntries(columns, others, path, text),
    problems: capped(problems, "invalid lines"),
    warnings: capped(warnings, "lines with host bits set"),
  };
}

const HASH = 35;

/** The allow file's entries in `compareCidr` order, each object made in that order. */
function sortedEntries(columns: CidrColumns, others: ReadonlyMap<number, AllowEntry>, path: string, text: string): AllowEntry[] {
  const order = cidrOrder(columns);
  const entries: AllowEntry[] = [];
  for (let k = 0; k < order.length; k++) {
    const i = order[k] ?? 0;
    // join: a flat string, not a rope to flatten later
    entries.push((others.size > 0 && others.get(i)) || { cidr: cidrAt(columns, i, text), source: [path, columns.tag[i]].join(":") });
  }
  return entries;
}

/** The allow file's entries, or the problems that stop it (missing file, bad lines). */
function allowFileEntries(settings: Settings, text: string | undefined): ReturnType<typeof parseAllowFile> {
  const setting = settings.get("allow-file");
  if (setting === undefined || setting.kind !== "value") return { entries: [], problems: [], warnings: [] };
  if (setting.text.trim() === "") return { entries: [], problems: [`${setting.from}: expected a file path`], warnings: [] };
  if (text === undefined) return { entries: [], problems: [`${setting.from}: ${show(setting.text)} does not exist`], warnings: [] };
  return parseAllowFile(setting.from, setting.text, text);
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
  const json = takes(command, "json") ? value("json") : undefined;
  const follow = command === "status" ? value("follow") : undefined;
  const destination = command === "explain" ? destinationArg(inputs.args ?? [], problems) : undefined;
  if (command !== "explain" && (inputs.args ?? []).length > 0)
    problems.push(`unexpected argument ${JSON.stringify(inputs.args?.[0])}; run 'domainwall --help'`);
  if (policy?.dnsProxy !== undefined && backend === "iptables-legacy")
    problems.push(`${fromOf(settings, "backend")}: ${IPTABLES_NO_PROXY}`);
  if (problems.length > 0) throw usageError(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  const config = {
    command,
    logFormat,
    ...(command !== "confirm" && { backend }),
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
