import { parseArgs } from "node:util";
import type { RawConfig, Setting } from "./config.ts";
import { configError } from "./errors.ts";

export const COMMANDS = ["apply", "render", "check", "remove", "status"] as const;
export type Command = (typeof COMMANDS)[number];

const OPTIONS = {
  hosts: { type: "string" },
  ports: { type: "string" },
  allow: { type: "string" },
  "dns-servers": { type: "string" },
  "resolve-timeout": { type: "string" },
  "on-resolve-error": { type: "string" },
  strict: { type: "boolean" },
  reject: { type: "boolean" },
  "log-format": { type: "string" },
  "dry-run": { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

/** Options that shape the ruleset; meaningless for `remove` and `status`. */
const POLICY_OPTIONS = ["hosts", "ports", "allow", "dns-servers", "resolve-timeout", "on-resolve-error", "strict", "reject"] as const;

export type Invocation =
  | { readonly kind: "help"; readonly command?: Command }
  | { readonly kind: "version" }
  | { readonly kind: "run"; readonly command: Command; readonly raw: RawConfig; readonly logFormat?: Setting };

const EXIT_CODES = `Exit codes:
  0  success
  1  runtime failure: DNS lookups kept failing, nft failed or is missing (nothing was changed)
  2  bad configuration or usage (nothing was changed)`;

const POLICY_HELP = `Options:
  --hosts LIST             names (or IP literals) to allow outbound, comma-separated   [env hosts_csv]
  --ports LIST             inbound TCP ports to allow; when given, all other inbound
                           traffic is dropped; when absent, inbound is left untouched    [env listening_ports_csv]
  --allow LIST             extra IPv4/IPv6 addresses and CIDRs to allow outbound       [env extra_whitelist_ips_csv]
  --dns-servers any|LIST   where DNS (port 53) may go; default: the nameservers in /etc/resolv.conf
  --reject                 reject refused traffic (TCP reset, ICMP admin-prohibited) instead of dropping it
  --strict                 fail when a name does not exist or has no addresses (default: skip it, warn)
  --on-resolve-error fail|warn
                           a name whose lookups keep failing: fail the run (default) or skip it
  --resolve-timeout SECONDS
                           deadline for all DNS resolution (default 10)
  --log-format text|json   log format on stderr (default text)                         [env DOMAINWALL_LOG_FORMAT]
  -h, --help               show help`;

const HELP: Record<Command | "main", string> = {
  main: `domainwall — a firewall by domain name for Kubernetes pods and Linux machines

Usage: domainwall [command] [options]

Commands:
  apply    resolve the names and load the ruleset in one atomic transaction (default)
  render   print the exact ruleset apply would load; changes nothing (also: --dry-run)
  check    render, then have the kernel validate it (nft --check); changes nothing
  remove   delete everything domainwall loaded; succeeds when nothing is loaded
  status   show what is loaded now (sets and drop counters)

Run 'domainwall <command> --help' for a command's options. 'domainwall --version' prints the version.

${EXIT_CODES}`,
  apply: `Usage: domainwall apply [options]

Resolve every name (A and AAAA), build the policy and replace table inet domainwall in one nft
transaction. Prints a one-line summary.

${POLICY_HELP}

${EXIT_CODES}`,
  render: `Usage: domainwall render [options]     (or: domainwall --dry-run [options])

Resolve every name and print to stdout exactly the nft text apply would load. Needs neither root
nor nft.

${POLICY_HELP}

${EXIT_CODES}`,
  check: `Usage: domainwall check [options]

Like render, then have the kernel validate the ruleset with 'nft --check -f -'. Changes nothing.

${POLICY_HELP}

${EXIT_CODES}`,
  remove: `Usage: domainwall remove [--log-format text|json]

Delete table inet domainwall in one transaction. Succeeds when nothing is loaded. Other tables are
never touched.

${EXIT_CODES}`,
  status: `Usage: domainwall status [--log-format text|json]

Show whether table inet domainwall is loaded, its sets and its drop counters.

${EXIT_CODES}`,
};

export const helpText = (command?: Command): string => HELP[command ?? "main"];

const isCommand = (word: string): word is Command => (COMMANDS as readonly string[]).includes(word);

/** Environment variables, named as the original image named them. */
const fromEnv = (env: Record<string, string | undefined>, name: string): Setting | undefined =>
  env[name] === undefined ? undefined : { from: name, value: env[name] };

/** Parse argv (without the executable) and the environment; a flag overrides its variable. */
export function parseCli(argv: readonly string[], env: Record<string, string | undefined>): Invocation {
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
  const usesPolicy = command === "apply" || command === "render" || command === "check";
  const misplaced = usesPolicy ? [] : POLICY_OPTIONS.filter((name) => values[name] !== undefined);
  if (misplaced.length > 0) throw configError(`--${misplaced.join(", --")} does not apply to '${command}'`);
  const flag = (name: "hosts" | "ports" | "allow" | "dns-servers" | "resolve-timeout" | "on-resolve-error" | "log-format"): Setting | undefined =>
    values[name] === undefined ? undefined : { from: `--${name}`, value: values[name] };
  return {
    kind: "run",
    command,
    logFormat: flag("log-format") ?? fromEnv(env, "DOMAINWALL_LOG_FORMAT"),
    raw: {
      hosts: flag("hosts") ?? fromEnv(env, "hosts_csv"),
      ports: flag("ports") ?? fromEnv(env, "listening_ports_csv"),
      allow: flag("allow") ?? fromEnv(env, "extra_whitelist_ips_csv"),
      dnsServers: flag("dns-servers"),
      resolveTimeout: flag("resolve-timeout"),
      onResolveError: flag("on-resolve-error"),
      strict: values.strict ?? false,
      reject: values.reject ?? false,
      requireHosts: usesPolicy,
    },
  };
}
