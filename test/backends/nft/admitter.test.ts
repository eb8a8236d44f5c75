import { describe, expect, test } from "bun:test";
import type { NftExecutor, NftResult } from "../../../src/backends/nft/executor.ts";
import { type SetAdmission, createAdmitter, MAX_NAMES } from "../../../src/backends/nft/admitter.ts";
import { fakeNft } from "../../support/fake-nft.ts";

/** An executor that records each script and holds it until the test answers it. */
function heldExecutor() {
  const runs: { script: string; json: boolean; answer: (result: Partial<NftResult>) => void; fail: (error: Error) => void }[] = [];
  const executor: NftExecutor = {
    name: "libnftables",
    run: (script, options = {}) =>
      new Promise<NftResult>((resolve, reject) => {
        runs.push({ script, json: options.json === true, answer: (r) => resolve({ code: 0, stdout: "", stderr: "", ...r }), fail: reject });
      }),
  };
  return { executor, runs, scripts: () => runs.map((r) => r.script) };
}

/** The kernel as a stateful fake holding the proxy's sets (every port, and the port pairs named), on `time`'s clock. */
function kernel(time = clock(), portSets: readonly string[] = []) {
  const nft = fakeNft(time.now);
  for (const set of ["proxy_v4", ...portSets.filter((s) => s.startsWith("proxy_v4_"))]) nft.seed(set, "ipv4_addr", "");
  for (const set of ["proxy_v6", ...portSets.filter((s) => s.startsWith("proxy_v6_"))]) nft.seed(set, "ipv6_addr", "");
  nft.transactions.length = 0;
  return { ...nft, time };
}

/** An executor that answers every script at once (code 0). */
function okExecutor() {
  const scripts: string[] = [];
  const executor: NftExecutor = { name: "libnftables", run: async (script) => (scripts.push(script), { code: 0, stdout: "", stderr: "" }) };
  return { executor, scripts };
}

const clock = (start = 1_000_000) => {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
};

const settings = { minTtlMs: 5_000, maxTtlMs: 3_600_000, graceMs: 30_000 };
const v4 = (address: string, ttl = 60) => ({ address, family: 4 as const, ttl });
const v6 = (address: string, ttl = 60) => ({ address, family: 6 as const, ttl });
const answer = (name: string, ...addresses: SetAdmission["addresses"]): SetAdmission => ({ name, entry: name, addresses });
const tick = () => new Promise((r) => setTimeout(r, 0));
const states = new WeakMap<Promise<unknown>, () => string>();
/** Follows `promise` from now on (so a rejection is handled): see `state`. */
function watched<T extends Promise<unknown>>(promise: T): T {
  let s = "pending";
  promise.then(
    () => (s = "resolved"),
    (e: Error) => (s = `rejected: ${e.message}`),
  );
  states.set(promise, () => s);
  return promise;
}
/** Whether a watched promise has settled once pending callbacks ran: "resolved", "rejected: message" or "pending". */
async function state(promise: Promise<unknown>): Promise<string> {
  await tick();
  return states.get(promise)!();
}

