import { describe, expect, it } from "vitest";
import { ManualClock } from "./clock.ts";
import { WorkQueue } from "./queue.ts";
import { defaultControllerRateLimiter, ItemExponentialBackoff, MaxOf, TokenBucket } from "./rate-limit.ts";

const newQueue = (clock = new ManualClock(1_000_000)) => ({
  clock,
  q: new WorkQueue(clock, defaultControllerRateLimiter(clock)),
});

describe("WorkQueue", () => {
  it("dedups a key while it is queued", async () => {
    const { q } = newQueue();
    q.add("a");
    q.add("b");
    q.add("a");
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe("a");
    expect(await q.get()).toBe("b");
  });

  it("never hands out a key that is being processed; re-queues it when done", async () => {
    const { q } = newQueue();
    q.add("a");
    expect(await q.get()).toBe("a");
    q.add("a");
    expect(q.len()).toBe(0);
    expect(q.isProcessing("a")).toBe(true);
    q.done("a");
    expect(q.len()).toBe(1);
    expect(await q.get()).toBe("a");
  });

  it("hands out event-driven (high) keys before bulk (low) ones, FIFO within a lane", async () => {
    const { q } = newQueue();
    for (const k of ["l1", "l2", "l3"]) q.add(k, "low");
    q.add("h1");
    q.add("h2", "high");
    expect(q.len()).toBe(5);
    const order = [];
    for (let i = 0; i < 5; i++) order.push(await q.get());
    expect(order).toEqual(["h1", "h2", "l1", "l2", "l3"]);
    expect(q.len()).toBe(0);
  });

  it("promotes a key waiting in the low lane when it is added high, and hands it out once", async () => {
    const { q } = newQueue();
    for (const k of ["l1", "l2", "l3"]) q.add(k, "low");
    q.add("l3", "high");
    q.add("l2", "low"); // already queued: stays where it is
    expect(q.len()).toBe(3);
    const order = [];
    for (let i = 0; i < 3; i++) order.push(await q.get());
    expect(order).toEqual(["l3", "l1", "l2"]);
    expect(q.len()).toBe(0);
    q.add("x", "low");
    expect(await q.get()).toBe("x");
  });

  it("re-queues a key added while processing with the highest priority it was added with", async () => {
    const { q } = newQueue();
    q.add("a");
    expect(await q.get()).toBe("a");
    q.add("a", "low");
    q.add("a", "high");
    q.add("b", "low");
    q.done("a");
    expect(await q.get()).toBe("a");
    expect(await q.get()).toBe("b");
  });

  it("queues timed requeues in the low lane and rate-limited retries in the high lane", async () => {
    const { q, clock } = newQueue();
    q.addAfter("timed", 1000);
    q.addRateLimited("failed");
    clock.advance(1000);
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe("failed");
    expect(await q.get()).toBe("timed");
  });

  it("wakes a waiting worker when a key arrives", async () => {
    const { q } = newQueue();
    const pending = q.get();
    q.add("x");
    expect(await pending).toBe("x");
  });

  it("delays addAfter until the clock reaches the deadline; the earliest deadline wins", () => {
    const { q, clock } = newQueue();
    q.addAfter("a", 1000);
    q.addAfter("a", 500);
    q.addAfter("a", 2000);
    clock.advance(499);
    expect(q.len()).toBe(0);
    clock.advance(1);
    expect(q.len()).toBe(1);
    clock.advance(5000);
    expect(q.len()).toBe(1);
  });

  it("serves many deadlines from one timer, in deadline order, each key once", async () => {
    const { q, clock } = newQueue();
    // 500 keys with shuffled deadlines; every tenth later moved earlier (its first entry goes stale).
    const deadlines = new Map<string, number>();
    for (let i = 0; i < 500; i++) {
      const ms = ((i * 7919) % 500) * 10 + 10;
      q.addAfter(`k${i}`, ms);
      deadlines.set(`k${i}`, ms);
      if (i % 10 === 0) {
        q.addAfter(`k${i}`, ms / 2);
        deadlines.set(`k${i}`, ms / 2);
      }
    }
    const order: string[] = [];
    for (let t = 0; t <= 5010; t += 5) {
      clock.advance(5);
      while (q.len() > 0) {
        const key = (await q.get()) as string;
        order.push(key);
        q.done(key);
        expect(deadlines.get(key)).toBeLessThanOrEqual(t + 5);
      }
    }
    expect(order).toHaveLength(500);
    expect(new Set(order).size).toBe(500);
    const due = order.map((k) => deadlines.get(k) as number);
    expect(due).toEqual([...due].sort((a, b) => a - b));
    // Shut down with deadlines pending: nothing fires afterwards.
    q.addAfter("late", 100);
    await q.shutDown();
    clock.advance(1000);
    expect(q.len()).toBe(0);
  });

  it("backs off a failing key exponentially from 5 ms and forgets on success", () => {
    const { q, clock } = newQueue();
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      const before = clock.now();
      q.addRateLimited("k");
      let waited = 0;
      while (q.len() === 0) {
        clock.advance(1);
        waited++;
      }
      waits.push(waited);
      void q.get();
      q.done("k");
      expect(clock.now() - before).toBe(waited);
    }
    expect(waits).toEqual([5, 10, 20, 40]);
    expect(q.retries("k")).toBe(4);
    q.forget("k");
    expect(q.retries("k")).toBe(0);
  });

  it("drops queued work on shutdown, waits for in-flight work, and then returns undefined", async () => {
    const { q } = newQueue();
    q.add("a");
    q.add("b");
    const key = await q.get();
    let drained = false;
    const shutdown = q.shutDown().then(() => {
      drained = true;
    });
    expect(await q.get()).toBeUndefined();
    await Promise.resolve();
    expect(drained).toBe(false);
    q.done(key ?? "");
    await shutdown;
    expect(drained).toBe(true);
    q.add("c");
    expect(q.len()).toBe(0);
  });
});

describe("rate limiters", () => {
  it("caps the per-item backoff at 1000 s", () => {
    const l = new ItemExponentialBackoff(5, 1_000_000);
    let last = 0;
    for (let i = 0; i < 40; i++) last = l.when("k");
    expect(last).toBe(1_000_000);
  });

  it("lets a burst of 100 through, then 10 per second", () => {
    const clock = new ManualClock(0);
    const bucket = new TokenBucket(clock, 10, 100);
    const waits = Array.from({ length: 102 }, (_, i) => bucket.when(`k${i}`));
    expect(waits.slice(0, 100).every((w) => w === 0)).toBe(true);
    expect(waits[100]).toBeCloseTo(100);
    expect(waits[101]).toBeCloseTo(200);
    clock.advance(10_000);
    expect(bucket.when("later")).toBe(0);
  });

  it("combines limiters by taking the longest wait", () => {
    const clock = new ManualClock(0);
    const l = new MaxOf(new ItemExponentialBackoff(5, 1000), new TokenBucket(clock, 1, 1));
    expect(l.when("a")).toBe(5);
    expect(l.when("b")).toBe(1000);
  });
});
