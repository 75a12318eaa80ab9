// A keyed work queue after client-go's: dedup while queued, one worker per key, delays and rate-limited retries,
// and two lanes (as controller-runtime's priority queue): what an event caused goes before bulk work (the
// initial list, resyncs, timed requeues such as 10,000 apps at midnight), so a user's change never waits
// behind a backlog it did not cause.
import type { Clock, Timer } from "./clock.ts";
import type { RateLimiter } from "./rate-limit.ts";

export interface QueueMetrics {
  depth(n: number): void;
  added(): void;
  retried(): void;
  /** Seconds an item waited in the queue before a worker took it. */
  queued(seconds: number): void;
  /** Seconds a worker spent on an item. */
  worked(seconds: number): void;
}

export type Priority = "high" | "low";

/** A FIFO with O(1) shift (Array#shift is O(n), which adds up at 10,000 queued keys). */
class Fifo {
  private items: string[] = [];
  private head = 0;
  push(key: string): void {
    this.items.push(key);
  }
  shift(): string | undefined {
    if (this.head >= this.items.length) return undefined;
    const key = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return key;
  }
  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

type Deadline = { key: string; at: number };

/** Binary min-heap on `at`, in an array. */
function heapPush(h: Deadline[], item: Deadline): void {
  h.push(item);
  let i = h.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if ((h[parent] as Deadline).at <= item.at) break;
    h[i] = h[parent] as Deadline;
    i = parent;
  }
  h[i] = item;
}

function heapPop(h: Deadline[]): Deadline | undefined {
  const top = h[0];
  const last = h.pop();
  if (!h.length || !last) return top;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= h.length) break;
    const r = l + 1;
    const c = r < h.length && (h[r] as Deadline).at < (h[l] as Deadline).at ? r : l;
    if ((h[c] as Deadline).at >= last.at) break;
    h[i] = h[c] as Deadline;
    i = c;
  }
  h[i] = last;
  return top;
}

const noMetrics: QueueMetrics = { depth() {}, added() {}, retried() {}, queued() {}, worked() {} };

export class WorkQueue {
  private readonly lanes: Record<Priority, Fifo> = { high: new Fifo(), low: new Fifo() };
  /** Keys waiting in a lane, and which; a lane may also hold stale entries of promoted keys, skipped on take. */
  private readonly queued = new Map<string, Priority>();
  /** The priority a key added while it is processed is queued with when done. */
  private readonly requeueAs = new Map<string, Priority>();
  private readonly dirty = new Set<string>();
  private readonly processing = new Map<string, number>();
  private readonly addedAt = new Map<string, number>();
  /** Keys waiting for a deadline (addAfter), with the lane they go to. */
  private readonly delayed = new Map<string, { at: number; priority: Priority }>();
  /**
   * Deadlines as a min-heap, served by one timer for the earliest: a timer per key cost ~0.5 KB each (10,000
   * apps each requeued for midnight). An entry whose key has since got an earlier deadline is stale and skipped.
   */
  private readonly deadlines: Deadline[] = [];
  private timer: { at: number; handle: Timer } | undefined;
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private readonly idleWaiters: (() => void)[] = [];
  private shuttingDown = false;
  private readonly clock: Clock;
  private readonly limiter: RateLimiter;
  private readonly metrics: QueueMetrics;

  constructor(clock: Clock, limiter: RateLimiter, metrics: QueueMetrics = noMetrics) {
    this.clock = clock;
    this.limiter = limiter;
    this.metrics = metrics;
  }

  /** Queues `key` (once); a high add of a key waiting in the low lane moves it to the high lane. */
  add(key: string, priority: Priority = "high"): void {
    if (this.shuttingDown) return;
    if (this.dirty.has(key)) {
      if (priority === "high") {
        if (this.queued.get(key) === "low") {
          this.queued.set(key, "high");
          this.lanes.high.push(key);
        } else if (this.processing.has(key)) this.requeueAs.set(key, "high");
      }
      return;
    }
    this.metrics.added();
    this.dirty.add(key);
    this.addedAt.set(key, this.clock.now());
    if (this.processing.has(key)) {
      this.requeueAs.set(key, priority); // re-queued by done()
      return;
    }
    this.push(key, priority);
  }