describe("createAdmitter", () => {
  test("one answer: one transaction, each address in its family's set for TTL + grace", async () => {
    const k = kernel();
    const admitter = createAdmitter({ executor: k.executor, now: k.time.now, ...settings });
    await admitter.admit(answer("cdn.example.com", v4("198.51.100.9", 60), v6("2001:db8::9", 60), v4("198.51.100.10", 120)));
    expect(k.transactions).toHaveLength(1);
    expect(k.held("proxy_v4")).toEqual(["198.51.100.10", "198.51.100.9"]);
    expect(k.held("proxy_v6")).toEqual(["2001:db8::9"]);
    expect([k.secondsLeft("proxy_v4", "198.51.100.10"), k.secondsLeft("proxy_v4", "198.51.100.9")]).toEqual([150, 90]);
    k.time.advance(90_000);
    expect(k.held("proxy_v4")).toEqual(["198.51.100.10"]);
  });

  test.each([
    { name: "below the minimum", ttl: 0, timeout: 35 },
    { name: "inside", ttl: 300, timeout: 330 },
    { name: "above the maximum", ttl: 86_400, timeout: 3630 },
    { name: "a fraction of a second rounds up", ttl: 10.2, timeout: 41 },
  ])("TTL clamped: $name", async ({ ttl, timeout }) => {
    const k = kernel();
    await createAdmitter({ executor: k.executor, now: k.time.now, ...settings }).admit(answer("a.example.com", v4("198.51.100.9", ttl)));
    expect(k.secondsLeft("proxy_v4", "198.51.100.9")).toBe(timeout);
  });

  test("IPv6 addresses are sent in canonical form to the v6 set", async () => {
    const k = kernel();
    const admitter = createAdmitter({ executor: k.executor, now: k.time.now, ...settings });
    await admitter.admit(answer("a.example.com", v6("2001:DB8:0:0:0:0:0:0A")));
    expect(k.held("proxy_v6")).toEqual(["2001:db8::a"]);
    expect(admitter.snapshot().elements.map((e) => e.address)).toEqual(["2001:db8::a"]);
  });

  test.each([
    {
      name: "not an address",
      address: v4("198.51.100.9 } ; flush ruleset ; {"),
      reason: 'not admitting bad.example.com: "198.51.100.9 } ; flush ruleset ; {" is not an IP address',
    },
    { name: "a CIDR", address: v4("198.51.100.0/24"), reason: "is not an IP address" },
    { name: "the wrong family", address: v4("2001:db8::1"), reason: '"2001:db8::1" is not an IPv4 address' },
    { name: "a bad TTL", address: v4("198.51.100.9", Number.NaN), reason: "TTL NaN of 198.51.100.9 is not a number of seconds" },
    { name: "a negative TTL", address: v6("2001:db8::1", -1), reason: "TTL -1 of 2001:db8::1 is not a number of seconds" },
  ])("refused before any script: $name, and the whole answer with it", async ({ address, reason }) => {
    const k = kernel();
    const admitter = createAdmitter({ executor: k.executor, now: k.time.now, ...settings });
    await expect(admitter.admit(answer("bad.example.com", v4("198.51.100.1"), address))).rejects.toThrow(reason);
    await tick();
    expect(k.transactions).toEqual([]);
    expect([k.held("proxy_v4"), k.held("proxy_v6")]).toEqual([[], []]);
    expect(admitter.snapshot().elements).toEqual([]);
  });

  test("an answer already covered resolves without a script; names are recorded", async () => {
    const { executor, scripts } = okExecutor();
    const time = clock();
    const admitter = createAdmitter({ executor, now: time.now, ...settings });
    await admitter.admit(answer("a.example.com", v4("198.51.100.9", 60)));
    time.advance(5_000); // 5 s later the same answer (TTL counted down or not) is within 10 % of 90 s
    await admitter.admit({ name: "b.example.com", entry: "*.example.com", addresses: [v4("198.51.100.9", 60)] });
    expect(scripts).toHaveLength(1);
    expect(admitter.snapshot().elements).toEqual([
      {
        address: "198.51.100.9",
        family: 4,
        set: "proxy_v4",
        expiresAt: 1_090_000,
        timeoutSeconds: 90,
        names: ["a.example.com", "b.example.com"],
        entries: ["a.example.com", "*.example.com"],
      },
    ]);
  });

  test("a later answer extends the element once it would live more than 10 % (or 1 s) longer", async () => {
    const k = kernel();
    const time = k.time;
    const admitter = createAdmitter({ executor: k.executor, now: time.now, ...settings });
    await admitter.admit(answer("a.example.com", v4("198.51.100.9", 60)));
    time.advance(10_000); // wanted expiry 10 s later than known: more than 9 s
    expect(k.secondsLeft("proxy_v4", "198.51.100.9")).toBe(80);
    await admitter.admit(answer("a.example.com", v4("198.51.100.9", 60)));
    expect(k.transactions).toHaveLength(2);
    expect(k.secondsLeft("proxy_v4", "198.51.100.9")).toBe(90);
    expect(admitter.snapshot().elements[0]!.expiresAt).toBe(1_100_000);
  });

  test("a shorter answer never shortens an element (the kernel would replace its timeout)", async () => {
    const k = kernel();
    const admitter = createAdmitter({ executor: k.executor, now: k.time.now, ...settings });
    await admitter.admit(answer("a.example.com", v4("198.51.100.9", 3_000)));
    await admitter.admit(answer("a.example.com", v4("198.51.100.9", 10)));
    expect(k.transactions).toHaveLength(1);
    expect(k.secondsLeft("proxy_v4", "198.51.100.9")).toBe(3030);
    expect(admitter.snapshot().elements[0]!.timeoutSeconds).toBe(3030);
  });

  test("the slack never exceeds the grace: with no grace every later expiry is sent", async () => {
    const { executor, scripts } = okExecutor();
    const time = clock();
    const admitter = createAdmitter({ executor, now: time.now, ...settings, graceMs: 0 });
    await admitter.admit(answer("a.example.com", v4("198.51.100.9", 60)));
    time.advance(1);
    await admitter.admit(answer("a.example.com", v4("198.51.100.9", 60)));
    expect(scripts).toHaveLength(2);
  });

  test("admissions arriving while a transaction is in flight share the next one; each waits for its own", async () => {
    const { executor, runs, scripts } = heldExecutor();
    const admitter = createAdmitter({ executor, now: clock().now, ...settings });
    const first = watched(admitter.admit(answer("a.example.com", v4("198.51.100.1"))));
    await tick();
    expect(scripts()).toEqual(["add element inet domainwall proxy_v4 { 198.51.100.1 timeout 90s expires 90s }\n"]);
    const second = watched(admitter.admit(answer("b.example.com", v4("198.51.100.2"), v6("2001:db8::2"))));
    const third = watched(admitter.admit(answer("c.example.com", v4("198.51.100.3"))));
    const again = watched(admitter.admit(answer("a.example.com", v4("198.51.100.1")))); // already in flight: waits for it
    await tick();
    expect(scripts()).toHaveLength(1);
    expect([await state(first), await state(second), await state(again)]).toEqual(["pending", "pending", "pending"]);
    runs[0]!.answer({});
    expect([await state(first), await state(again), await state(second)]).toEqual(["resolved", "resolved", "pending"]);
    expect(scripts()[1]).toBe(
      "add element inet domainwall proxy_v4 { 198.51.100.2 timeout 90s expires 90s, 198.51.100.3 timeout 90s expires 90s }\n" +
        "add element inet domainwall proxy_v6 { 2001:db8::2 timeout 90s expires 90s }\n",
    );
    runs[1]!.answer({});
    expect([await state(second), await state(third)]).toEqual(["resolved", "resolved"]);
    expect(scripts()).toHaveLength(2);
  });

  test("admissions made in the same turn share one transaction", async () => {
    const { executor, scripts } = okExecutor();
    const admitter = createAdmitter({ executor, now: clock().now, ...settings });
    await Promise.all([
      admitter.admit(answer("a.example.com", v4("198.51.100.1"))),
      admitter.admit(answer("b.example.com", v4("198.51.100.2"))),
    ]);
    expect(scripts).toEqual([
      "add element inet domainwall proxy_v4 { 198.51.100.1 timeout 90s expires 90s, 198.51.100.2 timeout 90s expires 90s }\n",
    ]);
  });

  test("a refused transaction rejects all its waiters with nft's error and admits none of its elements", async () => {
    const { executor, runs, scripts } = heldExecutor();
    const admitter = createAdmitter({ executor, now: clock().now, ...settings });
    await Promise.all([admitter.admit(answer("ok.example.com", v4("198.51.100.1"))), tick().then(() => runs[0]!.answer({}))]);
    const blocked = watched(admitter.admit(answer("a.example.com", v4("198.51.100.2"))));
    await tick();
    const waiters = [
      watched(admitter.admit(answer("b.example.com", v4("198.51.100.3")))),
      watched(admitter.admit(answer("c.example.com", v6("2001:db8::3")))),
    ];
    runs[1]!.answer({ code: 1, stderr: "Error: Could not process rule: No such file or directory\n" });
    for (const p of [blocked])
      expect(await state(p)).toBe(
        "rejected: nft refused admitting 1 address(es): Error: Could not process rule: No such file or directory",
      );
    runs[2]!.answer({ code: 1, stderr: "Error: out of memory\n" });
    for (const p of waiters) expect(await state(p)).toBe("rejected: nft refused admitting 2 address(es): Error: out of memory");
    expect(admitter.snapshot().elements.map((e) => e.address)).toEqual(["198.51.100.1"]);
    // Not admitted, so the next answer sends them again.
    const retry = watched(admitter.admit(answer("a.example.com", v4("198.51.100.2"))));
    await tick();
    expect(scripts()[3]).toBe("add element inet domainwall proxy_v4 { 198.51.100.2 timeout 90s expires 90s }\n");
    runs[3]!.answer({});
    expect(await state(retry)).toBe("resolved");
  });

  test("an executor that throws rejects the waiters too, and later admissions still run", async () => {
    const { executor, runs } = heldExecutor();
    const admitter = createAdmitter({ executor, now: clock().now, ...settings });
    const failed = watched(admitter.admit(answer("a.example.com", v4("198.51.100.1"))));
    await tick();
    runs[0]!.fail(new Error("libnftables: the executor is closed"));
    expect(await state(failed)).toBe("rejected: nft failed admitting 1 address(es): libnftables: the executor is closed");
    const next = watched(admitter.admit(answer("a.example.com", v4("198.51.100.1"))));
    await tick();
    runs[1]!.answer({});
    expect(await state(next)).toBe("resolved");
  });

  test("expired elements are forgotten (the map stays bounded) and are sent again", async () => {
    const { executor, scripts } = okExecutor();
    const time = clock();
    const admitter = createAdmitter({ executor, now: time.now, ...settings });
    await admitter.admit(answer("a.example.com", v4("198.51.100.1", 60), v4("198.51.100.2", 600)));
    time.advance(90_000);
    expect(admitter.snapshot().elements.map((e) => e.address)).toEqual(["198.51.100.2"]);
    await admitter.admit(answer("a.example.com", v4("198.51.100.1", 60)));
    expect(scripts).toHaveLength(2);
  });

  test(`at most ${MAX_NAMES} names per element, the latest kept`, async () => {
    const { executor } = okExecutor();
    const admitter = createAdmitter({ executor, now: clock().now, ...settings });
    for (let i = 0; i < 20; i++)
      await admitter.admit({ name: `n${i}.example.com`, entry: "**.example.com", addresses: [v4("198.51.100.1")] });
    const [element] = admitter.snapshot().elements;
    expect(element!.names).toEqual(Array.from({ length: MAX_NAMES }, (_, i) => `n${i + 20 - MAX_NAMES}.example.com`));
    expect(element!.entries).toEqual(["**.example.com"]);
  });

  test("an answer without addresses resolves at once", async () => {
    const { executor, scripts } = okExecutor();
    await createAdmitter({ executor, now: clock().now, ...settings }).admit(answer("a.example.com"));
    expect(scripts).toEqual([]);
  });
});

