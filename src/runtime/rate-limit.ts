// Rate limiters of the work queue, after client-go's: per-item exponential backoff and an overall token bucket.
import type { Clock } from "./clock.ts";

export interface RateLimiter {
  /** How long to wait before `key` may be processed again. */
  when(key: string): number;
  forget(key: string): void;
  retries(key: string): number;
}

/** base * 2^failures, capped (controller-runtime: 5 ms to 1000 s). */
export class ItemExponentialBackoff implements RateLimiter {
  private readonly failures = new Map<string, number>();
  private readonly baseMs: number;
  private readonly maxMs: number;
  constructor(baseMs = 5, maxMs = 1_000_000) {
    this.baseMs = baseMs;
    this.maxMs = maxMs;
  }

  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = this.baseMs * 2 ** n;
    return Number.isFinite(delay) ? Math.min(delay, this.maxMs) : this.maxMs;
  }
  forget(key: string): void {
    this.failures.delete(key);
  }
  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/** Overall limit across all items: `qps` tokens per second with a burst (controller-runtime: 10 qps, 100 burst). */
export class TokenBucket implements RateLimiter {
  private tokens: number;
  private last: number;
  private readonly clock: Clock;
  private readonly qps: number;
  private readonly burst: number;
  constructor(clock: Clock, qps = 10, burst = 100) {
    this.clock = clock;
    this.qps = qps;
    this.burst = burst;
    this.tokens = burst;
    this.last = clock.now();
  }

  when(_key: string): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    this.tokens -= 1;
    // A negative balance is a reservation: the wait until it is paid back.
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }
  forget(_key: string): void {}
  retries(_key: string): number {
    return 0;
  }
}

/** The longest wait any of the limiters asks for. */
export class MaxOf implements RateLimiter {
  private readonly limiters: RateLimiter[];
  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }
  when(key: string): number {
    return Math.max(...this.limiters.map((l) => l.when(key)));
  }
  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }
  retries(key: string): number {
    return Math.max(...this.limiters.map((l) => l.retries(key)));
  }
}

export function defaultControllerRateLimiter(clock: Clock): RateLimiter {
  return new MaxOf(new ItemExponentialBackoff(5, 1_000_000), new TokenBucket(clock, 10, 100));
}
