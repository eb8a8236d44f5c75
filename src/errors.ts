/** The three ways a run can fail, each with its exit code (mapped in one place: `exitCode`). */
export type ErrorKind = "config" | "resolve" | "apply";

export class DomainwallError extends Error {
  override readonly name = "DomainwallError";
  constructor(
    readonly kind: ErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export const configError = (message: string) => new DomainwallError("config", message);
export const resolveError = (message: string) => new DomainwallError("resolve", message);
export const applyError = (message: string) => new DomainwallError("apply", message);

/** 0 success, 1 runtime failure (DNS, nft), 2 bad configuration or usage. */
export const EXIT = { ok: 0, runtime: 1, usage: 2 } as const;

export function exitCode(error: unknown): number {
  return error instanceof DomainwallError && error.kind === "config" ? EXIT.usage : EXIT.runtime;
}
