import * as v from "valibot";
import { parseDuration } from "./duration.ts";
import { configError } from "../errors.ts";
import { parseHost } from "./hostname.ts";
import { parseAddress, parseCidr, sortByCidr, type Cidr } from "../net/ip.ts";

/** An allowed network and where it came from (shown as a `#` comment in the ruleset). */
export interface AllowEntry {
  readonly cidr: Cidr;
  readonly source: string;
}

export type DnsServers = { readonly kind: "resolv.conf" } | { readonly kind: "any" } | { readonly kind: "list"; readonly servers: readonly Cidr[] };

export type LogFormat = "text" | "json";

/** Validated configuration: everything downstream trusts it. */
export interface Config {
  /** DNS names to resolve: ASCII, lower case, no trailing dot, unique, in input order. */
  readonly hosts: readonly string[];
  /** `--allow` and `--allow-file` networks, and IP literals from the host list; sorted by `compareCidr`. */
  readonly allow: readonly AllowEntry[];
  /** Inbound TCP ports, sorted; empty leaves inbound traffic untouched. */
  readonly ports: readonly number[];
  readonly dnsServers: DnsServers;
  readonly strict: boolean;
  readonly onResolveError: "fail" | "warn";
  readonly reject: boolean;
  readonly resolveTimeoutMs: number;
  /** Only for `watch`. */
  readonly watch?: WatchConfig;
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
}

export interface ListenAddress {
  /** An IP address (IPv6 without brackets) or "localhost". */
  readonly hostname: string;
  readonly port: number;
}

/** One raw setting and the variable or flag it came from, so every message can name it. */
export interface Setting {
  readonly from: string;
  readonly value: string;
}

/** What the command line and environment provide, before validation. */
export interface RawConfig {
  readonly hosts?: Setting;
  readonly ports?: Setting;
  readonly allow?: Setting;
  /** `--allow-file`: the setting holds the path. */
  readonly allowFile?: Setting;
  /** The allow file's text, read by the caller (config stays pure); undefined when it does not exist. */
  readonly allowFileText?: string;
  readonly dnsServers?: Setting;
  readonly resolveTimeout?: Setting;
  readonly strict: boolean;
  readonly onResolveError?: Setting;
  readonly reject: boolean;
  /** Whether this command needs hosts (apply, render, check). */
  readonly requireHosts: boolean;
  /** Present for `watch` only. */
  readonly watch?: RawWatchConfig;
}

export interface RawWatchConfig {
  readonly minTtl?: Setting;
  readonly maxTtl?: Setting;
  readonly grace?: Setting;
  readonly readyFile?: Setting;
  readonly metricsAddr?: Setting;
  readonly removeOnExit: boolean;
}

export interface ParsedConfig {
  readonly config: Config;
  /** Accepted but worth telling: normalised CIDRs, duplicates. */
  readonly warnings: readonly string[];
}

const show = (value: string): string => JSON.stringify(value);

/** Split a comma-separated list; whitespace around items and empty items are tolerated. */
export const splitList = (value: string): string[] =>
  value
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");

type Item<T> = v.GenericSchema<string, T>;

function item<T>(from: string, parse: (raw: string) => { ok: true; value: T } | { ok: false; reason: string }): Item<T> {
  return v.pipe(
    v.string(),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const result = parse(dataset.value);
      if (result.ok) return result.value;
      addIssue({ message: `${from}: ${show(dataset.value)} ${result.reason}` });
      return NEVER;
    }),
  );
}

const hostItem = (from: string) =>
  item(from, (raw) => {
    const parsed = parseHost(raw);
    return parsed.ok ? { ok: true, value: parsed.host } : { ok: false, reason: `is not a valid host name: ${parsed.reason}` };
  });

const portItem = (from: string) =>
  item(from, (raw) =>
    /^[0-9]{1,5}$/.test(raw) && Number(raw) >= 1 && Number(raw) <= 65535
      ? { ok: true, value: Number(raw) }
      : { ok: false, reason: "is not a port number (1-65535)" },
  );

const cidrItem = (from: string) =>
  item(from, (raw) => {
    const parsed = parseCidr(raw);
    return parsed.ok ? { ok: true, value: { raw, ...parsed } } : { ok: false, reason: `is not an IP address or CIDR: ${parsed.reason}` };
  });

const listOf = <T>(from: string, schema: (from: string) => Item<T>) =>
  v.pipe(v.string(), v.transform(splitList), v.array(schema(from)));

