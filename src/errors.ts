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
  ) {
    super(message);
  }
}

export const usageError = (message: string) => new DomainwallError("usage", message);
export const resolveError = (message: string) => new DomainwallError("resolve", message);
export const runtimeError = (message: string) => new DomainwallError("runtime", message);
/** `status`: domainwall's rules are loaded but a hook or jump is missing, or a rule decides before ours. */
export const notEnforcingError = (message: string) => new DomainwallError("not-enforcing", message);

/** 0 success, 1 runtime failure (DNS, nft), 2 bad configuration or usage, 3 `status`: loaded but not enforcing; `explain`: 1 when denied. */
export const EXIT = { ok: 0, runtime: 1, usage: 2, notEnforcing: 3, denied: 1 } as const;

export function exitCode(error: unknown): number {
  if (!(error instanceof DomainwallError)) return EXIT.runtime;
  return error.kind === "usage" ? EXIT.usage : error.kind === "not-enforcing" ? EXIT.notEnforcing : EXIT.runtime;
}
