import { afterEach, describe, expect, it, vi } from "vitest";
import { systemClock } from "./clock.ts";

describe("systemClock.after", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("waits delays longer than setTimeout keeps (~24.8 days) in steps, instead of firing at once", () => {
    vi.useFakeTimers();
    const DAY = 86_400_000;
    let fired = 0;
    systemClock.after(60 * DAY, () => fired++);
    vi.advanceTimersByTime(1000);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(40 * DAY);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(20 * DAY - 1001);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(2);
    expect(fired).toBe(1);
  });

  it("can be cancelled between its steps", () => {
    vi.useFakeTimers();
    let fired = 0;
    const t = systemClock.after(30 * 86_400_000, () => fired++);
    vi.advanceTimersByTime(26 * 86_400_000);
    t.cancel();
    vi.advanceTimersByTime(10 * 86_400_000);
    expect(fired).toBe(0);
  });
});