  /** Adds `key` after `ms` (in the low lane unless told); an earlier pending deadline for the same key wins. */
  addAfter(key: string, ms: number, priority: Priority = "low"): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key, priority);
      return;
    }
    const at = this.clock.now() + ms;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    this.delayed.set(key, { at, priority });
    heapPush(this.deadlines, { key, at });
    this.arm();
  }

  /** Keeps one timer set for the earliest live deadline. */
  private arm(): void {
    const d = this.deadlines;
    while (d.length && this.delayed.get((d[0] as Deadline).key)?.at !== (d[0] as Deadline).at) heapPop(d);
    const next = d[0];
    if (!next || this.shuttingDown) {
      this.timer?.handle.cancel();
      this.timer = undefined;
      return;
    }
    if (this.timer && this.timer.at <= next.at) return; // fires first; re-arms then
    this.timer?.handle.cancel();
    const now = this.clock.now();
    this.timer = { at: next.at, handle: this.clock.after(next.at - now, () => this.fireDue()) };
  }

  private fireDue(): void {
    this.timer = undefined;
    const now = this.clock.now();
    const d = this.deadlines;
    while (d.length && (d[0] as Deadline).at <= now) {
      const { key, at } = heapPop(d) as Deadline;
      const entry = this.delayed.get(key);
      if (entry?.at !== at) continue; // stale: the key got an earlier deadline, already served
      this.delayed.delete(key);
      this.add(key, entry.priority);
    }
    this.arm();
  }

  /** Adds `key` after the rate limiter's delay (per-key exponential backoff and the overall limit). */
  addRateLimited(key: string): void {
    this.metrics.retried();
    this.addAfter(key, this.limiter.when(key), "high");
  }

  /** Clears the key's failure history (call after a successful reconcile). */
  forget(key: string): void {
    this.limiter.forget(key);
  }

  retries(key: string): number {
    return this.limiter.retries(key);
  }

  /** The next key to work on; undefined once the queue is shut down and empty. */
  get(): Promise<string | undefined> {
    const key = this.take();
    if (key !== undefined) return Promise.resolve(key);
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks the work on `key` finished; if it was added meanwhile, it is queued again. */
  done(key: string): void {
    const started = this.processing.get(key);
    if (started !== undefined) this.metrics.worked((this.clock.now() - started) / 1000);
    this.processing.delete(key);
    const priority = this.requeueAs.get(key) ?? "high";
    this.requeueAs.delete(key);
    if (this.dirty.has(key)) this.push(key, priority);
    if (this.processing.size === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  len(): number {
    return this.queued.size;
  }

  isProcessing(key: string): boolean {
    return this.processing.has(key);
  }

  /** Stops accepting work; workers get undefined once the queued items are taken. Resolves when in-flight work is done. */
  async shutDown(): Promise<void> {
    this.shuttingDown = true;
    this.timer?.handle.cancel();
    this.timer = undefined;
    this.delayed.clear();
    this.deadlines.length = 0;
    // Items still queued are dropped: a level-based controller finds them again at the next start.
    this.lanes.high.clear();
    this.lanes.low.clear();
    this.queued.clear();
    this.requeueAs.clear();
    this.dirty.clear();
    this.metrics.depth(0);
    for (const w of this.waiters.splice(0)) w(undefined);
    if (this.processing.size > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  private push(key: string, priority: Priority): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      this.start(key);
      waiter(key);
      return;
    }
    this.queued.set(key, priority);
    this.lanes[priority].push(key);
    this.metrics.depth(this.queued.size);
  }

  private take(): string | undefined {
    for (const priority of ["high", "low"] as const) {
      for (let key = this.lanes[priority].shift(); key !== undefined; key = this.lanes[priority].shift()) {
        if (this.queued.get(key) !== priority) continue; // promoted, or already taken from the other lane
        this.queued.delete(key);
        this.metrics.depth(this.queued.size);
        this.start(key);
        return key;
      }
    }
    return undefined;
  }

  private start(key: string): void {
    this.dirty.delete(key);
    this.processing.set(key, this.clock.now());
    const added = this.addedAt.get(key);
    this.addedAt.delete(key);
    if (added !== undefined) this.metrics.queued((this.clock.now() - added) / 1000);
  }
}
