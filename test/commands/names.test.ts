import { expect, test } from "bun:test";
import { namesOf, type KnownNames } from "../../src/commands/names.ts";
import type { WatchState } from "../../src/watch/state.ts";

const proxy = {
  port: 15353,
  gid: 2000053,
  queries: {},
  upstreamErrors: 0,
  admitted: { v4: 2, v6: 0 },
  expiredTotal: 0,
  refused: [],
  refusedOther: 0,
  addresses: [
    { address: "203.0.113.60", set: "proxy_v4_tcp443", names: ["ported.x"], entries: ["ported.x"] },
    { address: "203.0.113.60", set: "proxy_v4", names: ["allowed.x", "ported.x"], entries: ["allowed.x"] },
  ],
} satisfies WatchState["proxy"];
const known: KnownNames = {
  from: "watch",
  names: [{ name: "api.example", addresses: ["203.0.113.10", "203.0.113.60"], ports: "all" }],
  watch: { version: 1, pid: 1, backend: "nft", writtenAt: 0, names: [], proxy },
};

test.each([
  { address: "203.0.113.60", expected: ["api.example", "ported.x", "allowed.x"] },
  { address: "203.0.113.10", expected: ["api.example"] },
  { address: "203.0.113.99", expected: [] as string[] },
])("namesOf $address: the names resolved to it, then those the DNS proxy admitted it for, once each", ({ address, expected }) => {
  expect(namesOf(known, address)).toEqual([...expected]);
});
