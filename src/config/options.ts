import type * as v from "valibot";
import * as value from "./values.ts";
import { DEFAULT_PROXY_GID } from "./proxy-gid.ts";

export const COMMANDS = ["apply", "render", "check", "remove", "status", "explain", "suggest", "confirm", "watch", "webhook"] as const;
export type Command = (typeof COMMANDS)[number];

/** The commands that resolve names and build a ruleset. */
const POLICY: readonly Command[] = ["apply", "render", "check", "watch"];
const ALL: readonly Command[] = COMMANDS;

/** The commands that read what is loaded (and may print JSON). */
const READ: readonly Command[] = ["status", "explain"];
/** Defaults of `watch`: see WatchConfig. */
const WATCH_DEFAULTS = { minTtl: "5s", maxTtl: "1h", grace: "5m" } as const;
/** Defaults of `webhook`: see WebhookConfig. */
export const WEBHOOK_DEFAULTS = {
  listen: ":8443",
  metricsAddr: ":8080",
  sidecarMetricsPort: 9464,
  requests: ["cpu=10m", "memory=64Mi"],
  limits: ["memory=128Mi"],
} as const;
const DEFAULT_RESOLVE_TIMEOUT = "10s";
/**
 * The DNS proxy's port on 127.0.0.1 and ::1. Fixed rather than chosen by the kernel: the ruleset
 * names it, so a restarted proxy answers the redirect the loaded ruleset already makes, before
 * (and without) a new table.
 */
export const DEFAULT_DNS_PROXY_PORT = 15353;
const BACKENDS = ["auto", "nft", "iptables-legacy"] as const;
export type BackendChoice = (typeof BACKENDS)[number];

/**
 * One option, declared once; parsing, layering, the config file, the environment and `--help` all
 * read it from here.
 * - `list`: comma-separated; given several times, the values add up; in a config file, a TOML array.
 * - `value`: one value; given twice is an error naming both.
 * - `switch`: on when present; `true`/`false` in a config file.
 */
export interface OptionSpec<T = unknown> {
  readonly kind: "list" | "value" | "switch";
  readonly commands: readonly Command[];
  /** The environment variable that sets it (a flag or the config file overrides it). */
  readonly env?: string;
  /** Whether a `--config` file may set it (its key is the option's name). */
  readonly file?: boolean;
  readonly short?: string;
  /** The placeholder in `--help` (`LIST`, `DURATION`). */
  readonly arg?: string;
  /** The help text; more lines are indented under the first. */
  readonly help: string;
  /** Validates the raw setting (undefined when absent) into its typed value; `from` names the source. */
  readonly parse: (from: string) => v.GenericSchema<unknown, T>;
}

const option = <T>(spec: OptionSpec<T>): OptionSpec<T> => spec;

