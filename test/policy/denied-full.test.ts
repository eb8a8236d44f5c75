import { describe, expect, test } from "bun:test";
import { deniedFullMessage, FULL_MARGIN, isDeniedSetFull } from "../../src/policy/denied-full.ts";

describe("a denied set counts as full at its size or within a few elements of it", () => {
  const size = 4096;
  test.each([
    [0, false],
    [4000, false],
    [size - FULL_MARGIN - 1, false],
    [size - FULL_MARGIN, true],
    [size - 1, true],
    [size, true],
  ])("%p of 4096: full %p", (elements, full) => {
    expect(isDeniedSetFull({ name: "denied_out_v4", elements, size })).toBe(full);
  });
  test("a few means a few: at most 1 % of the size", () => {
    expect(FULL_MARGIN).toBeGreaterThan(0);
    expect(FULL_MARGIN).toBeLessThanOrEqual(size / 100);
  });
});

describe("what it says", () => {
  const full = (name: string) => ({ name, elements: 4096, size: 4096 });
  test("enforcing, outbound: plainly, with the size, the expiry and the counter that still counts", () => {
    expect(deniedFullMessage([full("denied_out_v4")], { audit: false, timeoutSeconds: 3600 })).toBe(
      "the record of denied destinations is full (4096): later destinations are dropped but not recorded until entries expire (1h after their last packet); see output_dropped (full: denied_out_v4)",
    );
  });
  test("both directions: each set and each counter", () => {
    expect(deniedFullMessage([full("denied_out_v4"), full("denied_in_v6")], { audit: false, timeoutSeconds: 3600 })).toBe(
      "the record of denied destinations is full (4096): later destinations are dropped but not recorded until entries expire (1h after their last packet); see output_dropped, input_dropped (full: denied_out_v4, denied_in_v6)",
    );
  });
  test("audit mode: nothing is dropped, the audit counter counts", () => {
    expect(deniedFullMessage([full("denied_out_v6")], { audit: true, timeoutSeconds: 3600 })).toBe(
      "the record of denied destinations is full (4096): later destinations that would be denied are not recorded until entries expire (1h after their last packet); see output_audited (full: denied_out_v6)",
    );
  });
});
