// A stateful fake of the kernel's nftables for unit tests, like fake-iptables.ts: it takes the
// scripts domainwall sends (a full table replace, `add element`, `delete element`, `flush set`, `delete table`,
// `list set` with JSON) as one transaction each, keeps the tables, chains and sets they leave, and
// lets elements with a timeout expire on the test's clock. Tests then assert what the sets hold,
// not how a script is spelt (the goldens check the spelling). It refuses, like the kernel, an
// element of the wrong family or form, a timeout on a set without `flags timeout`, a set declared
// again with another type, more elements than a set's `size`, and a rule naming a set that does not
// exist. Timeouts are modelled in whole seconds only (`90s`), the one unit domainwall writes.
import type { NftExecutor, NftResult } from "../../src/backends/nft/executor.ts";
import { parseAddress, parseCidr } from "../../src/net/ip.ts";

/** One element: its key (an address, a network, a range, a concatenation) and, with a timeout, when it expires (ms on the fake clock). */
export interface FakeElement {
  readonly address: string;
  readonly timeoutSeconds?: number;
  readonly expiresAt?: number;
}

interface FakeSet {
  readonly type: string;
  readonly timeout: boolean;
  readonly interval: boolean;
  readonly size?: number;
  readonly elements: Map<string, FakeElement>;
}

interface FakeTable {
  /** Each chain's rule lines, as written. */
  readonly chains: Map<string, string[]>;
  readonly sets: Map<string, FakeSet>;
}

interface ParsedElement {
  readonly key: string;
  readonly timeoutSeconds?: number;
  readonly expiresSeconds?: number;
}

const PROTOCOLS = new Set(["tcp", "udp", "icmp", "ipv6-icmp", "sctp"]);

/** Whether `value` is a valid element of a set of `type` (`ipv4_addr`, `ipv6_addr . inet_proto . inet_service`...). */
function validKey(type: string, interval: boolean, key: string): boolean {
  const types = type.split(" . ");
  const parts = key.split(" . ");
  if (parts.length !== types.length) return false;
  return types.every((t, i) => {
    const part = parts[i]!.trim();
    if (t === "ipv4_addr" || t === "ipv6_addr") {
      const family = t === "ipv4_addr" ? 4 : 6;
      if (part.includes("/")) {
        const parsed = parseCidr(part);
        return interval && parsed.ok && parsed.cidr.family === family;
      }
      const ends = part.split("-");
      if (ends.length === 2 && !interval) return false;
      return ends.length <= 2 && ends.every((end) => parseAddress(end)?.family === family);
    }
    if (t === "inet_proto") return PROTOCOLS.has(part);
    if (t === "inet_service") return /^\d{1,5}(-\d{1,5})?$/.test(part) && part.split("-").every((p) => Number(p) <= 65535);
    return false;
  });
}

