/**
 * `watch --dns-proxy` at run time: the proxy (proxy/, which speaks DNS) wired to the policy's answer
 * gate and the nft admitter (backends/nft/admitter.ts), a self-check, and the counts metrics and
 * `status` show. The proxy mode of the watch command (commands/watch/proxy-mode.ts) drives the
 * order: group switch, start, load, admit the names resolved at start, check, ready.
 */
import { encode } from "dns-packet";
import type { NftExecutor } from "../backends/nft/executor.ts";
import type { NftResult } from "../backends/nft/executor.ts";
import type { ProxyCarryOver } from "../backends/backend.ts";
import type { Cidr } from "../net/ip.ts";
import { gateAddresses } from "../policy/answer-gate.ts";
import type { Policy, ProxyAdmission, ProxyRules } from "../policy/policy.ts";
import { EVERY_PORT_SETS, proxyEntryOf, proxySetsKey, type ProxySetNames } from "../policy/proxy-sets.ts";
import { createAdmitter, type AdmittedElement, type Admitter } from "../backends/nft/admitter.ts";
import { AUDIT_ENTRY, type Admission, type ProxyLog } from "../proxy/handler.ts";
import { compileMatcher } from "../proxy/match.ts";
import { startDnsProxy, type DnsProxy, type InheritedSockets } from "../proxy/server.ts";
import { enlargeReceiveBuffers } from "../proxy/receive-buffer.ts";
import { rateLimiter, type ProxyStats } from "../proxy/stats.ts";
import type { Upstream } from "../proxy/upstream.ts";