describe("seedFromKernel and renderCarryOver", () => {
  const listing = (set: string, type: string, elem?: unknown[]) =>
    JSON.stringify({
      nftables: [
        { metainfo: { version: "1.0.6" } },
        { set: { family: "inet", name: set, table: "domainwall", type, flags: ["timeout"], ...(elem ? { elem } : {}) } },
      ],
    });

  test("learns the kernel's elements: not sent again while covered, carried over with what they have left", async () => {
    const { executor, runs, scripts } = heldExecutor();
    const time = clock();
    const admitter = createAdmitter({ executor, now: time.now, ...settings });
    const seeded = admitter.seedFromKernel();
    await tick();
    expect(runs[0]).toMatchObject({ script: "list set inet domainwall proxy_v4", json: true });
    runs[0]!.answer({
      stdout: listing("proxy_v4", "ipv4_addr", [{ elem: { val: "198.51.100.9", timeout: 90, expires: 88 } }, "198.51.100.12"]),
    });
    await tick();
    expect(runs[1]).toMatchObject({ script: "list set inet domainwall proxy_v6", json: true });
    runs[1]!.answer({ stdout: listing("proxy_v6", "ipv6_addr", [{ elem: { val: "2001:db8::9", timeout: 3630, expires: 10 } }]) });
    expect(await seeded).toBe(2);
    await admitter.admit(answer("a.example.com", v4("198.51.100.9", 60)));
    expect(scripts()).toHaveLength(2);
    time.advance(8_000);
    expect(admitter.renderCarryOver()).toEqual({
      v4: "elements = { 198.51.100.9 timeout 90s expires 80000ms }",
      v6: "elements = { 2001:db8::9 timeout 3630s expires 2000ms }",
      ports: new Map(),
    });
  });

  test("a missing table reads as empty; other errors and bad listings reject", async () => {
    const missing = createAdmitter({
      executor: { name: "nft", run: async () => ({ code: 1, stdout: "", stderr: "Error: No such file or directory\n" }) },
      now: clock().now,
      ...settings,
    });
    expect(await missing.seedFromKernel()).toBe(0);
    const bad = (stdout: string) =>
      createAdmitter({
        executor: { name: "nft", run: async () => ({ code: 0, stdout, stderr: "" }) },
        now: clock().now,
        ...settings,
      }).seedFromKernel();
    await expect(bad("not json")).rejects.toThrow("cannot read inet domainwall proxy_v4: nft -j output is not JSON");
    await expect(
      bad(listing("proxy_v4", "ipv4_addr", [{ elem: { val: "198.51.100.9 } ; flush ruleset", timeout: 9, expires: 9 } }])),
    ).rejects.toThrow('set proxy_v4 holds "198.51.100.9 } ; flush ruleset", not an IPv4 address');
    await expect(bad(listing("proxy_v4", "ipv6_addr", [{ elem: { val: "2001:db8::1", timeout: 9, expires: 9 } }]))).rejects.toThrow(
      "it holds IPv6 addresses",
    );
    await expect(
      bad(
        JSON.stringify({
          nftables: [{ set: { name: "proxy_v4", type: "ipv4_addr", elem: [{ elem: { val: "198.51.100.9", timeout: "9" } }] } }],
        }),
      ),
    ).rejects.toThrow("unexpected nft -j set listing");
  });

  test("replaceTable waits for the admission in flight, carries it over, and holds later admissions until the replace is loaded", async () => {
    const { executor, runs, scripts } = heldExecutor();
    const admitter = createAdmitter({ executor, now: clock().now, ...settings });
    const flying = watched(admitter.admit(answer("a.example.com", v4("198.51.100.1"))));
    await tick();
    const replaced = watched(
      admitter.replaceTable(
        (carry) =>
          `table inet domainwall\ndelete table inet domainwall\ntable inet domainwall { set proxy_v4 { type ipv4_addr; flags timeout; ${carry.v4} } }\n`,
      ),
    );
    const later = watched(admitter.admit(answer("b.example.com", v4("198.51.100.2"))));
    await tick();
    expect(scripts()).toHaveLength(1);
    runs[0]!.answer({});
    await tick();
    expect(await state(flying)).toBe("resolved");
    expect(scripts()[1]).toBe(
      "table inet domainwall\ndelete table inet domainwall\ntable inet domainwall { set proxy_v4 { type ipv4_addr; flags timeout; elements = { 198.51.100.1 timeout 90s expires 90000ms } } }\n",
    );
    expect(scripts()).toHaveLength(2);
    runs[1]!.answer({});
    expect(await state(replaced)).toBe("resolved");
    await tick();
    expect(scripts()[2]).toBe("add element inet domainwall proxy_v4 { 198.51.100.2 timeout 90s expires 90s }\n");
    runs[2]!.answer({});
    expect(await state(later)).toBe("resolved");
  });

  test("carry-over is empty without elements", () => {
    expect(createAdmitter({ executor: okExecutor().executor, now: clock().now, ...settings }).renderCarryOver()).toEqual({
      v4: "",
      v6: "",
      ports: new Map(),
    });
  });
});