/** `198.51.100.9 timeout 90s expires 80s, 203.0.113.0/24 . tcp . 443` → elements; `# comments` end a line. */
function parseElements(text: string): ParsedElement[] {
  return text
    .split("\n")
    .map((line) => line.replace(/#.*$/, ""))
    .join(" ")
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part !== "")
    .map((part) => {
      const m = /^(.*?)(?:\s+timeout\s+(\S+))?(?:\s+expires\s+(\S+))?$/.exec(part)!;
      const seconds = (value: string | undefined) => {
        if (value === undefined) return undefined;
        const s = /^(\d+)s$/.exec(value);
        if (!s) throw new Error(`Error: the fake models timeouts in whole seconds only: ${JSON.stringify(value)}`);
        return Number(s[1]);
      };
      return { key: m[1]!, timeoutSeconds: seconds(m[2]), expiresSeconds: seconds(m[3]) };
    });
}

/** The body between the brace that opens at `from` and its match. */
function braced(text: string, from: number): { body: string; end: number } {
  let depth = 0;
  for (let i = from; i < text.length; i++) {
    if (text[i] === "{") depth++;
    else if (text[i] === "}" && --depth === 0) return { body: text.slice(from + 1, i), end: i + 1 };
  }
  throw new Error(`unbalanced braces in: ${text.slice(from, from + 80)}`);
}

export function fakeNft(now: () => number, table = "inet domainwall") {
  let tables = new Map<string, FakeTable>();
  const transactions: string[] = [];
  /** Each set's live elements right after each transaction (set name → sorted elements). */
  const after: Map<string, string[]>[] = [];
  const failNext: string[] = [];
  /** A full load: the table deleted and declared anew in one transaction (not a set update). */
  const isFullLoad = (script: string) => /^delete table /m.test(script) && /^table \w+ \w+ \{/m.test(script);

  const live = (set: FakeSet) => {
    for (const [key, e] of set.elements) if (e.expiresAt !== undefined && e.expiresAt <= now()) set.elements.delete(key);
    return set;
  };

  /**
   * Puts `e` into `set` as the kernel does: a new element lives its timeout (or what `expires` says);
   * an existing one given the same timeout and no `expires` keeps its countdown running.
   */
  function insert(name: string, set: FakeSet, e: ParsedElement): void {
    if (!validKey(set.type, set.interval, e.key))
      throw new Error(`Error: ${JSON.stringify(e.key)} is not an element of set ${name} (${set.type})`);
    if (e.timeoutSeconds !== undefined && !set.timeout) throw new Error(`Error: set ${name} has no timeout flag`);
    const known = live(set).elements.get(e.key);
    const left = e.expiresSeconds ?? e.timeoutSeconds;
    if (known !== undefined && e.expiresSeconds === undefined && known.timeoutSeconds === e.timeoutSeconds) return;
    set.elements.set(e.key, {
      address: e.key,
      ...(e.timeoutSeconds !== undefined && { timeoutSeconds: e.timeoutSeconds }),
      ...(left !== undefined && { expiresAt: now() + left * 1000 }),
    });
    if (set.size !== undefined && set.elements.size > set.size) throw new Error(`Error: set ${name} is full (size ${set.size})`);
  }

  /** Apply one script to a copy of the state; the copy replaces the state only when every statement worked (one transaction). */
  function apply(script: string): void {
    const next = new Map(
      [...tables].map(([n, t]) => [
        n,
        {
          chains: new Map([...t.chains].map(([c, rules]) => [c, [...rules]])),
          sets: new Map([...t.sets].map(([s, v]) => [s, { ...v, elements: new Map(v.elements) }])),
        },
      ]),
    );
    const text = script.replace(/^\s*#.*$/gm, "");
    let i = 0;
    const need = (name: string) => {
      const t = next.get(name);
      if (t === undefined) throw new Error(`Error: No such file or directory; table ${name}`);
      return t;
    };
    const setOf = (t: FakeTable, name: string) => {
      const set = t.sets.get(name);
      if (set === undefined) throw new Error(`Error: No such file or directory; set ${name}`);
      return set;
    };
    while (i < text.length) {
      const rest = text.slice(i);
      const blank = /^\s+/.exec(rest);
      if (blank) {
        i += blank[0].length;
        continue;
      }
      const line = rest.split("\n")[0]!.trimEnd();
      let m: RegExpExecArray | null;
      if ((m = /^table (\w+ \w+) \{/.exec(rest))) {
        const { body, end } = braced(text, i + m[0].length - 1);
        const t = next.get(m[1]!) ?? { chains: new Map<string, string[]>(), sets: new Map<string, FakeSet>() };
        for (const set of body.matchAll(/^\s*set (\S+) \{/gm)) {
          const { body: setBody } = braced(body, set.index! + set[0].length - 1);
          const type = /type ([^\n]+)/.exec(setBody)?.[1]?.trim() ?? "?";
          const flags = /flags ([^\n]+)/.exec(setBody)?.[1] ?? "";
          const size = /size (\d+)/.exec(setBody)?.[1];
          const known = t.sets.get(set[1]!);
          if (known !== undefined && known.type !== type)
            throw new Error(`Error: set ${set[1]} exists with type ${known.type}, not ${type}`);
          const declared: FakeSet = known ?? {
            type,
            timeout: flags.includes("timeout"),
            interval: flags.includes("interval"),
            ...(size !== undefined && { size: Number(size) }),
            elements: new Map(),
          };
          t.sets.set(set[1]!, declared);
          const elements = /elements = \{([^}]*)\}/.exec(setBody)?.[1];
          for (const e of elements === undefined ? [] : parseElements(elements)) insert(set[1]!, declared, e);
        }
        for (const chain of body.matchAll(/^\s*chain (\S+) \{/gm)) {
          const { body: chainBody } = braced(body, chain.index! + chain[0].length - 1);
          const rules = chainBody
            .split("\n")
            .map((l) => l.replace(/#.*$/, "").trim())
            .filter((l) => l !== "");
          for (const rule of rules)
            for (const ref of rule.matchAll(/@(\w+)/g))
              if (!t.sets.has(ref[1]!)) throw new Error(`Error: No such file or directory; set @${ref[1]} in: ${rule}`);
          t.chains.set(chain[1]!, rules);
        }
        next.set(m[1]!, t);
        i = end;
      } else if ((m = /^table (\w+ \w+)$/.exec(line))) {
        if (!next.has(m[1]!)) next.set(m[1]!, { chains: new Map(), sets: new Map() });
        i += line.length;
      } else if ((m = /^delete table (\w+ \w+)$/.exec(line))) {
        need(m[1]!);
        next.delete(m[1]!);
        i += line.length;
      } else if ((m = /^flush set (\w+ \w+) (\S+)$/.exec(line))) {
        setOf(need(m[1]!), m[2]!).elements.clear();
        i += line.length;
      } else if ((m = /^delete element (\w+ \w+) (\S+) \{/.exec(rest))) {
        // As the kernel: an element that is not there fails the whole transaction.
        const { body, end } = braced(text, i + m[0].length - 1);
        const set = live(setOf(need(m[1]!), m[2]!));
        for (const e of parseElements(body)) {
          if (!set.elements.delete(e.key))
            throw new Error(`Error: Could not process rule: No such file or directory; ${e.key} in set ${m[2]}`);
        }
        i = end;
      } else if ((m = /^add element (\w+ \w+) (\S+) \{/.exec(rest))) {
        const { body, end } = braced(text, i + m[0].length - 1);
        const set = setOf(need(m[1]!), m[2]!);
        for (const e of parseElements(body)) insert(m[2]!, set, e);
        i = end;
      } else throw new Error(`Error: syntax error, unexpected: ${line}`);
    }
    tables = next;
  }

  /** One script as one transaction: nft's result, the state changed only when it worked. */
  function take(script: string): NftResult {
    const failure = failNext.shift();
    if (failure !== undefined) return { code: 1, stdout: "", stderr: `${failure}\n` };
    try {
      apply(script);
      transactions.push(script);
      const sets = tables.get(table)?.sets ?? new Map<string, FakeSet>();
      after.push(new Map([...sets].map(([name, set]) => [name, [...live(set).elements.keys()].sort()])));
      return { code: 0, stdout: "", stderr: "" };
    } catch (error) {
      return { code: 1, stdout: "", stderr: `${error instanceof Error ? error.message : String(error)}\n` };
    }
  }

  const executor: NftExecutor = {
    name: "libnftables",
    run: async (script, options = {}): Promise<NftResult> => {
      const list = /^list set (\w+ \w+) (\S+)\s*$/.exec(script);
      if (list) {
        const set = tables.get(list[1]!)?.sets.get(list[2]!);
        if (set === undefined) return { code: 1, stdout: "", stderr: `Error: No such file or directory; set ${list[2]}\n` };
        const elem = [...live(set).elements.values()].map((e) =>
          e.timeoutSeconds === undefined
            ? e.address
            : { elem: { val: e.address, timeout: e.timeoutSeconds, expires: Math.floor(((e.expiresAt ?? now()) - now()) / 1000) } },
        );
        const json = { nftables: [{ metainfo: {} }, { set: { name: list[2], type: set.type, ...(elem.length > 0 && { elem }) } }] };
        return { code: 0, stdout: options.json ? JSON.stringify(json) : "", stderr: "" };
      }
      return take(script);
    },
  };

  return {
    executor,
    /** The same as `executor.run` for a script, synchronously (for a fake `nft -f -` process). */
    take,
    /** Scripts the fake took, one transaction each (listings are not counted). */
    transactions,
    /** What `sets` held right after transaction `i` (in the order of `sets`, each sorted). */
    heldAfter: (i: number, sets: readonly string[]): string[] | undefined => {
      const state = after[after.length - transactions.length + i];
      return state === undefined ? undefined : sets.flatMap((set) => state.get(set) ?? []);
    },
    /** How many transactions were full loads (the table deleted and declared anew). */
    replacements: () => transactions.filter(isFullLoad).length,
    /** The next transaction fails with `stderr` and changes nothing. */
    failNext: (stderr: string) => void failNext.push(stderr),
    /** The live elements of a set of `table`, sorted; undefined when the table or set does not exist. */
    held(set: string): string[] | undefined {
      const s = tables.get(table)?.sets.get(set);
      return s === undefined ? undefined : [...live(s).elements.keys()].sort();
    },
    /** An element's seconds left, or undefined when it is not (or no longer) in the set. */
    secondsLeft(set: string, address: string): number | undefined {
      const s = tables.get(table)?.sets.get(set);
      const e = s === undefined ? undefined : live(s).elements.get(address);
      return e?.expiresAt === undefined ? undefined : (e.expiresAt - now()) / 1000;
    },
    chains: (): string[] => [...(tables.get(table)?.chains.keys() ?? [])].sort(),
    /** A chain's rules as loaded (comments dropped), for what a verdict or a match is; undefined when it does not exist. */
    rules: (chain: string): readonly string[] | undefined => tables.get(table)?.chains.get(chain),
    hasTable: (): boolean => tables.has(table),
    /** Create a set by hand (a table a previous run left). */
    seed(set: string, type: "ipv4_addr" | "ipv6_addr", elements: string) {
      const result = take(
        `table ${table} {\n\tset ${set} {\n\t\ttype ${type}\n\t\tflags timeout\n\t\telements = { ${elements} }\n\t}\n}\n`,
      );
      if (result.code !== 0) throw new Error(result.stderr);
    },
  };
}
