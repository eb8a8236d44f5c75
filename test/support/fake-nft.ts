// A stateful fake of the kernel's nftables for unit tests, like fake-iptables.ts: it takes the
// scripts domainwall sends (a full table replace, `add element`, `flush set`, `delete table`,
// `list set` with JSON) as one transaction each, keeps the tables, chains and sets they leave, and
// lets elements with a timeout expire on the test's clock. Tests then assert what the sets hold,
// not how a script is spelt (the goldens check the spelling).
import type { NftExecutor, NftResult } from "../../src/backends/nft/executor.ts";

/** One element: its address and, for a timeout set, when it expires (ms on the fake clock). */
export interface FakeElement {
  readonly address: string;
  readonly timeoutSeconds?: number;
  readonly expiresAt?: number;
}

interface FakeSet {
  readonly type: string;
  readonly timeout: boolean;
  readonly elements: Map<string, FakeElement>;
}

interface FakeTable {
  readonly chains: Set<string>;
  readonly sets: Map<string, FakeSet>;
}

/**
 * `198.51.100.9 timeout 90s expires 80s, 2001:db8::1, 203.0.113.0/24 . tcp . 443` → elements, keyed by
 * everything before `timeout` (an address, a network, a concatenation); `# comments` end a line.
 */
function parseElements(text: string, now: number): FakeElement[] {
  return text
    .split("\n")
    .map((line) => line.replace(/#.*$/, ""))
    .join(" ")
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part !== "")
    .map((part) => {
      const m = /^(.*?)(?:\s+timeout\s+(\d+)s)?(?:\s+expires\s+(\d+)s)?$/.exec(part)!;
      const timeout = m[2] === undefined ? undefined : Number(m[2]);
      const expires = m[3] === undefined ? timeout : Number(m[3]);
      return {
        address: m[1]!,
        ...(timeout !== undefined && { timeoutSeconds: timeout }),
        ...(expires !== undefined && { expiresAt: now + expires * 1000 }),
      };
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
  /** A full load: the table deleted and declared anew in one transaction (not a set update). */
  const isFullLoad = (script: string) => /^delete table /m.test(script) && /^table \w+ \w+ \{/m.test(script);
  const failNext: string[] = [];

  const live = (set: FakeSet) => {
    for (const [key, e] of set.elements) if (e.expiresAt !== undefined && e.expiresAt <= now()) set.elements.delete(key);
    return set;
  };

  /** Apply one script to a copy of the state; the copy replaces the state only when every statement worked (one transaction). */
  function apply(script: string): void {
    const next = new Map(
      [...tables].map(([n, t]) => [
        n,
        { chains: new Set(t.chains), sets: new Map([...t.sets].map(([s, v]) => [s, { ...v, elements: new Map(v.elements) }])) },
      ]),
    );
    const text = script.replace(/^#.*$/gm, "");
    let i = 0;
    const need = (name: string) => {
      const t = next.get(name);
      if (t === undefined) throw new Error(`Error: No such file or directory; table ${name}`);
      return t;
    };
    while (i < text.length) {
      const rest = text.slice(i);
      const blank = /^\s+/.exec(rest);
      if (blank) {
        i += blank[0].length;
        continue;
      }
      let m: RegExpExecArray | null;
      if ((m = /^table (\w+ \w+) \{/.exec(rest))) {
        const { body, end } = braced(text, i + m[0].length - 1);
        const t = next.get(m[1]!) ?? { chains: new Set<string>(), sets: new Map<string, FakeSet>() };
        for (const chain of body.matchAll(/^\s*chain (\S+) \{/gm)) t.chains.add(chain[1]!);
        for (const set of body.matchAll(/^\s*set (\S+) \{/gm)) {
          const { body: setBody } = braced(body, set.index! + set[0].length - 1);
          const type = /type (\S+)/.exec(setBody)?.[1] ?? "?";
          const elements = /elements = \{([^}]*)\}/.exec(setBody)?.[1];
          const known = t.sets.get(set[1]!);
          const fresh: FakeSet = known ?? { type, timeout: /flags [^\n]*timeout/.test(setBody), elements: new Map() };
          for (const e of elements === undefined ? [] : parseElements(elements, now())) fresh.elements.set(e.address, e);
          t.sets.set(set[1]!, fresh);
        }
        next.set(m[1]!, t);
        i += end - i;
      } else if ((m = /^table (\w+ \w+)\s*$/m.exec(rest)) && rest.startsWith(m[0])) {
        if (!next.has(m[1]!)) next.set(m[1]!, { chains: new Set(), sets: new Map() });
        i += m[0].length;
      } else if ((m = /^delete table (\w+ \w+)\s*$/m.exec(rest)) && rest.startsWith(m[0])) {
        need(m[1]!);
        next.delete(m[1]!);
        i += m[0].length;
      } else if ((m = /^flush set (\w+ \w+) (\S+)\s*$/m.exec(rest)) && rest.startsWith(m[0])) {
        const set = need(m[1]!).sets.get(m[2]!);
        if (set === undefined) throw new Error(`Error: No such file or directory; set ${m[2]}`);
        set.elements.clear();
        i += m[0].length;
      } else if ((m = /^add element (\w+ \w+) (\S+) \{/.exec(rest))) {
        const { body, end } = braced(text, i + m[0].length - 1);
        const set = need(m[1]!).sets.get(m[2]!);
        if (set === undefined) throw new Error(`Error: No such file or directory; set ${m[2]}`);
        for (const e of parseElements(body, now())) {
          const known = live(set).elements.get(e.address);
          // The kernel keeps a running countdown unless `expires` is given; the admitter always gives it.
          set.elements.set(e.address, known !== undefined && e.expiresAt === undefined ? known : e);
        }
        i = end;
      } else throw new Error(`Error: syntax error, unexpected: ${rest.split("\n")[0]}`);
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
    /** The live addresses of a set of `table`, sorted; undefined when the table or set does not exist. */
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
    chains: (): string[] => [...(tables.get(table)?.chains ?? [])].sort(),
    hasTable: (): boolean => tables.has(table),
    /** Create a set by hand (a table a previous run left). */
    seed(set: string, type: "ipv4_addr" | "ipv6_addr", elements: string) {
      apply(`table ${table} {\n\tset ${set} {\n\t\ttype ${type}\n\t\tflags timeout\n\t\telements = { ${elements} }\n\t}\n}\n`);
    },
  };
}
