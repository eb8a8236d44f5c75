import { expect, test } from "bun:test";
import { parseDuration } from "../../src/config/duration.ts";

test.each([
  { input: "90", ms: 90_000 },
  { input: "90s", ms: 90_000 },
  { input: "1.5m", ms: 90_000 },
  { input: "500ms", ms: 500 },
  { input: "1h", ms: 3_600_000 },
  { input: " 2s ", ms: 2000 },
  { input: "", ms: undefined },
  { input: "s", ms: undefined },
  { input: "-1s", ms: undefined },
  { input: "1d", ms: undefined },
  { input: "1 s", ms: undefined },
])("parseDuration($input) = $ms", ({ input, ms }) => {
  expect(parseDuration(input)).toBe(ms);
});
