/**
 * Socket errors as the proxy meets them: Bun 1.4 calls a UDP socket's `error` handler with the
 * error alone (not `(socket, error)` as its types say), so handlers take whatever they are given.
 */

/** The error among a handler's arguments, whichever position Bun put it in. */
export function errorOf(args: readonly unknown[]): unknown {
  return args.find((a) => a instanceof Error) ?? args.find((a) => typeof a === "object" && a !== null && "code" in a) ?? args[0];
}

/**
 * A client that has gone: the ICMP port unreachable of a UDP reply (ECONNREFUSED on the next
 * read), a TCP peer that closed or reset. Normal for a DNS server: counted, never logged.
 */
const GONE = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ECONNABORTED", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT"]);

export function isClientGone(error: unknown): boolean {
  const code = typeof error === "object" && error !== null && "code" in error ? (error as { code: unknown }).code : undefined;
  if (typeof code === "string" && GONE.has(code)) return true;
  // Some of Bun's socket errors carry the code only in the message ("ECONNREFUSED: connection refused, recv").
  const message = describeError(error);
  return [...GONE].some((c) => message.startsWith(c));
}

/** The error's message on one line, at most 200 characters: never a stack or source. */
export function describeError(error: unknown): string {
  let text: string;
  try {
    text = error instanceof Error ? error.message : typeof error === "string" ? error : String(error);
  } catch {
    text = "unknown error";
  }
  const line = text.replace(/[\r\n]+/g, " ").trim();
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}
