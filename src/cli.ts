import { parseArgs } from "node:util";
import { WATCH_DEFAULTS, type RawConfig, type Setting } from "./config/config.ts";
import { configError } from "./errors.ts";

export const COMMANDS = ["apply", "render", "check", "remove", "status", "confirm", "watch"] as const;
export type Command = (typeof COMMANDS)[number];

const OPTIONS = {
  hosts: { type: "string" },
  ports: { type: "string" },
  allow: { type: "string" },
  "allow-file": { type: "string" },
  "dns-servers": { type: "string" },
  "resolve-timeout": { type: "string" },
  "on-resolve-error": { type: "string" },
  strict: { type: "boolean" },
  reject: { type: "boolean" },
  config: { type: "string" },
  "confirm-within": { type: "string" },
  backend: { type: "string" },
  "log-format": { type: "string" },
  "min-ttl": { type: "string" },
  "max-ttl": { type: "string" },
  grace: { type: "string" },
  "ready-file": { type: "string" },
  "metrics-addr": { type: "string" },
  "remove-on-exit": { type: "boolean" },
  "dry-run": { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

export type OptionName = keyof typeof OPTIONS;

/** Options that shape the ruleset: for the commands that build one, and the keys of a config file. */
const POLICY_OPTIONS = ["hosts", "ports", "allow", "allow-file", "dns-servers", "resolve-timeout", "on-resolve-error", "strict", "reject"] as const;

/** Which options each command takes (besides --help, --version and --log-format). */
const COMMAND_OPTIONS: Record<Command, readonly OptionName[]> = {
  apply: [...POLICY_OPTIONS, "config", "confirm-within"],
  render: [...POLICY_OPTIONS, "config", "dry-run"],
  check: [...POLICY_OPTIONS, "config"],
  remove: [],
  status: [],
  confirm: [],
  watch: [...POLICY_OPTIONS, "config", "min-ttl", "max-ttl", "grace", "ready-file", "metrics-addr", "remove-on-exit"],
};

/** Keys a `--config` file may hold: the long flag names of the policy options. */
export const FILE_KEYS: readonly OptionName[] = [...POLICY_OPTIONS, "backend", "log-format", "min-ttl", "max-ttl", "grace", "ready-file", "metrics-addr", "remove-on-exit"];
/** The file's keys that are switches: `true` or `false` only. */
export const FILE_BOOLEAN_KEYS: readonly OptionName[] = FILE_KEYS.filter((key) => OPTIONS[key].type === "boolean");

/** The original image's variables, and ours. */
const ENVIRONMENT: Partial<Record<OptionName, string>> = {
  hosts: "hosts_csv",
  ports: "listening_ports_csv",
  allow: "extra_whitelist_ips_csv",
  "log-format": "DOMAINWALL_LOG_FORMAT",
  backend: "DOMAINWALL_BACKEND",
};

/** Every option's value and where it came from; boolean options hold "true" or "false". */
export type Settings = ReadonlyMap<OptionName, Setting>;

export type Invocation =
  | { readonly kind: "help"; readonly command?: Command }
  | { readonly kind: "version" }
  | { readonly kind: "run"; readonly command: Command; readonly flags: Settings; readonly configFile?: string };

const EXIT_CODES = `Exit codes:
  0  success
  1  runtime failure: DNS lookups kept failing, no backend works (nft, iptables-legacy), loading
     failed, or an apply was not confirmed in time (the previous rules are back in every case)
  2  bad configuration or usage (nothing was changed)`;

const POLICY_HELP = `Options:
  --hosts LIST             names (or IP literals) to allow outbound, comma-separated   [env hosts_csv]
  --ports LIST             inbound TCP ports to allow; when given, all other inbound
                           traffic is dropped; when absent, inbound is left untouched    [env listening_ports_csv]
  --allow LIST             extra IPv4/IPv6 addresses and CIDRs to allow outbound       [env extra_whitelist_ips_csv]
  --allow-file PATH        more of them from a file: one address or CIDR per line, # comments
  --dns-servers any|LIST   where DNS (port 53) may go; default: the nameservers in /etc/resolv.conf
                           (behind a local stub such as systemd-resolved, also its upstream servers)
  --reject                 reject refused traffic (TCP reset, ICMP admin-prohibited) instead of dropping it
  --strict                 fail when a name does not exist or has no addresses (default: skip it, warn)
  --on-resolve-error fail|warn
                           a name whose lookups keep failing: fail the run (default) or skip it
  --resolve-timeout DURATION
                           deadline for all DNS resolution (default 10s)
  --config FILE            read settings from a TOML file whose keys are these long option names;
                           flags override the file, which overrides the environment
  --backend auto|nft|iptables-legacy
                           auto (default): nft where the kernel accepts it, else iptables-legacy [env DOMAINWALL_BACKEND]
  --log-format text|json   log format on stderr (default text)                         [env DOMAINWALL_LOG_FORMAT]
  -h, --help               show help
  The run directory (DOMAINWALL_RUN_DIR, default /run/domainwall) holds the confirm handshake and watch's state.`;

const HELP: Record<Command | "main", string> = {
  main: `domainwall — a firewall by domain name for Kubernetes pods and Linux machines

Usage: domainwall [command] [options]

Commands:
  apply    resolve the names and load the ruleset in one atomic transaction (default)
  render   print the exact ruleset apply would load; changes nothing (also: --dry-run)
  check    render, then have the kernel validate it (nft --check); changes nothing
  remove   delete everything domainwall loaded; succeeds when nothing is loaded
  status   show what is loaded now: allowed entries, drop counters and, while watch runs, each name's addresses
  confirm  keep the rules of an 'apply --confirm-within' that is waiting
  watch    apply, then keep running: look names up again as their TTLs run out and update the
           allowed addresses in place

Run 'domainwall <command> --help' for a command's options. 'domainwall --version' prints the version.

${EXIT_CODES}`,
  apply: `Usage: domainwall apply [options]

Resolve every name (A and AAAA), build the policy and load it atomically: table inet domainwall in
one nft transaction, or (iptables-legacy) the DOMAINWALL-OUTPUT/-INPUT chains in one restore per
family. Prints a one-line summary.

${POLICY_HELP}
  --confirm-within DURATION
                           safe apply: keep the new rules only if 'domainwall confirm' runs (or a key
                           is pressed on this terminal) within DURATION (e.g. 60s); otherwise put the
                           previous rules back, in one transaction, and exit 1

${EXIT_CODES}`,
  render: `Usage: domainwall render [options]     (or: domainwall --dry-run [options])

Resolve every name and print to stdout exactly the text apply would load (nft, or with --backend
iptables-legacy both restore inputs). Needs neither root nor nft; --backend auto renders nft.

${POLICY_HELP}

${EXIT_CODES}`,
  check: `Usage: domainwall check [options]

Like render, then have the kernel validate the ruleset ('nft --check -f -', or each family's
'*-restore --noflush --test'). Changes nothing.

${POLICY_HELP}

${EXIT_CODES}`,
  remove: `Usage: domainwall remove [--backend auto|nft|iptables-legacy] [--log-format text|json]

Delete what domainwall loaded: table inet domainwall in one transaction, or the DOMAINWALL chains
and their jumps. Succeeds when nothing is loaded. Other tables and rules are never touched.

${EXIT_CODES}`,
  status: `Usage: domainwall status [--backend auto|nft|iptables-legacy] [--log-format text|json]

Show whether domainwall's rules are loaded, how many entries they allow per family and their drop
counters; while 'domainwall watch' runs here, also each name's addresses and when it was last
resolved (from the watch's state in the run directory, DOMAINWALL_RUN_DIR, default /run/domainwall).

${EXIT_CODES}`,
  watch: `Usage: domainwall watch [options]

Apply (as 'apply' does), then keep running. Each name is looked up again when its DNS TTL runs out
(kept between --min-ttl and --max-ttl, plus up to a tenth (at most 1 s) of random delay so pods do
not query in step); when the answers change, only the allowed addresses are replaced, in one
transaction: established connections are never cut. An address stays allowed for --grace after
DNS last returned it. A name whose lookups fail keeps its last known addresses until it resolves
again (a warning each time); it is retried after --min-ttl, doubling up to a minute. A failed
update is logged and retried; the rules loaded last stay. SIGTERM or SIGINT: exit 0 and leave the
rules loaded (the pod stays protected), unless --remove-on-exit.

${POLICY_HELP}
  --min-ttl DURATION       look a name up again no sooner than this (default ${WATCH_DEFAULTS.minTtl})
  --max-ttl DURATION       and no later than this, whatever its TTL (default ${WATCH_DEFAULTS.maxTtl})
  --grace DURATION         keep an address this long after DNS last returned it (default ${WATCH_DEFAULTS.grace})
  --ready-file PATH        write this file once the first ruleset is loaded
  --metrics-addr HOST:PORT serve /healthz (200 once loaded and keeping up) and /metrics (Prometheus)
                           on this address, e.g. 0.0.0.0:9464 or [::]:9464
  --remove-on-exit         remove the rules on SIGTERM/SIGINT (default: leave them loaded)

${EXIT_CODES}`,
  confirm: `Usage: domainwall confirm [--log-format text|json]

Confirm the waiting 'domainwall apply --confirm-within': its new rules stay. Exits 1 when no
apply is waiting.

${EXIT_CODES}`,
};

export const helpText = (command?: Command): string => HELP[command ?? "main"];

const isCommand = (word: string): word is Command => (COMMANDS as readonly string[]).includes(word);

/** Parse argv (without the executable). Only flags here: the file and environment come in `settingsFor`. */
export function parseCli(argv: readonly string[]): Invocation {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw configError(`${error instanceof Error ? error.message : String(error)}\nRun 'domainwall --help' for usage.`);
  }
  const { values, positionals } = parsed;
  if (positionals.length > 1) throw configError(`unexpected argument ${JSON.stringify(positionals[1])}; run 'domainwall --help'`);
  const word = positionals[0];
  if (word !== undefined && !isCommand(word)) {
    throw configError(`unknown command ${JSON.stringify(word)}; commands: ${COMMANDS.join(", ")}`);
  }
  if (values["dry-run"] && word !== undefined && word !== "render") {
    throw configError(`--dry-run is the same as 'render' and cannot be combined with '${word}'`);
  }
  const command: Command = values["dry-run"] ? "render" : (word ?? "apply");
  if (values.version) return { kind: "version" };
  if (values.help) return { kind: "help", command: word === undefined && !values["dry-run"] ? undefined : command };
  const accepted = new Set<OptionName>([...COMMAND_OPTIONS[command], ...(command === "confirm" ? [] : ["backend" as const]), "log-format", "help", "version"]);
  const flags = new Map<OptionName, Setting>();
  for (const [name, value] of Object.entries(values) as [OptionName, string | boolean | undefined][]) {
    if (value === undefined) continue;
    if (!accepted.has(name)) throw configError(`--${name} does not apply to '${command}'`);
    flags.set(name, { from: `--${name}`, value: String(value) });
  }
  return { kind: "run", command, flags, configFile: flags.get("config")?.value };
}

/** Merge the layers: a flag overrides the config file, which overrides the environment. */
export function settingsFor(flags: Settings, file: ReadonlyMap<string, string | boolean>, fileName: string, env: Record<string, string | undefined>): Settings {
  const merged = new Map<OptionName, Setting>();
  for (const [name, variable] of Object.entries(ENVIRONMENT) as [OptionName, string][]) {
    const value = env[variable];
    if (value !== undefined) merged.set(name, { from: variable, value });
  }
  for (const [key, value] of file) merged.set(key as OptionName, { from: `${fileName}: ${key}`, value: String(value) });
  for (const [name, setting] of flags) merged.set(name, setting);
  return merged;
}

/** The policy part of the settings, ready for `parseConfig`. */
export function rawConfigFor(command: Command, settings: Settings): RawConfig {
  const bool = (name: OptionName) => settings.get(name)?.value === "true";
  return {
    hosts: settings.get("hosts"),
    ports: settings.get("ports"),
    allow: settings.get("allow"),
    allowFile: settings.get("allow-file"),
    dnsServers: settings.get("dns-servers"),
    resolveTimeout: settings.get("resolve-timeout"),
    onResolveError: settings.get("on-resolve-error"),
    strict: bool("strict"),
    reject: bool("reject"),
    requireHosts: COMMAND_OPTIONS[command].includes("hosts"),
    watch:
      command === "watch"
        ? {
            minTtl: settings.get("min-ttl"),
            maxTtl: settings.get("max-ttl"),
            grace: settings.get("grace"),
            readyFile: settings.get("ready-file"),
            metricsAddr: settings.get("metrics-addr"),
            removeOnExit: bool("remove-on-exit"),
          }
        : undefined,
  };
}
