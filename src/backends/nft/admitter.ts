/**
 * Admission: the DNS proxy puts each answer's addresses into the kernel's timeout sets before the
 * answer goes to the client. On `add element` of an existing element the kernel (6.18 here) sets a
 * timeout that differs from the element's, also a shorter one, but leaves an equal timeout's
 * countdown running unless `expires` is given: so every element is sent as `timeout T expires T`,
 * and the admitter keeps what it knows of each element's expiry and sends an element only when
 * that makes it live noticeably longer. Admissions that arrive while a transaction is in flight are
 * coalesced into the next one (one `add element` per set, one transaction).
 *
 * An admission names its sets: proxy_v4/proxy_v6 (every port) by default, or the pair of the port
 * spec of the entry that matched (`proxy_v4_tcp443`...). Everything above holds per (set, address):
 * one address admitted for two entries with different ports is an element of each set.
 */
import type { NftExecutor, NftResult } from "./executor.ts";
import type { ProxyCarryOver } from "../backend.ts";
import { NFT_FAMILY, NFT_TABLE } from "./render.ts";
import { parseTimeoutElements, renderTimeoutElements, type TimeoutElement } from "./timeout-elements.ts";
import { type Family, formatAddress, parseAddress } from "../../net/ip.ts";
import { EVERY_PORT_SETS, type ProxySetNames } from "../../policy/proxy-sets.ts";

export interface AdmittedAddress {
  /** Address text, validated again here before it reaches nft text. */
  readonly address: string;
  readonly family: 4 | 6;
  /** The answer's TTL, seconds. */
  readonly ttl: number;
}

export interface SetAdmission {
  /** The query name the answer is for. */
  readonly name: string;
  /** The list entry that matched it (`api.example.com`, `*.example.com`, `**.example.com`). */
  readonly entry: string;
  readonly addresses: readonly AdmittedAddress[];
  /** The sets the entry admits into (see ProxySetNames); absent: proxy_v4/proxy_v6, every port. */
  readonly sets?: ProxySetNames;
}

/** One element the admitter knows to be in the kernel. */
export interface AdmittedElement {
  readonly address: string;
  readonly family: Family;
  /** The kernel set that holds it. */
  readonly set: string;
  /** When the kernel drops it, on the admitter's clock (ms); the kernel's is never earlier. */
  readonly expiresAt: number;
  /** Its timeout in the kernel, whole seconds. */
  readonly timeoutSeconds: number;
  /** The latest names and list entries it was admitted for, most recent last (at most MAX_NAMES each). */
  readonly names: readonly string[];
  readonly entries: readonly string[];
}

export interface AdmitterSnapshot {
  /** Live elements, IPv4 first, by address text. */
  readonly elements: readonly AdmittedElement[];
}

export interface Admitter {
  /**
   * Resolves once every address is in the kernel set with an expiry at least its TTL (clamped)
   * from now; rejects when an address is not valid (no script runs) or the kernel refused the
   * transaction (the proxy then answers SERVFAIL).
   */
  admit(admission: SetAdmission): Promise<void>;
  /** What is admitted now, for status, explain and metrics. */
  snapshot(): AdmitterSnapshot;
  /**
   * Learns the elements already in the kernel sets (a restarted proxy), so they are not sent again
   * and are carried over; a missing table or set reads as empty. Resolves to how many were learnt.
   */
  seedFromKernel(): Promise<number>;
  /** `elements = { ... }` lines for the set definitions of a full table replace ("" when empty). */
  renderCarryOver(): ProxyCarryOver;
  /**
   * Runs a full replace of the table, `script(carryOver)`, between admission transactions: the one
   * in flight finishes first and none starts until it is done, so no admitted element is lost
   * between rendering the carry-over and the kernel loading it. Resolves to nft's result.
   */
  replaceTable(script: (carryOver: ProxyCarryOver) => string): Promise<NftResult>;
}