export const OPTIONS = {
  hosts: option({
    kind: "list",
    commands: POLICY,
    env: "hosts_csv",
    file: true,
    arg: "LIST",
    help: "names (or IP literals) to allow outbound, comma-separated; NAME:443,\nNAME:8000-8100, NAME:123/udp open only those ports (default: every port)",
    parse: value.hostList,
  }),
  ports: option({
    kind: "list",
    commands: POLICY,
    env: "listening_ports_csv",
    file: true,
    arg: "LIST",
    help: "inbound TCP ports to allow; when given, all other inbound\ntraffic is dropped; when absent, inbound is left untouched",
    parse: value.portList,
  }),
  "extra-hosts": option({
    kind: "list",
    commands: [...POLICY, "webhook"],
    file: true,
    arg: "LIST",
    help: "more entries as in --hosts, added to the hosts wherever those are set (a flag\nhere is not overridden by a config file's hosts); 'webhook': the cluster-wide\nentries every injected sidecar gets as this flag (fixed for a pod's life)",
    parse: value.hostList,
  }),
  "extra-ports": option({
    kind: "list",
    commands: POLICY,
    arg: "LIST",
    help: "inbound TCP ports added to --ports whenever those are set (an injected\nsidecar's own metrics port, so its probes still pass)",
    parse: value.portList,
  }),
  allow: option({
    kind: "list",
    commands: POLICY,
    env: "extra_whitelist_ips_csv",
    file: true,
    arg: "LIST",
    help: "extra IPv4/IPv6 addresses and CIDRs to allow outbound, with ports as in\n--hosts (203.0.113.0/24:443, [2001:db8::/64]:443)",
    parse: value.cidrList,
  }),
  "allow-file": option({
    kind: "value",
    commands: POLICY,
    file: true,
    arg: "PATH",
    help: "more of them from a file: one address or CIDR per line, # comments",
    parse: value.text,
  }),
  "dns-servers": option({
    kind: "list",
    commands: POLICY,
    file: true,
    arg: "any|LIST",
    help: "where DNS (port 53) may go; default: the nameservers in /etc/resolv.conf\n(behind a local stub such as systemd-resolved, also its upstream servers)",
    parse: value.dnsServers,
  }),
  reject: option({
    kind: "switch",
    commands: POLICY,
    file: true,
    help: "reject refused traffic (TCP reset, ICMP admin-prohibited) instead of dropping it",
    parse: value.flag,
  }),
  forward: option({
    kind: "switch",
    commands: POLICY,
    file: true,
    help: "also filter traffic forwarded through this machine (containers or VMs it\nhosts) with the same outbound policy",
    parse: value.flag,
  }),
  "refuse-private-answers": option({
    kind: "switch",
    commands: POLICY,
    file: true,
    help: "refuse DNS answers in private (RFC 1918), CGNAT (100.64/10) and ULA (fc00::/7)\nspace and in the resolvers' own /24 or /64: a DNS-rebinding guard",
    parse: value.flag,
  }),
  "private-domains": option({
    kind: "list",
    commands: POLICY,
    file: true,
    arg: "LIST",
    help: "names under these domains (e.g. cluster.local) may still answer with private\naddresses under --refuse-private-answers",
    parse: value.domainList,
  }),
  audit: option({
    kind: "switch",
    commands: POLICY,
    file: true,
    help: "audit mode: load the same policy but let through what it would refuse,\nrecording it for 'status' and 'suggest' (the firewall does not enforce)",
    parse: value.flag,
  }),
  strict: option({
    kind: "switch",
    commands: POLICY,
    file: true,
    help: "fail when a name does not exist or has no addresses (default: skip it, warn)",
    parse: value.flag,
  }),
  "on-resolve-error": option({
    kind: "value",
    commands: POLICY,
    file: true,
    arg: "fail|warn",
    help: "a name whose lookups keep failing: fail the run (default) or skip it",
    parse: (from) => value.oneOf(from, ["fail", "warn"]),
  }),
  "resolve-timeout": option({
    kind: "value",
    commands: POLICY,
    file: true,
    arg: "DURATION",
    help: `deadline for all DNS resolution (default ${DEFAULT_RESOLVE_TIMEOUT})`,
    parse: (from) => value.duration(from, DEFAULT_RESOLVE_TIMEOUT, 100, 300_000),
  }),
  config: option({
    kind: "value",
    commands: [...POLICY, "remove", "status", "webhook"],
    arg: "FILE",
    help: "read settings from a TOML file whose keys are these long option names;\nflags override the file, which overrides the environment (watch and webhook\nreload it when it changes)",
    parse: value.text,
  }),
  "confirm-within": option({
    kind: "value",
    commands: ["apply"],
    arg: "DURATION",
    help: "safe apply: keep the new rules only if 'domainwall confirm' runs (or a key\nis pressed on this terminal) within DURATION (e.g. 60s); otherwise put the\nprevious rules back, in one transaction, and exit 1",
    parse: value.optionalDuration,
  }),
  "min-ttl": option({
    kind: "value",
    commands: ["watch"],
    file: true,
    arg: "DURATION",
    help: `look a name up again no sooner than this (default ${WATCH_DEFAULTS.minTtl})`,
    parse: (from) => value.duration(from, WATCH_DEFAULTS.minTtl, 1000, 3_600_000),
  }),
  "max-ttl": option({
    kind: "value",
    commands: ["watch"],
    file: true,
    arg: "DURATION",
    help: `and no later than this, whatever its TTL (default ${WATCH_DEFAULTS.maxTtl})`,
    parse: (from) => value.duration(from, WATCH_DEFAULTS.maxTtl, 1000, 86_400_000),
  }),
  grace: option({
    kind: "value",
    commands: ["watch"],
    file: true,
    arg: "DURATION",
    help: `keep an address this long after DNS last returned it (default ${WATCH_DEFAULTS.grace})`,
    parse: (from) => value.duration(from, WATCH_DEFAULTS.grace, 0, 86_400_000),
  }),
  "ready-file": option({
    kind: "value",
    commands: ["watch"],
    file: true,
    arg: "PATH",
    help: "write this file once the first ruleset is loaded",
    parse: value.filePath,
  }),
  "metrics-addr": option({
    kind: "value",
    commands: ["watch", "webhook"],
    file: true,
    arg: "HOST:PORT",
    help: `serve /healthz (watch: 200 once loaded and keeping up) and /metrics (Prometheus)\non this address over plain HTTP, e.g. 0.0.0.0:9464 or [::]:9464 (webhook: default ${WEBHOOK_DEFAULTS.metricsAddr})`,
    parse: value.listenAddress,
  }),
  listen: option({
    kind: "value",
    commands: ["webhook"],
    arg: "HOST:PORT",
    help: `where the webhook serves AdmissionReviews over HTTPS (default ${WEBHOOK_DEFAULTS.listen})`,
    parse: value.listenAddress,
  }),
  "tls-cert": option({
    kind: "value",
    commands: ["webhook"],
    arg: "FILE",
    help: "the webhook's certificate (PEM, with its chain); reloaded when it changes",
    parse: value.filePath,
  }),
  "tls-key": option({
    kind: "value",
    commands: ["webhook"],
    arg: "FILE",
    help: "its private key (PEM); reloaded with the certificate",
    parse: value.filePath,
  }),
  image: option({
    kind: "value",
    commands: ["webhook"],
    file: true,
    arg: "IMAGE",
    help: "the domainwall image the webhook injects (required), e.g.\nghcr.io/domainwall/domainwall:0.1.0",
    parse: value.text,
  }),
  mode: option({
    kind: "value",
    commands: ["webhook"],
    file: true,
    arg: "proxy|apply",
    help: "what a pod gets unless its annotation domainwall.io/mode says otherwise:\nproxy (default: the watch --dns-proxy sidecar) or apply (a one-shot initContainer)",
    parse: (from) => value.oneOf(from, ["proxy", "apply"]),
  }),
  "sidecar-metrics-port": option({
    kind: "value",
    commands: ["webhook"],
    file: true,
    arg: "PORT",
    help: `the injected sidecar's /healthz and /metrics port (default ${WEBHOOK_DEFAULTS.sidecarMetricsPort})`,
    parse: (from) => value.port(from, WEBHOOK_DEFAULTS.sidecarMetricsPort),
  }),
  "sidecar-requests": option({
    kind: "list",
    commands: ["webhook"],
    file: true,
    arg: "LIST",
    help: `the injected container's resource requests (default ${WEBHOOK_DEFAULTS.requests.join(",")})`,
    parse: (from) => value.resourceList(from, WEBHOOK_DEFAULTS.requests),
  }),
  "sidecar-limits": option({
    kind: "list",
    commands: ["webhook"],
    file: true,
    arg: "LIST",
    help: `and its limits (default ${WEBHOOK_DEFAULTS.limits.join(",")})`,
    parse: (from) => value.resourceList(from, WEBHOOK_DEFAULTS.limits),
  }),
  "annotation-namespaces": option({
    kind: "list",
    commands: ["webhook"],
    file: true,
    arg: "LIST",
    help: "namespaces whose pods may set the annotations domainwall.io/mode and\ndomainwall.io/policy (default none: those annotations are refused)",
    parse: value.namespaceList,
  }),
  "dns-proxy": option({
    kind: "switch",
    commands: ["watch"],
    file: true,
    help: "answer the pod's DNS here: port 53 is redirected to a proxy that admits each\nlisted answer's addresses before the app gets it and answers NXDOMAIN for\nunlisted names; allows *.NAME (one label) and **.NAME (any) in the hosts (nft only)",
    parse: value.flag,
  }),
  "dns-proxy-port": option({
    kind: "value",
    commands: ["watch"],
    file: true,
    arg: "PORT",
    help: `the DNS proxy's port on 127.0.0.1 and ::1 (default ${DEFAULT_DNS_PROXY_PORT})`,
    parse: (from) => value.port(from, DEFAULT_DNS_PROXY_PORT),
  }),
  "dns-proxy-gid": option({
    kind: "value",
    commands: ["watch"],
    file: true,
    arg: "GID",
    help: `the group id domainwall switches to; only its sockets skip the redirect and\nmay reach the resolvers (default ${DEFAULT_PROXY_GID})`,
    parse: (from) => value.proxyGid(from, DEFAULT_PROXY_GID),
  }),
  "remove-on-exit": option({
    kind: "switch",
    commands: ["watch"],
    file: true,
    help: "remove the rules on SIGTERM/SIGINT (default: leave them loaded)",
    parse: value.flag,
  }),
  backend: option({
    kind: "value",
    commands: ["apply", "render", "check", "remove", "status", "explain", "suggest", "watch"],
    env: "DOMAINWALL_BACKEND",
    file: true,
    arg: "auto|nft|iptables-legacy",
    help: "auto (default): nft where the kernel accepts it, else iptables-legacy",
    parse: (from) => value.oneOf(from, BACKENDS),
  }),
  "log-format": option({
    kind: "value",
    commands: ALL,
    env: "DOMAINWALL_LOG_FORMAT",
    file: true,
    arg: "text|json",
    help: "log format on stderr (default text)",
    parse: (from) => value.oneOf(from, ["text", "json"]),
  }),
  "log-level": option({
    kind: "value",
    commands: ALL,
    env: "DOMAINWALL_LOG_LEVEL",
    file: true,
    arg: "info|debug",
    help: "log level on stderr (default info); debug adds details such as nft's own error output",
    parse: (from) => value.oneOf(from, ["info", "debug"]),
  }),
  json: option({
    kind: "switch",
    commands: READ,
    help: "print one JSON object on stdout instead of text (its fields: docs/visibility.md)",
    parse: value.flag,
  }),
  follow: option({
    kind: "switch",
    commands: ["status"],
    short: "f",
    help: "keep printing each newly denied destination (and a summary once a minute\nfor one that is still hit) as the kernel records it, until SIGINT",
    parse: value.flag,
  }),
  "dry-run": option({ kind: "switch", commands: ["render"], help: "the same as the command 'render'", parse: value.flag }),
  help: option({ kind: "switch", commands: ALL, short: "h", help: "show help", parse: value.flag }),
  version: option({ kind: "switch", commands: ALL, short: "V", help: "print the version", parse: value.flag }),
} as const;

export type OptionName = keyof typeof OPTIONS;
export const OPTION_NAMES = Object.keys(OPTIONS) as OptionName[];

/** The typed value of an option once parsed. */
export type ValueOf<N extends OptionName> = (typeof OPTIONS)[N] extends OptionSpec<infer T> ? T : never;

export const takes = (command: Command, name: OptionName): boolean => OPTIONS[name].commands.includes(command);

/** Keys a `--config` file may hold. */
export const FILE_KEYS: readonly OptionName[] = OPTION_NAMES.filter((name) => OPTIONS[name].file === true);
