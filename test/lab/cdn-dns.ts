// A DNS server for the lab that answers like a CDN: each A query for a configured name gets 2 random
// addresses out of 100 in 203.0.113.0/24 (AAAA: out of 100 in 2001:db8:ff::/64), TTL 30 s. Other
// types get NODATA with an SOA, unknown names NXDOMAIN, as a real resolver answers. CNAMEs and HTTPS
// records with hints come from the config. Every query is appended to a log file (`NAME TYPE` per
// line), so a test can prove a name never reached it.
// Usage: bun test/lab/cdn-dns.ts --listen ADDRESS --port N --config FILE.json --log FILE
import { appendFileSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { Answer, DecodedPacket, Packet } from "dns-packet";
import { svcbRdata, svcbRecord } from "../support/dns.ts";
import { startFakeDns, type FakeDns } from "../support/fake-dns.ts";

export interface CdnConfig {
  /** Names answered with 2 random addresses of the pools. */
  readonly names: readonly string[];
  /** Alias → target (the target may itself be an alias or a name of `names`). */
  readonly cnames?: Readonly<Record<string, string>>;
  /** Name → HTTPS record hints (ServiceMode, priority 1, TargetName "."). */
  readonly https?: Readonly<Record<string, { readonly v4?: readonly string[]; readonly v6?: readonly string[] }>>;
  /**
   * Queried name → records added to its answers though they are not on its CNAME chain (a hostile
   * or broken server's extra `other.unlisted.x A ...`), in the answer section after the chain's.
   */
  readonly strays?: Readonly<Record<string, readonly { readonly name: string; readonly type: "A" | "AAAA"; readonly address: string }[]>>;
  /** Domains every name under which is answered as the names are (`w.example`: `x.w.example`, `a.b.w.example`). */
  readonly wildcards?: readonly string[];
  /** Name → the TTL of its A and AAAA records (default TTL). */
  readonly ttls?: Readonly<Record<string, number>>;
}

export const TTL = 30;
export const POOL_V4 = Array.from({ length: 100 }, (_, i) => `203.0.113.${i + 1}`);
export const POOL_V6 = Array.from({ length: 100 }, (_, i) => `2001:db8:ff::${(i + 1).toString(16)}`);
const SOA: Answer = {
  type: "SOA",
  name: "example",
  ttl: TTL,
  data: { mname: "ns.example", rname: "hostmaster.example", serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: TTL },
};

function twoOf(pool: readonly string[], random: () => number): string[] {
  const first = Math.floor(random() * pool.length);
  const second = (first + 1 + Math.floor(random() * (pool.length - 1))) % pool.length;
  return [pool[first] as string, pool[second] as string];
}

/** The answer to one query (dns-packet's form), with `random` picking the addresses. */
export function cdnAnswer(config: CdnConfig, query: DecodedPacket, random: () => number = Math.random): Packet {
  const question = query.questions?.[0];
  if (question === undefined) return { flags: 0x8181 };
  const type = question.type as string;
  const listed = new Set(config.names.map((n) => n.toLowerCase()));
  const names = { has: (n: string) => listed.has(n) || (config.wildcards ?? []).some((w) => n.endsWith(`.${w.toLowerCase()}`)) };
  const answers: Answer[] = [];
  let name = question.name.toLowerCase();
  for (let hops = 0; config.cnames?.[name] !== undefined && hops < 8; hops++) {
    const target = config.cnames[name] as string;
    answers.push({ type: "CNAME", name, ttl: TTL, data: target });
    name = target.toLowerCase();
  }
  const https = config.https?.[name];
  if (!names.has(name) && https === undefined)
    return answers.length > 0 ? { flags: 0x8183, answers, authorities: [SOA] } : { flags: 0x8183, authorities: [SOA] };
  const ttl = config.ttls?.[name] ?? TTL;
  if (type === "A" && names.has(name)) for (const data of twoOf(POOL_V4, random)) answers.push({ type: "A", name, ttl, data });
  else if (type === "AAAA" && names.has(name)) for (const data of twoOf(POOL_V6, random)) answers.push({ type: "AAAA", name, ttl, data });
  else if (type === "UNKNOWN_65" && https !== undefined) answers.push(svcbRecord("HTTPS", name, TTL, svcbRdata(1, ".", https)));
  else return { flags: 0x8180, answers, authorities: [SOA] };
  for (const stray of config.strays?.[question.name.toLowerCase()] ?? [])
    if (stray.type === type) answers.push({ type: stray.type, name: stray.name, ttl: TTL, data: stray.address });
  return { flags: 0x8180, answers };
}

export function startCdnDns(options: {
  readonly hostname: string;
  readonly port: number;
  readonly config: CdnConfig;
  readonly log: string;
}): Promise<FakeDns> {
  return startFakeDns(
    (query) => {
      const question = query.questions?.[0];
      appendFileSync(options.log, `${question?.name ?? "."} ${String(question?.type ?? "?").replace("UNKNOWN_65", "HTTPS")}\n`);
      return cdnAnswer(options.config, query);
    },
    options.hostname,
    options.port,
  );
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      listen: { type: "string", default: "0.0.0.0" },
      port: { type: "string", default: "53" },
      config: { type: "string" },
      log: { type: "string" },
    },
  });
  if (values.config === undefined || values.log === undefined)
    throw new Error("usage: cdn-dns.ts --listen ADDRESS --port N --config FILE.json --log FILE");
  const config = JSON.parse(readFileSync(values.config, "utf8")) as CdnConfig;
  const server = await startCdnDns({ hostname: values.listen, port: Number(values.port), config, log: values.log });
  console.log(`listening on ${server.hostname} port ${server.port}`);
}