export interface AdmitterOptions {
  readonly executor: NftExecutor;
  /** The clock, ms. */
  readonly now: () => number;
  readonly minTtlMs: number;
  readonly maxTtlMs: number;
  /** Added to every clamped TTL: the client may use an answer a little past its TTL. */
  readonly graceMs: number;
  readonly sets?: ProxySetNames;
  /** The port specs' set pairs (Policy.proxy.portSets): admissions may name them; seeded and carried over too. */
  readonly portSets?: readonly ProxySetNames[];
}

/** A set name as the renderer makes them (it is printed into nft text). */
const SET_NAME = /^[a-z][a-z0-9_-]{0,127}$/;

/** Names and entries kept per element: a wildcard entry can map any number of names to one address. */
export const MAX_NAMES = 8;

interface Known {
  readonly address: string;
  readonly family: Family;
  readonly set: string;
  readonly expiresAt: number;
  readonly timeoutSeconds: number;
  readonly names: string[];
  readonly entries: string[];
}

interface Wanted {
  readonly address: string;
  readonly family: Family;
  readonly set: string;
  readonly expiresAt: number;
  readonly timeoutSeconds: number;
  readonly name: string;
  readonly entry: string;
}

/** One transaction: what it adds and the admissions waiting for it. */
interface Batch {
  readonly elements: Map<string, Wanted>;
  readonly done: Promise<void>;
  readonly settle: (error?: Error) => void;
}

function newBatch(): Batch {
  let settle!: (error?: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    settle = (error) => (error ? reject(error) : resolve());
  });
  // A batch nobody waits on any more must not become an unhandled rejection.
  done.catch(() => undefined);
  return { elements: new Map(), done, settle };
}

const remember = (list: string[], value: string) => {
  const at = list.indexOf(value);
  if (at >= 0) list.splice(at, 1);
  list.push(value);
  if (list.length > MAX_NAMES) list.shift();
};

/** The address in canonical text if `a` is a valid address of its stated family and `ttl` a TTL, else why not. */
function validate(a: AdmittedAddress): { ok: true; address: string } | { ok: false; reason: string } {
  const parsed = typeof a.address === "string" ? parseAddress(a.address) : undefined;
  if (parsed === undefined) return { ok: false, reason: `${JSON.stringify(a.address)} is not an IP address` };
  if (parsed.family !== a.family) return { ok: false, reason: `${JSON.stringify(a.address)} is not an IPv${a.family} address` };
  if (!(Number.isFinite(a.ttl) && a.ttl >= 0)) return { ok: false, reason: `TTL ${a.ttl} of ${a.address} is not a number of seconds` };
  return { ok: true, address: formatAddress(parsed.family, parsed.words) };
}

