import type { Backend } from "../backends/backend.ts";
import { leftOut, systemResolvers } from "../dns/resolvers.ts";
import { DomainwallError, resolveError } from "../errors.ts";
import { parseCidr, type Cidr } from "../net/ip.ts";
import type { Context } from "./context.ts";

/**
 * Why this host's lookups fail when a policy of ours is loaded that lets DNS go only to servers
 * other than resolv.conf's: a sentence saying so and what to run, or undefined when the loaded
 * policy is not the cause (none loaded, DNS to any server, or the resolvers are in its set).
 */
export function blockedLookupsHint(loadedDns: "any" | readonly string[], system: readonly Cidr[]): string | undefined {
  if (loadedDns === "any" || system.length === 0) return undefined;
  const allowed = loadedDns.flatMap((text) => {
    const parsed = parseCidr(text);
    return parsed.ok ? [parsed.cidr] : [];
  });
  const blocked = leftOut(system, allowed);
  if (blocked.length === 0) return undefined;
  const names = blocked.map((s) => s.text).join(",");
  return `the domainwall policy loaded here lets DNS go only to ${loadedDns.length === 0 ? "no server" : loadedDns.join(", ")}, so it blocks this host's resolvers (/etc/resolv.conf) ${blocked.map((s) => s.text).join(", ")} and domainwall's own lookups: run 'domainwall remove' (which opens everything until the next apply), then apply again with --dns-servers including ${names} (or --dns-servers any)`;
}

/** A DNS-proxy policy redirects this host's lookups, domainwall's own too, to its proxy. */
const PROXY_HINT =
  "a domainwall policy with the DNS proxy is loaded here: this host's lookups, domainwall's own too, are redirected to the proxy, which answers only while 'domainwall watch --dns-proxy' runs and only for the names it lists: start that watch again, or run 'domainwall remove' (which opens everything until the next apply) first";

/**
 * A resolution error, told why when the loaded policy of ours blocks the lookups (blockedLookupsHint);
 * any other error as it was. Reads the kernel's table (status) and resolv.conf, at the time of the error.
 */
export async function explainResolveFailure(
  ctx: Pick<Context, "world">,
  backend: () => Promise<Backend>,
  error: unknown,
): Promise<unknown> {
  if (!(error instanceof DomainwallError) || error.kind !== "resolve" || error.message.startsWith("--strict")) return error;
  try {
    const status = await (await backend()).status();
    if (!status.loaded) return error;
    const hint = status.proxy !== undefined ? PROXY_HINT : blockedLookupsHint(status.dns, await systemResolvers(ctx.world));
    return hint === undefined ? error : resolveError(`${error.message}: ${hint}`);
  } catch {
    return error; // the kernel could not be asked: the failure stands as it was
  }
}
