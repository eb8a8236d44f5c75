import type { AllowEntry, Config } from "../config/config.ts";
import { contains, makeCidr, parseAddress, type Cidr } from "../net/ip.ts";
import { ipv4OfMapped } from "../config/mapped.ts";
import type { LocalNet } from "../net/interfaces.ts";
import { forbiddenReason, privateReason, resolverNetworks, underDomain } from "./forbidden.ts";

/**
 * What a DNS answer may open, for the resolver path (buildPolicy) and the DNS proxy alike: never a
 * forbidden address (loopback, metadata...), and with `--refuse-private-answers` no private one
 * unless the name is under a `--private-domains` domain; an `--allow` entry covering the address
 * lets it through either way. An IPv4-mapped answer is never admitted: a connection to it leaves as
 * IPv4, which only an A answer opens (its IPv4 form is still checked for the reason given).
 */
export interface AnswerGate {
  readonly allow: readonly AllowEntry[];
  /**
   * `--refuse-private-answers`: the resolvers' networks, this namespace's own addresses, on-link
   * networks and gateways, and the domains that may answer privately.
   */
  readonly private?: {
    readonly resolverNets: readonly Cidr[];
    readonly localNets: readonly LocalNet[];
    readonly privateDomains: readonly string[];
  };
}

export const answerGateOf = (config: Config, resolvers: readonly Cidr[], localNets: readonly LocalNet[] = []): AnswerGate => ({
  allow: config.allow,
  ...(config.refusePrivateAnswers && {
    private: { resolverNets: resolverNetworks(resolvers), localNets, privateDomains: config.privateDomains },
  }),
});

/** Why `address`, answered for `name`, may not be opened; undefined when it may. */
export function refusedAnswer(
  gate: AnswerGate,
  name: string,
  address: Cidr,
): { kind: "forbidden" | "mapped" | "private"; reason: string } | undefined {
  const forbidden = forbiddenReason(address);
  const mapped = ipv4OfMapped(address);
  if (mapped !== undefined)
    return {
      kind: "mapped",
      reason: forbidden ?? `IPv4-mapped, for ${mapped.text}: connections to it leave as IPv4, which only an A answer opens`,
    };
  const allowed = () => gate.allow.some((entry) => contains(entry.cidr, address));
  if (forbidden !== undefined) return allowed() ? undefined : { kind: "forbidden", reason: forbidden };
  if (gate.private === undefined || underDomain(name, gate.private.privateDomains)) return undefined;
  const reason = privateReason(address, gate.private.resolverNets, gate.private.localNets);
  return reason === undefined || allowed() ? undefined : { kind: "private", reason };
}

/**
 * One answer's addresses (text, as DNS gave them) split into those the gate admits and those it
 * refuses, each refused one with its reason.
 */
export function gateAddresses<T extends { readonly address: string }>(
  gate: AnswerGate,
  name: string,
  addresses: readonly T[],
): { admitted: T[]; refused: string[] } {
  const admitted: T[] = [];
  const refused: string[] = [];
  for (const a of addresses) {
    const parsed = parseAddress(a.address);
    const address = parsed === undefined ? undefined : makeCidr(parsed.family, parsed.words, parsed.family === 4 ? 32 : 128);
    const gated = address === undefined ? { kind: "forbidden", reason: "not an address" } : refusedAnswer(gate, name, address);
    if (gated === undefined) admitted.push(a);
    else
      refused.push(
        `${a.address} (${gated.reason}${gated.kind === "private" ? "; --refuse-private-answers, unless its domain is in --private-domains" : ""})`,
      );
  }
  return { admitted, refused };
}
