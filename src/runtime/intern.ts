// One copy of each short string value the caches hold.
//
// JSON.parse makes a new string for every value it reads, so a cache of 10,000 MendixApps and their Deployments
// held 20,000 copies each of "OnPremises", "Deployment", "LICENSE_KEY", the same license message, condition
// reasons and dates: 14 MB of duplicate strings in a 79 MB heap (a heap snapshot after a 10,000-app benchmark).
// Cached objects go through `internStrings` once, as the informer stores them.

/** Values no two objects share: pooling them would only grow the pool. */
const UNIQUE_KEYS = new Set(["uid", "resourceVersion"]);

export class StringPool {
  private readonly pool = new Map<string, string>();
  private readonly maxEntries: number;
  private readonly maxLength: number;

  /**
   * `maxEntries` bounds the pool (it starts over when full: strings already shared stay shared); strings longer
   * than `maxLength` are left alone (long values are rarely repeated, and the pool would keep them alive).
   */
  constructor(opts: { maxEntries?: number; maxLength?: number } = {}) {
    this.maxEntries = opts.maxEntries ?? 65_536;
    this.maxLength = opts.maxLength ?? 256;
  }

  get size(): number {
    return this.pool.size;
  }

  intern(s: string): string {
    if (s.length > this.maxLength) return s;
    const hit = this.pool.get(s);
    if (hit !== undefined) return hit;
    if (this.pool.size >= this.maxEntries) this.pool.clear();
    this.pool.set(s, s);
    return s;
  }

  /** Replaces, in place, every string value in `value` (objects and arrays, any depth) by its pooled copy. */
  internStrings<T>(value: T): T {
    if (value !== null && typeof value === "object") this.walk(value);
    return value;
  }

  /** Objects and arrays alike: an array's keys are its indexes, never one of UNIQUE_KEYS. */
  private walk(value: object): void {
    const obj = value as Record<string, unknown>;
    for (const key of Object.keys(obj)) {
      const v = obj[key];
      if (typeof v === "string") {
        if (!UNIQUE_KEYS.has(key)) obj[key] = this.intern(v);
      } else if (v !== null && typeof v === "object") this.walk(v);
    }
  }
}

/** The pool the informers share: an app and its Deployment share names, labels and env var names. */
export const cachePool = new StringPool();
