import { describe, expect, test } from "bun:test";
import { guardedLookup } from "../../src/dns/lookup.ts";
import type { Lookup } from "../../src/dns/resolve.ts";
import { fakeClock } from "../support/fake-clock.ts";

const noHostsFile = async () => undefined;

const dnsError = (code: string) => Object.assign(new Error(`getaddrinfo ${code}`), { code });

/** A scripted lookup: each call takes the next outcome (an error code, or answers after `delayMs` of `sleep`). */
function scripted(name: string, calls: string[], outcomes: (string | { delayMs: number })[], sleep = async (_ms: number) => {}): Lookup {
  return async (host) => {
    calls.push(`${name} ${host}`);
    const next = outcomes.shift() ?? { delayMs: 0 };
    if (typeof next === "string") throw dnsError(next);
    await sleep(next.delayMs);
    return [{ address: "203.0.113.10", ttl: 30 }];
  };
}

describe("guardedLookup (the c-ares spin on a refusing resolver)", () => {
  test.each([
    {
      name: "while DNS works only c-ares is asked",
      primary: [{ delayMs: 0 }, "DNS_ENOTFOUND", { delayMs: 0 }],
      probe: [],
      calls: ["c-ares a", "c-ares b", "c-ares c"],
      results: ["ok", "DNS_ENOTFOUND", "ok"],
    },
    {
      name: "after a transient failure the probe fails fast and c-ares is not asked",
      primary: ["DNS_ETIMEOUT"],
      probe: ["DNS_EAI_AGAIN", "DNS_EAI_AGAIN"],
      calls: ["c-ares a", "libc b", "libc c"],
      results: ["DNS_ETIMEOUT", "DNS_EAI_AGAIN", "DNS_EAI_AGAIN"],
    },
    {
      name: "once the probe answers, c-ares is asked and an answer ends the trouble",
      primary: ["DNS_ECONNREFUSED", { delayMs: 0 }, { delayMs: 0 }],
      probe: [{ delayMs: 0 }],
      calls: ["c-ares a", "libc b", "c-ares b", "c-ares c"],
      results: ["DNS_ECONNREFUSED", "ok", "ok"],
    },
    {
      name: "a name the probe does not find still goes to c-ares",
      primary: ["DNS_ESERVFAIL", "DNS_ENOTFOUND"],
      probe: ["DNS_ENOTFOUND"],
      calls: ["c-ares a", "libc b", "c-ares b"],
      results: ["DNS_ESERVFAIL", "DNS_ENOTFOUND"],
    },
  ])("$name", async ({ primary, probe, calls, results }) => {
    const seen: string[] = [];
    const lookup = guardedLookup({
      primary: scripted("c-ares", seen, [...primary]),
      probe: scripted("libc", seen, [...probe]),
      slowMs: 1000,
      readHosts: noHostsFile,
    });
    const outcomes: string[] = [];
    for (const host of ["a", "b", "c"].slice(0, results.length)) {
      outcomes.push(
        await lookup(host, 4).then(
          () => "ok",
          (error: { code: string }) => error.code,
        ),
      );
    }
    expect(seen).toEqual([...calls]);
    expect(outcomes).toEqual([...results]);
  });

  test("a lookup slower than slowMs sends the next ones through the probe", async () => {
    const clock = fakeClock();
    const seen: string[] = [];
    const primary = scripted("c-ares", seen, [{ delayMs: 50 }], clock.sleep);
    const lookup = guardedLookup({
      primary,
      probe: scripted("libc", seen, ["DNS_EAI_AGAIN"]),
      slowMs: 10,
      readHosts: noHostsFile,
      setTimer: clock.setTimer,
      now: clock.now,
    });
    const slow = lookup("a", 4);
    await clock.advance(20);
    expect(await lookup("b", 4).catch((error: { code: string }) => error.code)).toBe("DNS_EAI_AGAIN");
    expect(await clock.run(slow)).toHaveLength(1);
    expect(seen).toEqual(["c-ares a", "libc b"]);
  });

  test("the slow guard runs on the injected timer: it trips at slowMs, not before", async () => {
    const clock = fakeClock();
    const seen: string[] = [];
    const primary = scripted("c-ares", seen, [{ delayMs: 50 }, { delayMs: 50 }, { delayMs: 0 }], clock.sleep);
    const lookup = guardedLookup({
      primary,
      probe: scripted("libc", seen, ["DNS_EAI_AGAIN"]),
      slowMs: 10,
      readHosts: noHostsFile,
      setTimer: clock.setTimer,
      now: clock.now,
    });
    const first = lookup("a", 4);
    await clock.advance(9);
    // Not yet slow: the next lookup still goes straight to c-ares.
    const second = lookup("b", 4);
    await clock.advance(1);
    // Now the first has taken 10 ms: the guard trips.
    expect(await lookup("c", 4).catch((error: { code: string }) => error.code)).toBe("DNS_EAI_AGAIN");
    expect(seen).toEqual(["c-ares a", "c-ares b", "libc c"]);
    await clock.run(Promise.all([first, second]));
    expect(clock.now()).toBe(59);
  });

  test("a lookup that answers within slowMs cancels its guard timer and leaves the guard off", async () => {
    const clock = fakeClock();
    const seen: string[] = [];
    const primary = scripted("c-ares", seen, [{ delayMs: 5 }, { delayMs: 0 }], clock.sleep);
    const lookup = guardedLookup({
      primary,
      probe: scripted("libc", seen, ["DNS_EAI_AGAIN"]),
      slowMs: 10,
      readHosts: noHostsFile,
      setTimer: clock.setTimer,
      now: clock.now,
    });
    expect(await clock.run(lookup("a", 4))).toHaveLength(1);
    expect(clock.pending()).toBe(0);
    await clock.advance(1000);
    expect(await clock.run(lookup("b", 4))).toHaveLength(1);
    expect(seen).toEqual(["c-ares a", "c-ares b"]);
  });
});

test("lookups in flight together share one guard timer", async () => {
  const clock = fakeClock();
  let timers = 0;
  const seen: string[] = [];
  const lookup = guardedLookup({
    primary: scripted("c-ares", seen, [], clock.sleep),
    probe: scripted("libc", seen, []),
    slowMs: 1000,
    readHosts: noHostsFile,
    setTimer: (ms, fire) => (timers++, clock.setTimer(ms, fire)),
    now: clock.now,
  });
  const hosts = Array.from({ length: 20 }, (_, i) => `n${i}`);
  await clock.run(Promise.all(hosts.map((host) => lookup(host, 4))));
  expect(seen).toHaveLength(20);
  expect(timers).toBe(1);
  expect(clock.pending()).toBe(0);
});

describe("guardedLookup reads /etc/hosts first", () => {
  test("a name the hosts file lists is answered from it in both families, even while DNS is failing: neither c-ares nor the probe is asked", async () => {
    const seen: string[] = [];
    const hosts = async () => "127.0.0.1 localhost\n";
    const lookup = guardedLookup({
      primary: scripted("c-ares", seen, ["DNS_ETIMEOUT", "DNS_ETIMEOUT"]),
      probe: scripted("libc", seen, ["DNS_EAI_AGAIN"]),
      slowMs: 1000,
      readHosts: hosts,
    });
    expect(await lookup("a", 4).catch((error: { code: string }) => error.code)).toBe("DNS_ETIMEOUT");
    expect(await lookup("localhost", 4)).toEqual([{ address: "127.0.0.1", ttl: 0 }]);
    expect(await lookup("localhost", 6)).toEqual([]);
    expect(seen).toEqual(["c-ares a"]);
  });
});
