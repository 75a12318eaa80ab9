import { describe, expect, it } from "vitest";
import { Backoff, sleep } from "./backoff.ts";

describe("Backoff", () => {
  it("doubles from the initial delay up to the cap, jittered down by at most the jitter share", () => {
    const top = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 1 });
    expect([1, 2, 3, 4, 5].map(() => top.next())).toEqual([100, 200, 400, 800, 1000]);
    const bottom = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0.5, random: () => 0 });
    expect([1, 2, 3].map(() => bottom.next())).toEqual([50, 100, 200]);
  });

  it("starts over after reset", () => {
    const b = new Backoff({ initialMs: 10, maxMs: 1000, random: () => 1 });
    b.next();
    b.next();
    expect(b.attempts).toBe(2);
    b.reset();
    expect(b.next()).toBe(10);
  });
});

describe("sleep", () => {
  it("returns early when aborted", async () => {
    const ac = new AbortController();
    const started = Date.now();
    const p = sleep(60_000, ac.signal);
    ac.abort();
    await p;
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