const dnsServersSchema = (from: string) =>
  v.pipe(
    v.union([v.string(), v.undefined()]),
    v.rawTransform(({ dataset, addIssue, NEVER }): DnsServers => {
      if (dataset.value === undefined) return { kind: "resolv.conf" };
      if (dataset.value.trim() === "any") return { kind: "any" };
      const servers: Cidr[] = [];
      for (const raw of splitList(dataset.value)) {
        const parsed = parseCidr(raw);
        if (parsed.ok && !parsed.hostBitsSet) servers.push(parsed.cidr);
        else addIssue({ message: `${from}: ${show(raw)} is not a resolver address` });
      }
      if (servers.length === 0 && splitList(dataset.value).length === 0) {
        addIssue({ message: `${from}: expected "any" or a list of resolver addresses` });
      }
      return servers.length > 0 ? { kind: "list", servers } : NEVER;
    }),
  );

const DEFAULT_RESOLVE_TIMEOUT = "10s";

/** A duration setting in milliseconds, between `minMs` and `maxMs`; absent means `fallback`. */
const durationSchema = (from: string, fallback: string, minMs: number, maxMs: number) =>
  v.pipe(
    v.optional(v.string(), fallback),
    v.check(
      (raw) => {
        const ms = parseDuration(raw);
        return ms !== undefined && ms >= minMs && ms <= maxMs;
      },
      (issue) => `${from}: ${show(String(issue.input))} is not a duration between ${minMs / 1000}s and ${maxMs / 1000}s (e.g. ${fallback})`,
    ),
    v.transform((raw) => parseDuration(raw) ?? 0),
  );

const timeoutSchema = (from: string) => durationSchema(from, DEFAULT_RESOLVE_TIMEOUT, 100, 300_000);

const onErrorSchema = (from: string) =>
  v.optional(
    v.picklist(["fail", "warn"], (issue) => `${from}: ${show(String(issue.input))} must be "fail" or "warn"`),
    "fail",
  );

/** Defaults of `watch`: see WatchConfig. */
export const WATCH_DEFAULTS = { minTtl: "5s", maxTtl: "1h", grace: "5m" } as const;

/** `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all IPv4 interfaces); HOST is an IP address or localhost. */
export function parseListenAddress(text: string): ListenAddress | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):([0-9]{1,5})$/.exec(text.trim());
  const port = Number(match?.[3]);
  if (!match || port < 1 || port > 65535) return undefined;
  const hostname = match[1] ?? (match[2] || "0.0.0.0");
  const ip = parseAddress(hostname);
  if (hostname !== "localhost" && (ip === undefined || (ip.family === 6) !== (match[1] !== undefined))) return undefined;
  return { hostname, port };
}

const watchSchema = (raw: RawWatchConfig | undefined) => {
  const from = (setting: Setting | undefined, flag: string) => setting?.from ?? flag;
  return v.optional(
    v.pipe(
      v.object({
        minTtlMs: durationSchema(from(raw?.minTtl, "--min-ttl"), WATCH_DEFAULTS.minTtl, 1000, 3_600_000),
        maxTtlMs: durationSchema(from(raw?.maxTtl, "--max-ttl"), WATCH_DEFAULTS.maxTtl, 1000, 86_400_000),
        graceMs: durationSchema(from(raw?.grace, "--grace"), WATCH_DEFAULTS.grace, 0, 86_400_000),
        readyFile: v.optional(v.pipe(v.string(), v.trim(), v.nonEmpty(`${from(raw?.readyFile, "--ready-file")}: expected a file path`))),
        metricsAddr: v.optional(
          v.pipe(
            v.string(),
            v.rawTransform(({ dataset, addIssue, NEVER }) => {
              const address = parseListenAddress(dataset.value);
              if (address) return address;
              addIssue({ message: `${from(raw?.metricsAddr, "--metrics-addr")}: ${show(dataset.value)} is not HOST:PORT (e.g. 0.0.0.0:9464, [::]:9464, 127.0.0.1:9464)` });
              return NEVER;
            }),
          ),
        ),
        removeOnExit: v.boolean(),
      }),
      v.check(
        (w) => w.minTtlMs <= w.maxTtlMs,
        (issue) => `--min-ttl (${(issue.input as { minTtlMs: number }).minTtlMs / 1000}s) must not be longer than --max-ttl (${(issue.input as { maxTtlMs: number }).maxTtlMs / 1000}s)`,
      ),
    ),
  );
};

/** At most this many problems (or host-bits warnings) of an allow file are listed one by one. */
const FILE_PROBLEMS_SHOWN = 10;

/**
 * `--allow-file`: one address or CIDR per line, as in `--allow`; `#` starts a comment, blank lines
 * are skipped. Each entry's source is `PATH:LINE`, so the ruleset's comments point back at it.
 */
