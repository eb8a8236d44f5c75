import { expect, test } from "bun:test";
import { evictable, type ConnectionLoad } from "../../src/proxy/eviction.ts";

const NOW = 100_000;
test.each<{ name: string; connections: (ConnectionLoad & { id: string })[]; expected: string | undefined }>([
  { name: "none", connections: [], expected: undefined },
  {
    name: "the one idle longest, past the idle threshold",
    connections: [
      { id: "busy", pending: 16, lastActive: NOW - 5000 },
      { id: "idle 2 s", pending: 0, lastActive: NOW - 2000 },
      { id: "idle 5 s", pending: 0, lastActive: NOW - 5000 },
    ],
    expected: "idle 5 s",
  },
  {
    name: "a pipelining client before a client with one query, and before one just opened",
    connections: [
      { id: "one query", pending: 1, lastActive: NOW - 10 },
      { id: "just opened", pending: 0, lastActive: NOW - 5 },
      { id: "pipelining", pending: 16, lastActive: NOW - 10 },
    ],
    expected: "pipelining",
  },
  {
    name: "all alike: the oldest (first)",
    connections: [
      { id: "first", pending: 1, lastActive: NOW - 1 },
      { id: "second", pending: 0, lastActive: NOW - 500 },
      { id: "third", pending: 1, lastActive: NOW - 900 },
    ],
    expected: "first",
  },
])("$name", ({ connections, expected }) => {
  expect(evictable(connections, (c) => c, NOW, 1000)?.id).toBe(expected);
});
