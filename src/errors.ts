/**
 * The ways a run can fail, each with its exit code (mapped in one place: `exitCode`): bad usage or
 * configuration (nothing was touched), DNS, anything at run time (nft, files), and a check that
 * found the firewall not enforcing.
 */
export type ErrorKind = "usage" | "resolve" | "runtime" | "not-enforcing";

export class DomainwallError extends Error {
  override readonly name = "DomainwallError";
  constructor(
    readonly kind: ErrorKind,
    message: string,
    /** What a person needs only when digging (a tool's own multi-line output): logged at debug, and as a field in JSON. */
    readonly detail?: string,
  ) {
    super(message);
  }
}

export const usageError = (message: string) => new DomainwallError("usage", message);
export const resolveError = (message: string) => new DomainwallError("resolve", message);
export const runtimeError = (message: string) => new DomainwallError("runtime", message);
/** nft's and iptables-legacy's own words when this process may not change (or read) the firewall here. */
export const lacksPrivilege = (text: string): boolean => /Operation not permitted|Permission denied \(you must be root\)/.test(text);

/** The one line a person acts on without the privilege (exit 1); the tool's own output goes in `detail`. */
export const privilegeError = (tool: "nft" | "iptables-legacy", detail: string) =>
  new DomainwallError(
    "runtime",
    `domainwall needs root with CAP_NET_ADMIN in this network namespace (${tool}: ${tool === "nft" ? "Operation not permitted" : "Permission denied"})`,
    detail,
  );

/** `status`: domainwall's rules are loaded but a hook or jump is missing, or a rule decides before ours. */
export const notEnforcingError = (message: string) => new DomainwallError("not-enforcing", message);

/** 0 success, 1 runtime failure (DNS, nft), 2 bad configuration or usage, 3 `status`: loaded but not enforcing; `explain`: 1 when denied. */
export const EXIT = { ok: 0, runtime: 1, usage: 2, notEnforcing: 3, denied: 1 } as const;

export function exitCode(error: unknown): number {
  if (!(error instanceof DomainwallError)) return EXIT.runtime;
  return error.kind === "usage" ? EXIT.usage : error.kind === "not-enforcing" ? EXIT.notEnforcing : EXIT.runtime;
}
