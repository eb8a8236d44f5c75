import type { AllowEntry, Config } from "../config/config.ts";
import { contains, type Cidr } from "../net/ip.ts";
import { forbiddenReason, privateReason, resolverNetworks, underDomain } from "./forbidden.ts";

/**
 * What a DNS answer may open, for the resolver path (buildPolicy) and the DNS proxy alike: never a
 * forbidden address (loopback, metadata...), and with `--refuse-private-answers` no private one
 * unless the name is under a `--private-domains` domain; an `--allow` entry covering the address
 * lets it through either way.
 */
export interface AnswerGate {
  readonly allow: readonly AllowEntry[];
  /** `--refuse-private-answers`: the resolvers' networks and the domains that may answer privately. */
  readonly private?: { readonly resolverNets: readonly Cidr[]; readonly privateDomains: readonly string[] };
}

export const answerGateOf = (config: Config, resolvers: readonly Cidr[]): AnswerGate => ({
  allow: config.allow,
  ...(config.refusePrivateAnswers && {
    private: { resolverNets: resolverNetworks(resolvers), privateDomains: config.privateDomains },
  }),
});

/** Why `address`, answered for `name`, may not be opened; undefined when it may. */
export function refusedAnswer(
  gate: AnswerGate,
  name: string,
  address: Cidr,
): { kind: "forbidden" | "private"; reason: string } | undefined {
  const forbidden = forbiddenReason(address);
  const allowed = () => gate.allow.some((entry) => contains(entry.cidr, address));
  if (forbidden !== undefined) return allowed() ? undefined : { kind: "forbidden", reason: forbidden };
  if (gate.private === undefined || underDomain(name, gate.private.privateDomains)) return undefined;
  const reason = privateReason(address, gate.private.resolverNets);
  return reason === undefined || allowed() ? undefined : { kind: "private", reason };
}