export function parseAllowFile(from: string, path: string, text: string): { entries: AllowEntry[]; problems: string[]; warnings: string[] } {
  const entries: AllowEntry[] = [];
  const problems: string[] = [];
  const warnings: string[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    const hash = line.indexOf("#");
    const value = (hash < 0 ? line : line.slice(0, hash)).trim();
    if (value === "") continue;
    const parsed = parseCidr(value);
    if (!parsed.ok) problems.push(`${from}: ${path}:${i + 1}: ${show(value)} is not an IP address or CIDR: ${parsed.reason}`);
    else {
      if (parsed.hostBitsSet) warnings.push(`${from}: ${path}:${i + 1}: ${show(value)} has host bits set; using ${parsed.cidr.text}`);
      entries.push({ cidr: parsed.cidr, source: [path, i + 1].join(":") }); // join: a flat string, not a rope to flatten later
    }
  }
  const capped = (messages: string[], what: string) =>
    messages.length <= FILE_PROBLEMS_SHOWN ? messages : [...messages.slice(0, FILE_PROBLEMS_SHOWN), `${from}: ${path}: and ${messages.length - FILE_PROBLEMS_SHOWN} more ${what}`];
  return { entries, problems: capped(problems, "invalid lines"), warnings: capped(warnings, "lines with host bits set") };
}

/** The allow file's entries, or the problems that stop it (missing file, bad lines). */
function allowFileEntries(raw: RawConfig): ReturnType<typeof parseAllowFile> {
  const setting = raw.allowFile;
  if (setting === undefined) return { entries: [], problems: [], warnings: [] };
  if (setting.value.trim() === "") return { entries: [], problems: [`${setting.from}: expected a file path`], warnings: [] };
  if (raw.allowFileText === undefined) return { entries: [], problems: [`${setting.from}: ${show(setting.value)} does not exist`], warnings: [] };
  return parseAllowFile(setting.from, setting.value, raw.allowFileText);
}

/**
 * Validate everything before anything touches DNS or the kernel. All problems are reported at
 * once, each naming the variable or flag and the bad value; the error maps to exit code 2.
 */
export function parseConfig(raw: RawConfig): ParsedConfig {
  const from = (setting: Setting | undefined) => setting?.from ?? "";
  const schema = v.object({
    hosts: listOf(from(raw.hosts), hostItem),
    ports: listOf(from(raw.ports), portItem),
    allow: listOf(from(raw.allow), cidrItem),
    dnsServers: dnsServersSchema(from(raw.dnsServers)),
    resolveTimeoutMs: timeoutSchema(from(raw.resolveTimeout)),
    onResolveError: onErrorSchema(from(raw.onResolveError)),
    watch: watchSchema(raw.watch),
  });
  const result = v.safeParse(schema, {
    hosts: raw.hosts?.value ?? "",
    ports: raw.ports?.value ?? "",
    allow: raw.allow?.value ?? "",
    dnsServers: raw.dnsServers?.value,
    resolveTimeoutMs: raw.resolveTimeout?.value,
    onResolveError: raw.onResolveError?.value,
    watch: raw.watch && {
      minTtlMs: raw.watch.minTtl?.value,
      maxTtlMs: raw.watch.maxTtl?.value,
      graceMs: raw.watch.grace?.value,
      readyFile: raw.watch.readyFile?.value,
      metricsAddr: raw.watch.metricsAddr?.value,
      removeOnExit: raw.watch.removeOnExit,
    },
  });
  const allowFile = allowFileEntries(raw);
  const problems = [...(result.success ? [] : result.issues.map((issue) => issue.message)), ...allowFile.problems];
  if (result.success && raw.requireHosts && result.output.hosts.length === 0) {
    problems.push(
      raw.hosts === undefined
        ? "hosts_csv (or --hosts) is required: the names to allow outbound"
        : `${raw.hosts.from}: ${show(raw.hosts.value)} lists no host names`,
    );
  }
  if (!result.success || problems.length > 0) {
    throw configError(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
  const { hosts, ports, allow, dnsServers, resolveTimeoutMs, onResolveError, watch } = result.output;
  const warnings: string[] = [];
  for (const entry of allow) {
    if (entry.hostBitsSet) warnings.push(`${raw.allow?.from}: ${show(entry.raw)} has host bits set; using ${entry.cidr.text}`);
  }
  warnings.push(...allowFile.warnings);
  const names = [...new Set(hosts.flatMap((h) => (h.kind === "name" ? [h.name] : [])))];
  const literals = hosts.flatMap((h) => (h.kind === "address" ? [h.cidr] : []));
  const allowEntries: AllowEntry[] = [
    ...allow.map((entry) => ({ cidr: entry.cidr, source: from(raw.allow) })),
    ...allowFile.entries,
    ...literals.map((cidr) => ({ cidr, source: from(raw.hosts) })),
  ];
  return {
    config: {
      hosts: names,
      allow: sortByCidr(allowEntries, (entry) => entry.cidr),
      ports: [...new Set(ports)].sort((a, b) => a - b),
      dnsServers,
      strict: raw.strict,
      onResolveError,
      reject: raw.reject,
      resolveTimeoutMs,
      ...(watch && { watch }),
    },
    warnings,
  };
}