export function createAdmitter(options: AdmitterOptions): Admitter {
  const { executor, now, minTtlMs, maxTtlMs, graceMs } = options;
  const table = `${NFT_FAMILY} ${NFT_TABLE}`;
  const sets = options.sets ?? EVERY_PORT_SETS;
  const pairs = [sets, ...(options.portSets ?? [])];
  const names = new Set(pairs.flatMap((pair) => [pair.v4, pair.v6]));
  for (const name of names) if (!SET_NAME.test(name)) throw new Error(`not a set name: ${JSON.stringify(name)}`);
  const setOf = (pair: ProxySetNames, family: Family) => (family === 4 ? pair.v4 : pair.v6);
  const key = (set: string, address: string) => `${set} ${address}`;

  const known = new Map<string, Known>();
  let inFlight: Batch | undefined;
  let next: Batch | undefined;
  let flushScheduled = false;
  /** Replaces waiting or running: no admission transaction starts meanwhile. */
  let replaces = 0;

  /** Timeout for a TTL: clamped, plus grace, whole seconds (rounded up). */
  const timeoutSecondsOf = (ttlSeconds: number) => Math.ceil((Math.min(Math.max(ttlSeconds * 1000, minTtlMs), maxTtlMs) + graceMs) / 1000);
  /**
   * How much shorter than wanted a known expiry may be and still count: 10 % of the timeout, at
   * least 1 s, but never more than the grace, so the clamped TTL itself is always covered.
   */
  const slackMs = (timeoutSeconds: number) => Math.min(Math.max(timeoutSeconds * 100, 1000), graceMs);

  /** Drops elements past their expiry: a sweep of the whole map, at most once a second (an expired entry met before then counts for nothing). */
  let sweptAt = Number.NEGATIVE_INFINITY;
  const forgetExpired = (at: number, force = false) => {
    if (!force && at - sweptAt < 1000) return;
    sweptAt = at;
    for (const [k, entry] of known) if (entry.expiresAt <= at) known.delete(k);
  };

  const render = (batch: Batch): string => {
    const lines: string[] = [];
    const bySet = new Map<string, string[]>();
    for (const w of batch.elements.values()) {
      const items = bySet.get(w.set) ?? [];
      items.push(`${w.address} timeout ${w.timeoutSeconds}s expires ${w.timeoutSeconds}s`);
      bySet.set(w.set, items);
    }
    for (const set of [...bySet.keys()].sort()) lines.push(`add element ${table} ${set} { ${bySet.get(set)!.sort().join(", ")} }\n`);
    return lines.join("");
  };

  const commit = (batch: Batch) => {
    for (const [k, w] of batch.elements) {
      const entry = known.get(k);
      const names = entry?.names ?? [];
      const entries = entry?.entries ?? [];
      remember(names, w.name);
      remember(entries, w.entry);
      known.set(k, {
        address: w.address,
        family: w.family,
        set: w.set,
        expiresAt: w.expiresAt,
        timeoutSeconds: w.timeoutSeconds,
        names,
        entries,
      });
    }
  };

  const flush = async () => {
    flushScheduled = false;
    if (inFlight !== undefined || replaces > 0 || next === undefined) return;
    const batch = next;
    inFlight = batch;
    next = undefined;
    let failure: Error | undefined;
    try {
      const result = await executor.run(render(batch));
      if (result.code !== 0)
        failure = new Error(`nft refused admitting ${batch.elements.size} address(es): ${result.stderr.trim() || `exit ${result.code}`}`);
    } catch (error) {
      failure = new Error(
        `nft failed admitting ${batch.elements.size} address(es): ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    if (failure === undefined) commit(batch);
    inFlight = undefined;
    batch.settle(failure);
    if (next !== undefined) void flush();
  };

  const schedule = () => {
    if (flushScheduled || inFlight !== undefined || replaces > 0) return;
    flushScheduled = true;
    // A microtask: admissions made in the same turn share the transaction.
    queueMicrotask(() => void flush());
  };

  const admit = (admission: SetAdmission): Promise<void> => {
    const pair = admission.sets ?? sets;
    if (!names.has(pair.v4) || !names.has(pair.v6))
      return Promise.reject(new Error(`not admitting ${admission.name}: no sets ${pair.v4}/${pair.v6} in this table`));
    const checked: { address: string; family: Family; ttl: number }[] = [];
    for (const a of admission.addresses) {
      const valid = validate(a);
      if (!valid.ok) return Promise.reject(new Error(`not admitting ${admission.name}: ${valid.reason}`));
      checked.push({ address: valid.address, family: a.family, ttl: a.ttl });
    }
    const at = now();
    forgetExpired(at);
    const waits = new Set<Promise<void>>();
    for (const { address, family, ttl } of checked) {
      const set = setOf(pair, family);
      const k = key(set, address);
      const timeoutSeconds = timeoutSecondsOf(ttl);
      const expiresAt = at + timeoutSeconds * 1000;
      const enough = expiresAt - slackMs(timeoutSeconds);
      const entry = known.get(k);
      if (entry !== undefined && entry.expiresAt >= enough) {
        remember(entry.names, admission.name);
        remember(entry.entries, admission.entry);
        continue;
      }
      const flying = inFlight?.elements.get(k);
      if (inFlight !== undefined && flying !== undefined && flying.expiresAt >= enough) {
        waits.add(inFlight.done);
        continue;
      }
      next ??= newBatch();
      const queued = next.elements.get(k);
      if (queued === undefined || queued.expiresAt < expiresAt)
        next.elements.set(k, { address, family, set, expiresAt, timeoutSeconds, name: admission.name, entry: admission.entry });
      waits.add(next.done);
    }
    if (waits.size === 0) return Promise.resolve();
    schedule();
    return Promise.all(waits).then(() => undefined);
  };

  const snapshot = (): AdmitterSnapshot => {
    forgetExpired(now(), true);
    const elements = [...known.values()]
      .map((e) => ({ ...e, names: [...e.names], entries: [...e.entries] }))
      .sort(
        (a, b) =>
          a.family - b.family ||
          (a.address < b.address ? -1 : a.address > b.address ? 1 : 0) ||
          (a.set < b.set ? -1 : a.set > b.set ? 1 : 0),
      );
    return { elements };
  };

  const seedFromKernel = async (): Promise<number> => {
    let learnt = 0;
    for (const [set, family] of pairs.flatMap(
      (pair) =>
        [
          [pair.v4, 4],
          [pair.v6, 6],
        ] as const,
    )) {
      const result = await executor.run(`list set ${table} ${set}`, { json: true });
      if (result.code !== 0) {
        if (result.stderr.includes("No such file or directory")) continue;
        throw new Error(`cannot read ${table} ${set}: ${result.stderr.trim()}`);
      }
      const parsed = parseTimeoutElements(result.stdout);
      if (!parsed.ok) throw new Error(`cannot read ${table} ${set}: ${parsed.reason}`);
      const at = now();
      for (const e of parsed.elements) {
        if (e.family !== family) throw new Error(`cannot read ${table} ${set}: it holds IPv${e.family} addresses`);
        const k = key(set, e.address);
        const expiresAt = at + e.expiresInMs;
        if ((known.get(k)?.expiresAt ?? -Infinity) >= expiresAt || e.expiresInMs <= 0) continue;
        known.set(k, {
          address: e.address,
          family: e.family,
          set,
          expiresAt,
          timeoutSeconds: e.timeoutSeconds,
          names: known.get(k)?.names ?? [],
          entries: known.get(k)?.entries ?? [],
        });
        learnt++;
      }
    }
    return learnt;
  };

  const renderCarryOver = (): ProxyCarryOver => {
    const at = now();
    const { elements } = snapshot();
    const of = (set: string): TimeoutElement[] =>
      elements
        .filter((e) => e.set === set)
        .map((e) => ({ address: e.address, family: e.family, timeoutSeconds: e.timeoutSeconds, expiresInMs: e.expiresAt - at }));
    const ports = new Map<string, string>();
    for (const pair of options.portSets ?? []) {
      for (const set of [pair.v4, pair.v6]) {
        const line = renderTimeoutElements(of(set));
        if (line !== "") ports.set(set, line);
      }
    }
    return { v4: renderTimeoutElements(of(sets.v4)), v6: renderTimeoutElements(of(sets.v6)), ports };
  };

  let replaceQueue: Promise<unknown> = Promise.resolve();
  const replaceTable = (script: (carryOver: ProxyCarryOver) => string): Promise<NftResult> => {
    replaces++;
    const run = replaceQueue.then(async () => {
      while (inFlight !== undefined) await inFlight.done.catch(() => undefined);
      return executor.run(script(renderCarryOver()));
    });
    const done = run.finally(() => {
      replaces--;
      if (next !== undefined) schedule();
    });
    replaceQueue = done.catch(() => undefined);
    return done;
  };

  return { admit, snapshot, seedFromKernel, renderCarryOver, replaceTable };
}