const LOOPBACK_V4 = /^127\./;
const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * Where the proxy forwards: the resolvers, never one on loopback (a local stub such as
 * systemd-resolved would send its upstream query back through the redirect: resolversFor already
 * adds the stub's own upstream servers). Empty when there is none.
 */
export function upstreamsOf(resolvers: readonly Cidr[]): Upstream[] {
  return resolvers
    .filter((r) => r.prefix === (r.family === 4 ? 32 : 128) && !(r.family === 4 ? LOOPBACK_V4.test(r.text) : r.text === "::1"))
    .map((r) => ({ address: r.text, port: 53 }));
}

/**
 * The sets an admission goes into: those of the entry that matched (the renderer declared the same
 * pairs from the same list, Policy.proxy.portSets); an unlisted name admitted in audit mode
 * (`AUDIT_ENTRY`) opens every port, as `suggest` proposes it without a port.
 */
export function admissionSets(byEntry: ReadonlyMap<string, ProxySetNames>, entry: string): ProxySetNames {
  if (entry === AUDIT_ENTRY) return EVERY_PORT_SETS;
  const sets = byEntry.get(proxyEntryOf(entry));
  if (sets === undefined) throw new Error(`no sets for the entry ${JSON.stringify(entry)}`);
  return sets;
}

/** Elements seen in the admitter's snapshot over time: new ones count as admitted, vanished ones as expired. */
function elementCounter() {
  let seen = new Set<string>();
  let admitted = 0;
  let expired = 0;
  return {
    observe(keys: readonly string[]) {
      const now = new Set(keys);
      for (const k of now) if (!seen.has(k)) admitted++;
      for (const k of seen) if (!now.has(k)) expired++;
      seen = now;
    },
    totals: () => ({ admitted, expired }),
  };
}

/** What metrics and `status` show of the proxy. */
export interface ProxyReport {
  readonly port: number;
  readonly gid: number;
  readonly stats: ProxyStats;
  /** Live elements of each family in all the proxy's sets (proxy_v4, the port sets...), as the admitter knows them. */
  readonly elements: { readonly v4: number; readonly v6: number };
  /** Those elements, with the names and entries that admitted them (for `explain`). */
  readonly admitted: readonly AdmittedElement[];
  /** The list the proxy answers for now (a reload changes it). */
  readonly list: { readonly names: readonly string[]; readonly wildcards: readonly string[] };
  /** The entries listed with ports (by the matcher's entry) and the sets they admit into; the others admit into proxy_v4/proxy_v6. */
  readonly portedEntries: ReadonlyMap<string, ProxySetNames>;
  /** Elements that appeared (admitted) and vanished (expired) since start, counted every few seconds. */
  readonly admittedTotal: number;
  readonly expiredTotal: number;
  /** Addresses answers gave that were not admitted (loopback, metadata...). */
  readonly refusedAddresses: number;
  /** The process answering, and the supervisor holding its sockets (undefined: not supervised). */
  readonly workerPid?: number;
  readonly supervisorPid?: number;
}

export interface ProxyRuntime {
  readonly port: number;
  /** The admitted elements for the next full table load (see renderNft). */
  carryOver(): ProxyCarryOver;
  /** A full table replace between admission transactions, with what was admitted carried over (see Admitter.replaceTable). */
  replaceTable(script: (carryOver: ProxyCarryOver) => string): Promise<NftResult>;
  /** Admit the addresses domainwall resolved itself at start (gated like the proxy's answers). */
  admitResolved(
    names: readonly {
      readonly host: string;
      readonly addresses: readonly { readonly address: string; readonly family: 4 | 6; readonly ttl: number }[];
    }[],
  ): Promise<number>;
  /** Ask the proxy one question over UDP on 127.0.0.1; throws when it does not answer. */
  selfCheck(): Promise<void>;
  report(): ProxyReport;
  /**
   * A reloaded policy's proxy rules: the next query is matched against its list and its answers
   * gated by its gate; nothing admitted is taken back (it expires on its own). Its entries may move
   * between the port sets declared at start; rules whose declared sets differ throw and change
   * nothing (those sets are in the loaded table and known to the admitter: a restart changes them).
   */
  replace(policy: Policy): void;
  stop(): void;
}

export interface ProxyRuntimeOptions {
  /** The policy built for the proxy (`proxy` and `proxyAdmission` set): list, port sets, where each entry admits, answer gate. */
  readonly policy: Policy;
  readonly upstreams: readonly Upstream[];
  readonly minTtlMs: number;
  readonly maxTtlMs: number;
  readonly graceMs: number;
  readonly executor: NftExecutor;
  readonly log: ProxyLog;
  readonly now: () => number;
  /** Tests replace the admitter; otherwise the real one over `executor`. */
  readonly admitter?: Admitter;
  /** The sockets a supervisor holds (proxy/supervisor.ts): answered on instead of new ones. */
  readonly inherited?: readonly InheritedSockets[];
  /** This process's PID and its supervisor's, for status. */
  readonly pids?: { readonly worker: number; readonly supervisor: number | undefined };
}

/** A policy's proxy parts; a policy built without the proxy is a programming error. */
function proxyPartsOf(policy: Policy): { proxy: ProxyRules; admission: ProxyAdmission } {
  if (policy.proxy === undefined || policy.proxyAdmission === undefined) throw new Error("a policy without the DNS proxy");
  return { proxy: policy.proxy, admission: policy.proxyAdmission };
}

/**
 * Learn what the kernel holds from a previous run (so a restart keeps it), then start the proxy.
 * Nothing is loaded here: the caller loads the table (with `carryOver()`) once this resolves.
 */
export async function startProxyRuntime(options: ProxyRuntimeOptions): Promise<ProxyRuntime> {
  const { log, now } = options;
  const compile = (names: readonly string[], wildcards: readonly string[]) => {
    const compiled = compileMatcher([...names, ...wildcards]);
    if (!compiled.ok) throw new Error(`the DNS proxy's list: ${compiled.problems.join("; ")}`);
    return compiled.match;
  };
  const declared = proxyPartsOf(options.policy).proxy;
  let rules = proxyPartsOf(options.policy).admission;
  let match = compile(rules.list.names, rules.list.wildcards);
  const setsOf = (entry: string): ProxySetNames => admissionSets(rules.admitInto, entry);
  const admitter =
    options.admitter ??
    createAdmitter({
      executor: options.executor,
      now,
      minTtlMs: options.minTtlMs,
      maxTtlMs: options.maxTtlMs,
      graceMs: options.graceMs,
      portSets: declared.portSets ?? [],
    });
  const seeded = await admitter.seedFromKernel();
  if (seeded > 0)
    log.info({ message: `kept ${seeded} addresses the DNS proxy had admitted before this start (they carry over into the new table)` });
  const mayLog = rateLimiter(10, 10_000, now);
  let refusedAddresses = 0;
  /**
   * Gate one answer, log what was refused, admit the rest; resolves to how many were admitted. The
   * apps' answers are logged rate-limited; the names resolved at start (`atStart`, as many as the
   * list) each get their line, as apply gives them.
   */
  const admit = async (admission: Admission, atStart = false): Promise<number> => {
    const { admitted, refused } = gateAddresses(rules.gate, admission.name, admission.addresses);
    if (refused.length > 0) {
      refusedAddresses += refused.length;
      const held = atStart ? 0 : mayLog();
      if (held !== undefined)
        log.warn({
          message: `${admission.name}: not admitting ${refused.join(", ")} from DNS; list it in --allow to permit it${held ? ` (${held} similar lines held back)` : ""}`,
          name: admission.name,
          qtype: admission.qtype,
        });
    }
    if (admitted.length > 0)
      await admitter.admit({ name: admission.name, entry: admission.entry, addresses: admitted, sets: setsOf(admission.entry) });
    return admitted.length;
  };
  const proxy: DnsProxy = await startDnsProxy({
    port: declared.port,
    upstreams: options.upstreams,
    match: (name) => match(name),
    admit: async (admission) => void (await admit(admission)),
    log,
    now,
    audit: () => rules.audit,
    // An admission lasts the clamped TTL plus the grace: a client is told at most --max-ttl (ttl.ts).
    maxAnswerTtlSeconds: Math.floor(options.maxTtlMs / 1000),
    ...(options.inherited !== undefined && { inherited: options.inherited }),
  });
  // 4 MiB, some 5,000 queries: enough for a stall of a quarter second under a flood of 20,000 q/s.
  const enlarged = (() => {
    if (options.inherited !== undefined) return 1;
    try {
      return enlargeReceiveBuffers(proxy.port, RECEIVE_BUFFER_BYTES);
    } catch {
      return 0;
    }
  })();
  if (enlarged === 0)
    log.warn({ message: "the DNS proxy's UDP receive buffers keep the kernel's default size: a flood may drop queries sooner" });
  const counter = elementCounter();
  const observe = () => {
    const { elements } = admitter.snapshot();
    counter.observe(elements.map((e) => `${e.set} ${e.address}`));
    return elements;
  };
  observe();
  return {
    port: proxy.port,
    carryOver: () => admitter.renderCarryOver(),
    replaceTable: (script) => admitter.replaceTable(script),
    async admitResolved(names) {
      let count = 0;
      for (const { host, addresses } of names) {
        const record = (family: 4 | 6) => (family === 4 ? "A" : "AAAA");
        count += await admit(
          {
            name: host,
            qtype: "A/AAAA",
            entry: host,
            chain: [host],
            addresses: addresses.map((a) => ({ ...a, owner: host, record: record(a.family) })),
          },
          true,
        );
      }
      return count;
    },
    async selfCheck() {
      const id = Math.floor(Math.random() * 65536);
      const query = encode({
        type: "query",
        id,
        flags: 0x0100,
        questions: [{ type: "A", class: "IN", name: "domainwall-self-check.invalid" }],
      });
      let answered: (ok: boolean) => void = () => {};
      const reply = new Promise<boolean>((resolve) => (answered = resolve));
      const socket = await Bun.udpSocket({
        hostname: "127.0.0.1",
        connect: { hostname: "127.0.0.1", port: proxy.port },
        socket: { data: (_s, data) => answered(data.length >= 2 && data.readUInt16BE(0) === id), error: () => answered(false) },
      });
      const timer = setTimeout(() => answered(false), 2000);
      try {
        socket.send(query);
        if (!(await reply)) throw new Error(`the DNS proxy on 127.0.0.1 port ${proxy.port} did not answer a query`);
      } finally {
        clearTimeout(timer);
        socket.close();
      }
    },
    replace(policy) {
      const next = proxyPartsOf(policy);
      if (proxySetsKey(next.proxy.portSets ?? []) !== proxySetsKey(declared.portSets ?? []))
        throw new Error(
          "the ports of the DNS proxy's list cannot change while watch runs: its sets were declared at start (restart it to change them)",
        );
      match = compile(next.admission.list.names, next.admission.list.wildcards);
      rules = next.admission;
    },
    report() {
      const elements = observe();
      const totals = counter.totals();
      return {
        port: proxy.port,
        gid: declared.gid,
        stats: proxy.stats(),
        elements: { v4: elements.filter((e) => e.family === 4).length, v6: elements.filter((e) => e.family === 6).length },
        admitted: elements,
        list: rules.list,
        portedEntries: new Map([...rules.admitInto].filter(([, sets]) => sets !== EVERY_PORT_SETS)),
        admittedTotal: totals.admitted,
        expiredTotal: totals.expired,
        refusedAddresses,
        ...(options.pids !== undefined && { workerPid: options.pids.worker }),
        ...(options.pids?.supervisor !== undefined && { supervisorPid: options.pids.supervisor }),
      };
    },
    stop: () => proxy.stop(),
  };
}
