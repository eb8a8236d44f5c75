import { expect, test } from "bun:test";
import { coalescedTimer } from "../src/timer.ts";
import { fakeClock } from "./support/fake-clock.ts";

/** A fake clock whose setTimer calls are counted: how many real timers the coalesced one sets. */
function counted() {
  const clock = fakeClock();
  let set = 0;
  const setTimer = (ms: number, fire: () => void) => (set++, clock.setTimer(ms, fire));
  return { clock, timer: coalescedTimer(setTimer, clock.now), sets: () => set };
}

test("timers set together share one underlying timer, and each fires at its own time", async () => {
  const { clock, timer, sets } = counted();
  const fired: string[] = [];
  for (let i = 0; i < 50; i++) timer(2000, () => fired.push(`a${i}`));
  timer(2500, () => fired.push("late"));
  expect(sets()).toBe(1);
  await clock.advance(1999);
  expect(fired).toEqual([]);
  await clock.advance(1);
  expect(fired).toHaveLength(50);
  await clock.advance(499);
  expect(fired).toHaveLength(50);
  await clock.advance(1);
  expect(fired.at(-1)).toBe("late");
  expect(clock.pending()).toBe(0);
});

test("a cancelled timer never fires, and when none is left the underlying one is cancelled too", async () => {
  const { clock, timer } = counted();
  const fired: string[] = [];
  const cancels = [timer(100, () => fired.push("a")), timer(100, () => fired.push("b"))];
  cancels[0]!();
  await clock.advance(100);
  expect(fired).toEqual(["b"]);
  const cancel = timer(100, () => fired.push("c"));
  cancel();
  expect(clock.pending()).toBe(0);
});

test("a timer due before the one waited for is not held back by it", async () => {
  const { clock, timer } = counted();
  const fired: number[] = [];
  timer(1000, () => fired.push(clock.now()));
  timer(10, () => fired.push(clock.now()));
  timer(500, () => fired.push(clock.now()));
  await clock.advance(1000);
  expect(fired).toEqual([10, 500, 1000]);
});

test("a timer set from a firing one runs at its own time", async () => {
  const { clock, timer } = counted();
  const fired: number[] = [];
  timer(10, () => timer(10, () => fired.push(clock.now())));
  await clock.advance(30);
  expect(fired).toEqual([20]);
});

test("cancelling the earliest of many (lookups answering in the order they were asked) sets no new underlying timer", async () => {
  const { clock, timer, sets } = counted();
  const cancels: (() => void)[] = [];
  for (let i = 0; i < 50; i++) {
    cancels.push(timer(2000, () => {}));
    await clock.advance(1);
  }
  for (const cancel of cancels) cancel();
  expect(sets()).toBe(1);
  expect(clock.pending()).toBe(0);
});
