// Results of a read reused for a short while, by key: for bursts of reconciles that all ask the same thing.

/**
 * Reuses the result of `read(key)` for `ttlMs` (monotonic time) when `keep` accepts it, and shares a read in
 * flight between its callers. A result `keep` refuses, and a failed read, are dropped as soon as they
 * settle, so the next caller reads again. Expired entries are swept while the map grows past `sweepAt`.
 */
export class Recent<V> {
  readonly #entries = new Map<string, { at: number; value: Promise<V> }>();
  readonly #ttlMs: number;
  readonly #keep: (value: V) => boolean;
  readonly #now: () => number;
  readonly #sweepAt: number;

  constructor(opts: {
    ttlMs: number;
    keep: (value: V) => boolean;
    now?: () => number;
    sweepAt?: number;
  }) {
    this.#ttlMs = opts.ttlMs;
    this.#keep = opts.keep;
    this.#now = opts.now ?? (() => performance.now());
    this.#sweepAt = opts.sweepAt ?? 256;
  }

  get(key: string, read: () => Promise<V>): Promise<V> {
    const now = this.#now();
    const entry = this.#entries.get(key);
    if (entry && now - entry.at < this.#ttlMs) return entry.value;
    if (this.#entries.size >= this.#sweepAt) {
      for (const [k, e] of this.#entries) if (now - e.at >= this.#ttlMs) this.#entries.delete(k);
    }
    const value = read();
    const mine = { at: now, value };
    this.#entries.set(key, mine);
    const drop = () => {
      if (this.#entries.get(key) === mine) this.#entries.delete(key);
    };
    value.then((v) => {
      if (!this.#keep(v)) drop();
    }, drop);
    return value;
  }

  /** Keys held now (expired ones not yet swept included). */
  get size(): number {
    return this.#entries.size;
  }
}