describe("several sets: the port specs' pairs beside proxy_v4/proxy_v6", () => {
  const tcp443 = { v4: "proxy_v4_tcp443", v6: "proxy_v6_tcp443" };
  const udp123 = { v4: "proxy_v4_udp123", v6: "proxy_v6_udp123" };
  const listing = (set: string, type: string, elem: unknown[]) =>
    JSON.stringify({
      nftables: [
        { metainfo: { version: "1.0.6" } },
        { set: { family: "inet", name: set, table: "domainwall", type, flags: ["timeout"], elem } },
      ],
    });

  test("admissions go to the set of their entry's ports, in one transaction", async () => {
    const k = kernel(clock(), [tcp443.v4, tcp443.v6, udp123.v4, udp123.v6]);
    const admitter = createAdmitter({ executor: k.executor, now: k.time.now, ...settings, portSets: [tcp443, udp123] });
    await Promise.all([
      admitter.admit({
        name: "api.example.com",
        entry: "api.example.com",
        addresses: [v4("198.51.100.9"), v6("2001:db8::9")],
        sets: tcp443,
      }),
      admitter.admit({ name: "ntp.example.com", entry: "ntp.example.com", addresses: [v4("198.51.100.9")], sets: udp123 }),
      admitter.admit(answer("plain.example.com", v4("198.51.100.9"))),
    ]);
    expect(k.transactions).toHaveLength(1);
    expect(["proxy_v4", "proxy_v4_tcp443", "proxy_v4_udp123", "proxy_v6", "proxy_v6_tcp443", "proxy_v6_udp123"].map(k.held)).toEqual([
      ["198.51.100.9"],
      ["198.51.100.9"],
      ["198.51.100.9"],
      [],
      ["2001:db8::9"],
      [],
    ]);
    expect(admitter.snapshot().elements.map((e) => `${e.set} ${e.address}`)).toEqual([
      "proxy_v4 198.51.100.9",
      "proxy_v4_tcp443 198.51.100.9",
      "proxy_v4_udp123 198.51.100.9",
      "proxy_v6_tcp443 2001:db8::9",
    ]);
  });

  test("only-extend and coalescing hold per (set, address): an address covered in one set is still sent to another", async () => {
    const { executor, scripts } = okExecutor();
    const time = clock();
    const admitter = createAdmitter({ executor, now: time.now, ...settings, portSets: [tcp443] });
    await admitter.admit({ name: "api.example.com", entry: "api.example.com", addresses: [v4("198.51.100.9")], sets: tcp443 });
    time.advance(1_000);
    await admitter.admit({ name: "api.example.com", entry: "api.example.com", addresses: [v4("198.51.100.9")], sets: tcp443 });
    expect(scripts).toHaveLength(1);
    await admitter.admit(answer("plain.example.com", v4("198.51.100.9")));
    expect(scripts).toHaveLength(2);
    expect(scripts[1]).toBe("add element inet domainwall proxy_v4 { 198.51.100.9 timeout 90s expires 90s }\n");
  });

  test("an admission naming sets the table does not have is refused without a script", async () => {
    const { executor, scripts } = okExecutor();
    const admitter = createAdmitter({ executor, now: clock().now, ...settings, portSets: [tcp443] });
    await expect(admitter.admit({ name: "a.example", entry: "a.example", addresses: [v4("198.51.100.9")], sets: udp123 })).rejects.toThrow(
      "no sets proxy_v4_udp123/proxy_v6_udp123 in this table",
    );
    expect(scripts).toEqual([]);
    expect(() => createAdmitter({ executor, now: clock().now, ...settings, portSets: [{ v4: "x } ; flush ruleset", v6: "y" }] })).toThrow(
      "not a set name",
    );
  });

  test("seeding reads every set, and the carry-over covers each port set by name", async () => {
    const time = clock();
    const lists: Record<string, string> = {
      proxy_v4: listing("proxy_v4", "ipv4_addr", [{ elem: { val: "198.51.100.1", timeout: 90, expires: 80 } }]),
      proxy_v4_tcp443: listing("proxy_v4_tcp443", "ipv4_addr", [{ elem: { val: "198.51.100.2", timeout: 90, expires: 70 } }]),
      proxy_v6_tcp443: listing("proxy_v6_tcp443", "ipv6_addr", [{ elem: { val: "2001:db8::2", timeout: 90, expires: 60 } }]),
    };
    const asked: string[] = [];
    const executor: NftExecutor = {
      name: "nft",
      run: async (script) => {
        asked.push(script);
        const set = script.split(" ").at(-1)!;
        return lists[set]
          ? { code: 0, stdout: lists[set], stderr: "" }
          : { code: 1, stdout: "", stderr: "Error: No such file or directory\n" };
      },
    };
    const admitter = createAdmitter({ executor, now: time.now, ...settings, portSets: [tcp443, udp123] });
    expect(await admitter.seedFromKernel()).toBe(3);
    expect(asked).toEqual(
      ["proxy_v4", "proxy_v6", "proxy_v4_tcp443", "proxy_v6_tcp443", "proxy_v4_udp123", "proxy_v6_udp123"].map(
        (set) => `list set inet domainwall ${set}`,
      ),
    );
    expect(admitter.renderCarryOver()).toEqual({
      v4: "elements = { 198.51.100.1 timeout 90s expires 80000ms }",
      v6: "",
      ports: new Map([
        ["proxy_v4_tcp443", "elements = { 198.51.100.2 timeout 90s expires 70000ms }"],
        ["proxy_v6_tcp443", "elements = { 2001:db8::2 timeout 90s expires 60000ms }"],
      ]),
    });
  });
});
