/**
 * `watch --dns-proxy` at run time: the proxy's upstreams, the gate on what an answer may admit, the
 * admitter, the proxy itself, a self-check, and the counts metrics and `status` show. The watch
 * command (commands/watch.ts) drives the order: group switch, start, load, admit the names resolved
 * at start, check, ready.
 */
import { encode } from "dns-packet";
import type { NftExecutor } from "../backends/nft/executor.ts";
import type { Backend } from "../backends/backend.ts";
import type { NftResult } from "../backends/nft/executor.ts";
import { renderNft, type ProxyCarryOver } from "../backends/nft/render.ts";
import { runtimeError } from "../errors.ts";
import type { AllowEntry } from "../config/config.ts";
import { contains, makeCidr, parseAddress, type Cidr } from "../net/ip.ts";
import { privateReason, underDomain } from "../policy/forbidden.ts";
import { refusedFromDns } from "../policy/policy.ts";
import { EVERY_PORT_SETS, proxyEntryOf, proxyPortSets, proxySetsKey, type ProxySetNames } from "../policy/proxy-sets.ts";
import type { PortRange } from "../config/port-spec.ts";
import { createAdmitter, type AdmittedElement, type Admitter } from "./admit.ts";
import { AUDIT_ENTRY, type Admission, type ProxyLog } from "./handler.ts";
import { compileMatcher } from "./match.ts";
import { startDnsProxy, type DnsProxy, type InheritedSockets } from "./server.ts";
import { enlargeReceiveBuffers } from "./receive-buffer.ts";
import { rateLimiter, type ProxyStats } from "./stats.ts";
import type { Upstream } from "./upstream.ts";

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
 * `--refuse-private-answers` for the proxy: the resolvers' networks (`resolverNetworks`) and the
 * domains whose names may answer with private addresses anyway (`--private-domains`).
 */
export interface PrivateGuard {
  readonly resolverNets: readonly Cidr[];
  readonly privateDomains: readonly string[];
}

/**
 * One answer's addresses as the admitter takes them, without those DNS may never open and, with
 * `guard` (--refuse-private-answers), without private ones unless the queried name is under a
 * private domain; an `--allow` entry covering an address lets it through, as in the static policy.
 */
export function gateAdmission(
  admission: Admission,
  allow: readonly AllowEntry[],
  guard?: PrivateGuard,
): { admitted: Admission["addresses"]; refused: string[] } {
  const admitted: Admission["addresses"][number][] = [];
  const refused: string[] = [];
  const checkPrivate = guard !== undefined && !underDomain(admission.name, guard.privateDomains);
  for (const a of admission.addresses) {
    const parsed = parseAddress(a.address);
    const address = parsed === undefined ? undefined : makeCidr(parsed.family, parsed.words, parsed.family === 4 ? 32 : 128);
    const forbidden = address === undefined ? "not an address" : refusedFromDns(address, allow);
    const privately =
      forbidden === undefined && checkPrivate && address !== undefined && !allow.some((entry) => contains(entry.cidr, address))
        ? privateReason(address, guard.resolverNets)
        : undefined;
    const reason =
      forbidden ??
      (privately === undefined ? undefined : `${privately}; --refuse-private-answers, unless its domain is in --private-domains`);
    if (reason === undefined) admitted.push(a);
    else refused.push(`${a.address} (${reason})`);
  }
  return { admitted, refused };
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
   * A reloaded configuration's list: the next query is matched against it (names, wildcards) and
   * its answers gated by its `--allow` (and `--refuse-private-answers`); nothing admitted is taken
   * back (it expires on its own). Its entries may move between the port sets declared at start (a
   * name gains a port spec another entry has, or loses its ports); a list whose port sets differ
   * (a new port spec, one gone) throws and changes nothing: those sets are declared in the loaded
   * table and known to the admitter, so changing them needs a restart (`proxyPortSetsChanged`
   * refuses such a reload before this is called).
   */
  setList(list: {
    readonly names: readonly string[];
    readonly wildcards: readonly string[];
    readonly hostPorts: ReadonlyMap<string, readonly PortRange[]>;
    readonly allow: readonly AllowEntry[];
    readonly audit: boolean;
    readonly privateGuard?: PrivateGuard;
  }): void;
  stop(): void;
}

