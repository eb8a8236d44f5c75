import type { OptionName } from "../../src/config/options.ts";
import { settingOf, type Setting } from "../../src/config/settings.ts";
import { parseConfig as parseCommandConfig, type Config, type WatchConfig } from "../../src/config/config.ts";

// The tables of config, policy and watch tests name settings by field, as flags, variables or file
// keys give them; this turns them into the settings the option table parses.

/** One raw setting as a flag, variable or file key gives it. */
export type Raw = { readonly from: string; readonly value: string };
export interface RawWatchConfig {
  readonly minTtl?: Raw;
  readonly maxTtl?: Raw;
  readonly grace?: Raw;
  readonly readyFile?: Raw;
  readonly metricsAddr?: Raw;
  readonly removeOnExit: boolean;
}
/** The policy settings of these tables, by field; `requireHosts: false` parses for `status`, `watch` for watch. */
export interface RawConfig {
  readonly hosts?: Raw;
  readonly ports?: Raw;
  readonly allow?: Raw;
  readonly allowFile?: Raw;
  readonly allowFileText?: string;
  readonly dnsServers?: Raw;
  readonly privateDomains?: Raw;
  readonly resolveTimeout?: Raw;
  readonly onResolveError?: Raw;
  readonly strict: boolean;
  readonly reject: boolean;
  readonly audit?: boolean;
  readonly requireHosts: boolean;
  readonly watch?: RawWatchConfig;
}
const NAMES: Record<string, OptionName> = {
  hosts: "hosts",
  ports: "ports",
  allow: "allow",
  allowFile: "allow-file",
  dnsServers: "dns-servers",
  privateDomains: "private-domains",
  resolveTimeout: "resolve-timeout",
  onResolveError: "on-resolve-error",
  minTtl: "min-ttl",
  maxTtl: "max-ttl",
  grace: "grace",
  readyFile: "ready-file",
  metricsAddr: "metrics-addr",
};

/** The settings a command line, the environment or a file would give for `raw`, parsed for its command. */
export function parseConfig(raw: RawConfig) {
  const settings = new Map<OptionName, Setting>();
  for (const [key, value] of Object.entries({ ...raw, ...raw.watch })) {
    const name = NAMES[key];
    if (name !== undefined && value !== undefined) settings.set(name, settingOf(name, (value as Raw).from, (value as Raw).value));
  }
  for (const name of ["strict", "reject", "audit", "remove-on-exit"] as const) {
    const on = name === "remove-on-exit" ? raw.watch?.removeOnExit : raw[name];
    if (on) settings.set(name, { from: `--${name}`, kind: "switch", on });
  }
  const command = raw.watch ? "watch" : raw.requireHosts ? "apply" : "status";
  const { config, warnings } = parseCommandConfig(settings, command, { allowFileText: raw.allowFileText });
  // `status` has no policy: only that it parsed is of interest there.
  const policy = ("policy" in config ? config.policy : { hosts: [] }) as Config;
  return { config: { ...policy, watch: "watch" in config ? config.watch : undefined } as Config & { watch?: WatchConfig }, warnings };
}
