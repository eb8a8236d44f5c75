/**
 * The three ways a run can fail, each with its exit code (mapped in one place: `exitCode`):
 * bad usage or configuration (nothing was touched), DNS, and anything at run time (nft, files).
 */
export type ErrorKind = "usage" | "resolve" | "runtime";

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

/** 0 success, 1 runtime failure (DNS, nft), 2 bad configuration or usage; `explain`: 1 when denied. */
export const EXIT = { ok: 0, runtime: 1, usage: 2, denied: 1 } as const;

export function exitCode(error: unknown): number {
  return error instanceof DomainwallError && error.kind === "usage" ? EXIT.usage : EXIT.runtime;
}