export interface ProxyRuntimeOptions {
  readonly names: readonly string[];
  readonly wildcards: readonly string[];
  /** The ports of the names and wildcards listed with ports (Config.hostPorts): their answers open only those. */
  readonly hostPorts: ReadonlyMap<string, readonly PortRange[]>;
  readonly allow: readonly AllowEntry[];
  /** `--refuse-private-answers`: private answers are not admitted either (see `gateAdmission`). */
  readonly privateGuard?: PrivateGuard;
  readonly port: number;
  readonly gid: number;
  readonly upstreams: readonly Upstream[];
  readonly minTtlMs: number;
  readonly maxTtlMs: number;
  readonly graceMs: number;
  readonly executor: NftExecutor;
  readonly log: ProxyLog;
  readonly now: () => number;
  /** `--audit`: unlisted names are forwarded and admitted, and recorded as would-be-refused. */
  readonly audit?: boolean;
  /** Tests replace the admitter; otherwise the real one over `executor`. */
  readonly admitter?: Admitter;
  /** The sockets a supervisor holds (proxy/supervisor.ts): answered on instead of new ones. */
  readonly inherited?: readonly InheritedSockets[];
  /** This process's PID and its supervisor's, for status. */
  readonly pids?: { readonly worker: number; readonly supervisor: number | undefined };
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
  let match = compile(options.names, options.wildcards);
  let list = { names: options.names, wildcards: options.wildcards };
  let allow = options.allow;
  let audit = options.audit ?? false;
  let privateGuard = options.privateGuard;
  const portSets = proxyPortSets([...options.names, ...options.wildcards], options.hostPorts);
  /** Which sets each entry admits into; a reload may move entries between the sets declared at start, never declare others. */
  let byEntry = portSets.byEntry;
  const setsOf = (entry: string): ProxySetNames => admissionSets(byEntry, entry);
  const admitter =
    options.admitter ??
    createAdmitter({
      executor: options.executor,
      now,
      minTtlMs: options.minTtlMs,
      maxTtlMs: options.maxTtlMs,
      graceMs: options.graceMs,
      portSets: portSets.sets,
    });
  const seeded = await admitter.seedFromKernel();
  if (seeded > 0)
    log.info({ message: `kept ${seeded} addresses the DNS proxy had admitted before this start (they carry over into the new table)` });
  const mayLog = rateLimiter(10, 10_000, now);
  let refusedAddresses = 0;
  const admit = async (admission: Admission) => {
    const { admitted, refused } = gateAdmission(admission, allow, privateGuard);
    if (refused.length > 0) {
      refusedAddresses += refused.length;
      const held = mayLog();
      if (held !== undefined)
        log.warn({
          message: `${admission.name}: not admitting ${refused.join(", ")} from DNS; list it in --allow to permit it${held ? ` (${held} similar lines held back)` : ""}`,
          name: admission.name,
          qtype: admission.qtype,
        });
    }
    if (admitted.length > 0)
      await admitter.admit({ name: admission.name, entry: admission.entry, addresses: admitted, sets: setsOf(admission.entry) });
  };
  const proxy: DnsProxy = await startDnsProxy({
    port: options.port,
    upstreams: options.upstreams,
    match: (name) => match(name),
    admit,
    log,
    now,
    audit: () => audit,
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
        const { admitted, refused } = gateAdmission(
          {
            name: host,
            qtype: "A/AAAA",
            entry: host,
            chain: [host],
            addresses: addresses.map((a) => ({ ...a, owner: host, record: a.family === 4 ? "A" : "AAAA" })),
          },
          allow,
          privateGuard,
        );
        for (const r of refused) log.warn({ message: `${host}: not admitting ${r} from DNS; list it in --allow to permit it`, name: host });
        if (admitted.length === 0) continue;
        await admitter.admit({ name: host, entry: host, addresses: admitted, sets: setsOf(host) });
        count += admitted.length;
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
    setList(list) {
      const entries = [...list.names, ...list.wildcards];
      const next = proxyPortSets(entries, list.hostPorts);
      if (proxySetsKey(next.sets) !== proxySetsKey(portSets.sets))
        throw new Error(
          "the ports of the DNS proxy's list cannot change while watch runs: its sets were declared at start (restart it to change them)",
        );
      match = compile(list.names, list.wildcards);
      byEntry = next.byEntry;
      allow = list.allow;
      audit = list.audit;
      privateGuard = list.privateGuard;
    },
    report() {
      const elements = observe();
      const totals = counter.totals();
      return {
        port: proxy.port,
        gid: options.gid,
        stats: proxy.stats(),
        elements: { v4: elements.filter((e) => e.family === 4).length, v6: elements.filter((e) => e.family === 6).length },
        admitted: elements,
        list,
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

/**
 * The backend `watch --dns-proxy` hands its loop: a full table load (a failed update retried, a
 * reloaded configuration whose chains differ) goes through the admitter's `replaceTable`, so the
 * addresses the proxy admitted are carried over and none admitted meanwhile is lost.
 */
export function carryingBackend(backend: Backend, runtime: Pick<ProxyRuntime, "replaceTable">, now: () => number): Backend {
  return {
    ...backend,
    async apply(policy) {
      const started = now();
      let rendered = started;
      const result = await runtime.replaceTable((carryOver) => {
        const text = renderNft(policy, carryOver);
        rendered = now();
        return text;
      });
      if (result.code !== 0) throw runtimeError(`nft -f failed: ${result.stderr.trim() || "no error output"}`);
      return { renderMs: rendered - started, loadMs: now() - rendered };
    },
  };
}
