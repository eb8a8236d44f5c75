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
    name: "nothing pending (not yet idle) before another app's long-lived query: connections opened fast do not reset it",
    connections: [
      { id: "another app's query", pending: 1, lastActive: NOW - 900 },
      { id: "fast 1", pending: 0, lastActive: NOW - 30 },
      { id: "fast 2", pending: 0, lastActive: NOW - 20 },
      { id: "fast 3", pending: 0, lastActive: NOW - 10 },
    ],
    expected: "fast 3",
  },
  {
    name: "all alike: the newest (last), not an older client's",
    connections: [
      { id: "first", pending: 1, lastActive: NOW - 1 },
      { id: "second", pending: 1, lastActive: NOW - 500 },
      { id: "third", pending: 1, lastActive: NOW - 900 },
    ],
    expected: "third",
  },
  {
    name: "a pipelining client (2 pending) before one with nothing pending",
    connections: [
      { id: "pipelining", pending: 2, lastActive: NOW - 10 },
      { id: "nothing pending", pending: 0, lastActive: NOW - 10 },
    ],
    expected: "pipelining",
  },
])("$name", ({ connections, expected }) => {
  expect(evictable(connections, (c) => c, NOW, 1000)?.id).toBe(expected);
});
