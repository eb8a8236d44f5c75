/**
 * Why DNS failed, in words a person acts on: after lookups failed, one query straight to each
 * resolver of resolv.conf (ask-resolver.ts) says which of them timed out, refused, answered
 * NXDOMAIN or nothing, or could not be reached, and the message ends with what to check.
 */
import { decode, encode } from "dns-packet";
import { DomainwallError } from "../errors.ts";
import type { AskResolver, ResolverReply } from "./ask-resolver.ts";
import { parseResolvConf } from "./resolv-conf.ts";
import type { HostResolution } from "./resolve.ts";

export type ResolverOutcome =
  | "timeout"
  | "refused"
  | "NXDOMAIN"
  | "no answer"
  | "server failure"
  | "network unreachable"
  | "connection refused"
  | "blocked on this host"
  | "answered"
  | "unreadable reply"
  | "error";

export interface ResolverVerdict {
  readonly server: string;
  readonly outcome: ResolverOutcome;
  /** The socket error's code, for `error`. */
  readonly code?: string;
}

/** glibc asks at most three nameservers (MAXNS). */
const MAX_SERVERS = 3;
export const DIAGNOSE_TIMEOUT_MS = 2000;

/** What one resolver's reply (or its absence) to an A query for the name says. */
export function classifyReply(reply: ResolverReply): Pick<ResolverVerdict, "outcome" | "code"> {
  if (reply.kind === "timeout") return { outcome: "timeout" };
  if (reply.kind === "error") {
    if (reply.code === "ENETUNREACH" || reply.code === "EHOSTUNREACH") return { outcome: "network unreachable", code: reply.code };
    if (reply.code === "ECONNREFUSED") return { outcome: "connection refused", code: reply.code };
    // A local firewall's reject fails the send itself.
    if (reply.code === "EPERM" || reply.code === "EACCES") return { outcome: "blocked on this host", code: reply.code };
    return { outcome: "error", code: reply.code };
  }
  let packet: ReturnType<typeof decode> & { rcode?: string };
  try {
    packet = decode(Buffer.from(reply.bytes));
  } catch {
    return { outcome: "unreadable reply" };
  }
  switch (packet.rcode) {
    case "REFUSED":
      return { outcome: "refused" };
    case "NXDOMAIN":
      return { outcome: "NXDOMAIN" };
    case "SERVFAIL":
      return { outcome: "server failure" };
    case "NOERROR":
      return { outcome: (packet.answers ?? []).some((a) => a.type === "A") ? "answered" : "no answer" };
    default:
      return { outcome: "error", code: packet.rcode ?? "unknown rcode" };
  }
}

const SAYS: Readonly<Record<ResolverOutcome, (v: ResolverVerdict) => string>> = {
  timeout: () => `timeout (no reply within ${DIAGNOSE_TIMEOUT_MS / 1000} s)`,
  refused: () => "refused (it answered REFUSED: it does not serve this host)",
  NXDOMAIN: () => "NXDOMAIN (no such name)",
  "no answer": () => "no answer (the name has no address of this type)",
  "server failure": () => "server failure (it answered SERVFAIL)",
  "network unreachable": (v) => `network unreachable (${v.code})`,
  "connection refused": () => "connection refused (nothing answers DNS there)",
  "blocked on this host": (v) => `blocked by a firewall on this host (${v.code})`,
  answered: () => "answers now (the failure was passing)",
  "unreadable reply": () => "an unreadable reply",
  error: (v) => `error (${v.code})`,
};

/** `Asked 198.51.100.9: timeout (...); 198.51.100.2: refused (...). Check ...`. */
export function describeVerdicts(verdicts: readonly ResolverVerdict[]): string {
  const asked =
    verdicts.length === 0
      ? "/etc/resolv.conf names no resolver"
      : `Asked ${verdicts.map((v) => `${v.server}: ${SAYS[v.outcome](v)}`).join("; ")}`;
  return `${asked}. Check --dns-servers and /etc/resolv.conf, or that a loaded policy is not blocking this host's own lookups (see 'domainwall status')`;
}

/** Ask each resolver (at most three, at once) for `name`'s A record. */
export async function diagnoseResolvers(name: string, servers: readonly string[], ask: AskResolver): Promise<ResolverVerdict[]> {
  const query = new Uint8Array(
    encode({ type: "query", id: Math.floor(Math.random() * 65536), flags: 0x0100, questions: [{ type: "A", class: "IN", name }] }),
  );
  return Promise.all(
    servers.slice(0, MAX_SERVERS).map(async (server) => ({ server, ...classifyReply(await ask(server, query, DIAGNOSE_TIMEOUT_MS)) })),
  );
}

/**
 * A resolution error for names whose lookups failed, with what the resolvers say now appended.
 * Anything else (a --strict name with no addresses, no seam to ask with) is returned as it was.
 */
export async function withDnsDiagnosis(
  error: unknown,
  resolutions: readonly HostResolution[],
  io: { readonly readFile: (path: string) => Promise<string | undefined>; readonly askResolver?: AskResolver | undefined },
): Promise<unknown> {
  const failed = resolutions.find((r) => r.status === "failed");
  if (!(error instanceof DomainwallError) || error.kind !== "resolve" || failed === undefined || io.askResolver === undefined) return error;
  const servers = parseResolvConf((await io.readFile("/etc/resolv.conf").catch(() => undefined)) ?? "").servers.map((s) => s.text);
  const verdicts = await diagnoseResolvers(failed.host, servers, io.askResolver);
  return new DomainwallError(error.kind, `${error.message}. ${describeVerdicts(verdicts)}`, error.detail);
}
