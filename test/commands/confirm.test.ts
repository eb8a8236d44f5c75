import { expect, test } from "bun:test";
import { waitForConfirmation } from "../../src/commands/confirm.ts";

const never = new Promise<never>(() => {});

function io(pendingUntil: number, decision: Promise<"keep" | "revert"> = never) {
  let clock = 0;
  return {
    pendingExists: async () => clock < pendingUntil,
    sleep: async (ms: number) => void (clock += ms),
    now: () => clock,
    decision,
  };
}

test.each([
  { name: "confirmed when the pending file goes away in time", pendingUntil: 1500, within: 2000, outcome: "confirmed" },
  { name: "timeout when it stays", pendingUntil: Infinity, within: 2000, outcome: "timeout" },
  { name: "timeout when it goes away too late", pendingUntil: 2500, within: 2000, outcome: "timeout" },
])("$name", async ({ pendingUntil, within, outcome }) => {
  expect(await waitForConfirmation(within, io(pendingUntil))).toBe(outcome as never);
});

test.each([
  { decision: "keep" as const, outcome: "confirmed" },
  { decision: "revert" as const, outcome: "reverted" },
])("a $decision decision on the terminal gives $outcome", async ({ decision, outcome }) => {
  expect(await waitForConfirmation(60_000, io(Infinity, Promise.resolve(decision)))).toBe(outcome as never);
});
