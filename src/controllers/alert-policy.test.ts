import { describe, expect, it } from "vitest";
import { diskSamples, untilDue } from "./alert-policy.ts";

describe("untilDue", () => {
  const interval = 30_000;
  it("is due once per interval at the policy's own phase", () => {
    const t = 1_800_000_000_000;
    const first = untilDue("shop/cpu", t, interval);
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThanOrEqual(interval);
    // Evaluated when due: due again one interval later, whenever within the interval it is asked.
    expect(untilDue("shop/cpu", t + first, interval)).toBe(interval);
    expect(untilDue("shop/cpu", t + first + 1234, interval)).toBe(interval - 1234);
  });
  it("spreads many policies over the interval instead of running them together", () => {
    const t = 1_800_000_000_000;
    const phases = Array.from({ length: 100 }, (_, i) => untilDue(`bench/g${i}`, t, interval));
    // In each tenth of the interval some, none with most: within 3x of the even share.
    const buckets = Array.from({ length: 10 }, (_, b) =>
      phases.filter((p) => p > (b * interval) / 10 && p <= ((b + 1) * interval) / 10),
    );
    expect(Math.max(...buckets.map((x) => x.length))).toBeLessThanOrEqual(30);
    expect(new Set(phases).size).toBeGreaterThan(90);
  });
});

describe("diskSamples", () => {
  it("keeps a firing volume the source stops reporting, and nothing else", () => {
    expect(diskSamples([{ volume: "data", ratio: 0.5 }], ["logs"])).toEqual([
      { volume: "data", value: 50 },
      { volume: "logs" },
    ]);
    expect(diskSamples([{ volume: "logs", ratio: 0.9 }], ["logs"])).toEqual([{ volume: "logs", value: 90 }]);
    expect(diskSamples([], ["logs"])).toEqual([{ volume: "logs" }]);
    expect(diskSamples([], [])).toEqual([{}]);
    // A volume both firing and without data is one sample.
    expect(diskSamples([], ["logs", "logs"])).toEqual([{ volume: "logs" }]);
  });
});
