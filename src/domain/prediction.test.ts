import { describe, expect, it } from "vitest";
import { SampleHistory, timeUntilFull } from "./prediction.ts";

const H = 3_600_000;

describe("disk full prediction", () => {
  it("extrapolates a steady rise to 100%", () => {
    // 50% rising 1 point per hour: full in 50 hours from the last sample.
    const samples = [0, 1, 2, 3].map((h) => ({ t: h * H, percent: 47 + h }));
    expect(timeUntilFull(samples, 3 * H)).toBeCloseTo(50 * H, -3);
  });
  it("says nothing for flat or falling usage, or too few samples", () => {
    expect(
      timeUntilFull(
        [0, 1, 2].map((h) => ({ t: h * H, percent: 60 })),
        2 * H,
      ),
    ).toBeUndefined();
    expect(
      timeUntilFull(
        [0, 1, 2].map((h) => ({ t: h * H, percent: 60 - h })),
        2 * H,
      ),
    ).toBeUndefined();
    expect(
      timeUntilFull(
        [
          { t: 0, percent: 1 },
          { t: H, percent: 2 },
        ],
        H,
      ),
    ).toBeUndefined();
  });
  it("keeps a bounded history per key", () => {
    const h = new SampleHistory(3);
    for (let i = 0; i < 5; i++) h.add("a", { t: i, percent: i });
    expect(h.add("a", { t: 5, percent: 5 }).map((s) => s.t)).toEqual([3, 4, 5]);
    expect(h.add("b", { t: 0, percent: 0 })).toHaveLength(1);
  });
});
