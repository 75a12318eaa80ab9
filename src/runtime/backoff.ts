// Jittered exponential backoff for reconnecting watches and retrying deliveries.
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor?: number;
  /** 0..1: the share of each delay that is randomised (0.5 means 50-100% of the step). */
  jitter?: number;
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly opts: Required<BackoffOptions>;
  constructor(opts: BackoffOptions) {
    this.opts = { factor: 2, jitter: 0.5, random: Math.random, ...opts };
  }

  /** The next delay; grows with each call until reset(). */
  next(): number {
    const { initialMs, maxMs, factor, jitter, random } = this.opts;
    const step = Math.min(maxMs, initialMs * factor ** this.attempt);
    this.attempt++;
    return Math.round(step * (1 - jitter + jitter * random()));
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}

/** Resolves after `ms`, or early (without throwing) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Whether `p` settles within `ms` (waiting no longer; the wait's timer is cleared either way). */
export async function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  const done = new AbortController();
  const settled = p.then(
    () => true,
    () => true,
  );
  const result = await Promise.race([settled, sleep(ms, done.signal).then(() => false)]);
  done.abort();
  return result;
}
