import { describe, expect, test } from "bun:test";
import { chainChecked } from "../../src/dns/lookup.ts";
import type { Lookup } from "../../src/dns/resolve.ts";

/** A lookup answering from `answers` (host → addresses with one TTL, or an error code). */
function fake(answers: Record<string, { addresses: string[]; ttl?: number } | string>): Lookup {
  return async (host) => {
    const found = answers[host];
    if (found === undefined) throw Object.assign(new Error("not found"), { code: "DNS_ENOTFOUND" });
    if (typeof found === "string") throw Object.assign(new Error(found), { code: found });
    return found.addresses.map((address) => ({ address, ttl: found.ttl ?? 0 }));
  };
}

describe("chainChecked: only the addresses on the CNAME chain from the name asked", () => {
  test("a stray record c-ares returns is left out: the addresses are getaddrinfo's, with c-ares's TTL", async () => {
    const cares = fake({ "stray.x": { addresses: ["203.0.113.77", "198.51.100.9"], ttl: 30 } });
    const libc = fake({ "stray.x": { addresses: ["198.51.100.9"] } });
    expect(await chainChecked(cares, libc)("stray.x", 4)).toEqual([{ address: "198.51.100.9", ttl: 30 }]);
  });

  test("a CDN that answers each query with other addresses: getaddrinfo's own answer is taken, not an intersection", async () => {
    const cares = fake({ "cdn.x": { addresses: ["203.0.113.1", "203.0.113.2"], ttl: 20 } });
    const libc = fake({ "cdn.x": { addresses: ["203.0.113.3", "203.0.113.4", "203.0.113.3"] } });
    expect(await chainChecked(cares, libc)("cdn.x", 4)).toEqual([
      { address: "203.0.113.3", ttl: 20 },
      { address: "203.0.113.4", ttl: 20 },
    ]);
  });

  test("c-ares's failure is the lookup's (it says which kind); else getaddrinfo's: never an unchecked address", async () => {
    await expect(chainChecked(fake({ "a.x": "DNS_EREFUSED" }), fake({ "a.x": "DNS_EAI_AGAIN" }))("a.x", 4)).rejects.toMatchObject({
      code: "DNS_EREFUSED",
    });
    await expect(
      chainChecked(fake({ "a.x": { addresses: ["203.0.113.1"], ttl: 5 } }), fake({ "a.x": "DNS_EAI_AGAIN" }))("a.x", 6),
    ).rejects.toMatchObject({ code: "DNS_EAI_AGAIN" });
  });
});
