// A watch cache per resource kind: list + watch with bookmarks, resume, relist on 410, reconnect with backoff,
// a stall watchdog, indexes, and handlers that see every add, update and delete exactly as the cache does.
import { Counter, type Registry } from "prom-client";
import { Backoff, sleep } from "./backoff.ts";
import {
  ApiError,
  isGone,
  type KubeClient,
  type KubeObject,
  type ResourceType,
  WatchStalledError,
} from "./client.ts";
import { cachePool } from "./intern.ts";
import type { Logger } from "./log.ts";

export interface EventHandler<T> {
  onAdd?(obj: T): void;
  onUpdate?(oldObj: T, newObj: T): void;
  onDelete?(obj: T): void;
}

export type IndexFunc<T> = (obj: T) => string[];

export interface InformerOptions {
  /** Namespaces to watch; undefined or empty means all namespaces. */
  namespaces?: string[];
  labelSelector?: string;
  fieldSelector?: string;
  /** List page size. */
  pageSize?: number;
  /** A watch that receives nothing (bookmarks arrive about every minute) for this long is reconnected. */
  stallTimeoutMs?: number;
  /** Server-side watch timeout; a random value in [min, 2*min) spreads reconnects (client-go's 5-10 min). */
  minWatchTimeoutSeconds?: number;
  backoff?: { initialMs: number; maxMs: number };
  /**
   * Shapes each object before it is cached (client-go's SetTransform): keep only what readers of this cache
   * use, so thousands of large objects (e.g. Deployments) cost little memory.
   */
  transform?: (obj: KubeObject) => KubeObject;
  log: Logger;
  registry?: Registry;
}

export function objectKey(obj: { metadata: { namespace?: string; name: string } }): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name;
}

export function splitKey(key: string): { namespace?: string; name: string } {
  const i = key.indexOf("/");
  return i < 0 ? { name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

interface InformerMetrics {
  lists: Counter<"resource">;
  restarts: Counter<"resource" | "reason">;
}
const metricsByRegistry = new WeakMap<Registry, InformerMetrics>();
function informerMetrics(registry: Registry): InformerMetrics {
  let m = metricsByRegistry.get(registry);
  if (!m) {
    m = {
      lists: new Counter({
        name: "mxops_informer_lists_total",
        help: "Full lists of a resource by its watch cache (start, 410 Gone, errors).",
        labelNames: ["resource"],
        registers: [registry],
      }),
      restarts: new Counter({
        name: "mxops_informer_watch_restarts_total",
        help: "Watches restarted, by reason: timeout (normal), gone (relist), stalled, error.",
        labelNames: ["resource", "reason"],
        registers: [registry],
      }),
    };
    metricsByRegistry.set(registry, m);
  }
  return m;
}

export class Informer<T extends KubeObject> {
  readonly resource: ResourceType;
  private readonly client: KubeClient;
  private readonly opts: InformerOptions;
  private readonly store = new Map<string, T>();
  /** Bumped when an object is added or deleted or its labels change (membershipVersion). */
  private membership = 0;
  private readonly handlers: EventHandler<T>[] = [];
  private readonly indexers = new Map<string, IndexFunc<T>>();
  private readonly indexes = new Map<string, Index>();
  private readonly scopes: (string | undefined)[];
  private readonly syncedScopes = new Set<string | undefined>();
  private readonly syncWaiters: (() => void)[] = [];
  private readonly abort = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private readonly metrics: InformerMetrics | undefined;
  private started = false;
  /** Counters for tests and diagnostics. */
  readonly stats = { lists: 0, watches: 0, events: 0 };

  constructor(client: KubeClient, resource: ResourceType, opts: InformerOptions) {
    this.client = client;
    this.resource = resource;
    this.opts = opts;
    this.scopes = resource.namespaced && opts.namespaces?.length ? [...opts.namespaces] : [undefined];
    this.metrics = opts.registry ? informerMetrics(opts.registry) : undefined;
  }

  /** Registers handlers; objects already in the cache are replayed to it as adds. */
  addHandler(handler: EventHandler<T>): void {
    this.handlers.push(handler);
    for (const obj of this.store.values()) handler.onAdd?.(obj);
  }

  removeHandler(handler: EventHandler<T>): void {
    const i = this.handlers.indexOf(handler);
    if (i >= 0) this.handlers.splice(i, 1);
  }

  hasIndex(name: string): boolean {
    return this.indexers.has(name);
  }

  /** Adds an index, e.g. apps by contact name; `byIndex(name, value)` then answers from memory. */
  addIndex(name: string, fn: IndexFunc<T>): void {
    this.indexers.set(name, fn);
    const index: Index = new Map();
    this.indexes.set(name, index);
    for (const [key, obj] of this.store) for (const v of fn(obj)) addTo(index, v, key);
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.store.get(namespace ? `${namespace}/${name}` : name);
  }

  getByKey(key: string): T | undefined {
    return this.store.get(key);
  }

  /**
   * Changes whenever an object is added or deleted or its labels change: a selection by labels made at one
   * version still holds while it stays the same (status writes, the bulk of the events, leave it alone).
   */
  membershipVersion(): number {
    return this.membership;
  }

  list(namespace?: string): T[] {
    const all = [...this.store.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
  }

  keys(): string[] {
    return [...this.store.keys()];
  }

  size(): number {
    return this.store.size;
  }

  byIndex(name: string, value: string): T[] {
    const keys = this.indexes.get(name)?.get(value);
    if (keys === undefined) return [];
    return (typeof keys === "string" ? [keys] : [...keys])
      .map((k) => this.store.get(k))
      .filter((o): o is T => o !== undefined);
  }

  hasSynced(): boolean {
    return this.scopes.every((s) => this.syncedScopes.has(s));
  }

  async waitForSync(signal?: AbortSignal): Promise<boolean> {
    // An aborted signal fires no "abort" event for a listener added now: it must not wait for one.
    if (this.hasSynced() || signal?.aborted) return this.hasSynced();
    await new Promise<void>((resolve) => {
      this.syncWaiters.push(resolve);
      signal?.addEventListener("abort", () => resolve(), { once: true });
    });
    return this.hasSynced();
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    for (const scope of this.scopes) this.loops.push(this.run(scope));
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.all(this.loops);
  }

  private shape(raw: T): T {
    const obj = normalized(raw, this.resource);
    return cachePool.internStrings(this.opts.transform ? (this.opts.transform(obj) as T) : obj);
  }

  get name(): string {
    return this.resource.group ? `${this.resource.plural}.${this.resource.group}` : this.resource.plural;
  }

  /** One reflector: list, then watch from the list's resourceVersion, forever. */
  private async run(namespace: string | undefined): Promise<void> {
    const log = this.opts.log.child({ resource: this.name, ...(namespace ? { namespace } : {}) });
    const backoff = new Backoff(this.opts.backoff ?? { initialMs: 200, maxMs: 30_000 });
    const signal = this.abort.signal;
    let resourceVersion: string | undefined;
    while (!signal.aborted) {
      try {
        if (resourceVersion === undefined) {
          resourceVersion = await this.listAll(namespace, signal);
          backoff.reset();
        }
        const minTimeout = this.opts.minWatchTimeoutSeconds ?? 300;
        this.stats.watches++;
        log.debug({ resourceVersion }, "watching");
        const watchStarted = performance.now();
        let heard = false;
        await this.client.watch<T>(
          this.resource,
          {
            namespace,
            labelSelector: this.opts.labelSelector,
            fieldSelector: this.opts.fieldSelector,
            resourceVersion,
            timeoutSeconds: Math.floor(minTimeout * (1 + Math.random())),
            stallTimeoutMs: this.opts.stallTimeoutMs ?? 90_000,
            signal,
          },
          (event) => {
            this.stats.events++;
            if (event.type === "ERROR") {
              const status = event.object as unknown as { code?: number; reason?: string; message?: string };
              throw new ApiError(
                status.code ?? 500,
                status.reason ?? "Error",
                status.message ?? "watch error",
              );
            }
            heard = true;
            const rv = event.object.metadata?.resourceVersion;
            if (event.type !== "BOOKMARK") this.apply(event.type, this.shape(event.object));
            if (rv) resourceVersion = rv;
            backoff.reset();
          },
        );
        if (!signal.aborted) this.metrics?.restarts.inc({ resource: this.name, reason: "timeout" });
        // Ended by the server (or a proxy) within a second with nothing in it: client-go's "very short watch",
        // an error, so that a proxy closing every stream at once is not asked again as fast as round trips go.
        if (!signal.aborted && !heard && performance.now() - watchStarted < 1000) {
          const delay = backoff.next();
          log.warn({ delayMs: delay }, "watch ended at once without events; retrying after a backoff");
          await sleep(delay, signal);
        }
      } catch (err) {
        if (signal.aborted) break;
        if (isGone(err)) {
          // Our resourceVersion was compacted away: relist, and the diff tells handlers what they missed.
          log.info({ resourceVersion }, "watch expired (410 Gone); relisting");
          this.metrics?.restarts.inc({ resource: this.name, reason: "gone" });
          resourceVersion = undefined;
          continue;
        }
        const stalled = err instanceof WatchStalledError;
        this.metrics?.restarts.inc({ resource: this.name, reason: stalled ? "stalled" : "error" });
        const retryAfter =
          err instanceof ApiError && err.retryAfterSeconds ? err.retryAfterSeconds * 1000 : 0;
        // A quiet resource on a live connection (no bookmarks without etcd's progress notifications) is
        // normal, not a failure: reconnected at once (a growing backoff would leave it unwatched for up to
        // its maximum after every stall timeout) and not worth a warning.
        const quiet = stalled && !err.connectionSilent;
        if (quiet) backoff.reset();
        const delay = quiet ? 0 : Math.max(retryAfter, backoff.next());
        log[quiet ? "debug" : "warn"](
          { err: (err as Error).message, delayMs: delay },
          stalled ? "watch stalled; reconnecting" : "watch failed; retrying",
        );
        await sleep(delay, signal);
      }
    }
  }

  /** Lists every page; replaces the scope's part of the cache, emitting the differences. Returns the list's RV. */
  private async listAll(namespace: string | undefined, signal: AbortSignal): Promise<string> {
    this.stats.lists++;
    this.metrics?.lists.inc({ resource: this.name });
    this.opts.log.debug({ resource: this.name, namespace }, "listing");
    const items: T[] = [];
    let cont: string | undefined;
    let rv = "";
    do {
      const page = await this.client.list<T>(this.resource, {
        namespace,
        labelSelector: this.opts.labelSelector,
        fieldSelector: this.opts.fieldSelector,
        limit: this.opts.pageSize ?? 500,
        continue: cont,
        signal,
      });
      // Shaped page by page: a full list of raw objects (managedFields and all) would peak the heap.
      for (const item of page.items) items.push(this.shape(item));
      cont = page.metadata.continue || undefined;
      rv = page.metadata.resourceVersion ?? rv;
    } while (cont);
    this.replace(namespace, items);
    this.syncedScopes.add(namespace);
    if (this.hasSynced()) for (const w of this.syncWaiters.splice(0)) w();
    return rv;
  }

  private replace(namespace: string | undefined, items: T[]): void {
    const seen = new Set<string>();
    for (const item of items) {
      seen.add(objectKey(item));
      this.apply("SYNC", item);
    }
    for (const [key, obj] of [...this.store]) {
      if (namespace !== undefined && obj.metadata.namespace !== namespace) continue;
      if (!seen.has(key)) this.apply("DELETED", obj);
    }
  }

  /** Takes `obj` already shaped for the cache (`shape`): list items page by page, watch events as they arrive. */
  private apply(type: "ADDED" | "MODIFIED" | "DELETED" | "SYNC", obj: T): void {
    const key = objectKey(obj);
    const old = this.store.get(key);
    if (type === "DELETED") {
      if (!old) return;
      this.store.delete(key);
      this.membership++;
      this.unindex(key, old);
      for (const h of this.handlers) {
        try {
          h.onDelete?.(obj);
        } catch (err) {
          this.handlerFailed(err);
        }
      }
      return;
    }
    if (old && old.metadata.resourceVersion === obj.metadata.resourceVersion) return;
    this.store.set(key, obj);
    if (!old || !sameLabels(old.metadata.labels, obj.metadata.labels)) this.membership++;
    if (old) this.unindex(key, old);
    this.index(key, obj);
    for (const h of this.handlers) {
      try {
        if (old) h.onUpdate?.(old, obj);
        else h.onAdd?.(obj);
      } catch (err) {
        this.handlerFailed(err);
      }
    }
  }

  /**
   * A handler that throws is logged and the others still hear of the event: thrown out of the watch loop, it
   * would end the watch, and the event replayed after it would be skipped as already seen.
   */
  private handlerFailed(err: unknown): void {
    this.opts.log.error({ resource: this.name, err: (err as Error).message }, "an event handler failed");
  }

  private index(key: string, obj: T): void {
    for (const [name, fn] of this.indexers) {
      const index = this.indexes.get(name);
      if (index) for (const v of fn(obj)) addTo(index, v, key);
    }
  }

  private unindex(key: string, obj: T): void {
    for (const [name, fn] of this.indexers) {
      const index = this.indexes.get(name);
      if (!index) continue;
      for (const v of fn(obj)) removeFrom(index, v, key);
    }
  }
}

function sameLabels(a: Record<string, string> = {}, b: Record<string, string> = {}): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

/**
 * Index value -> the keys of the objects with it. Most values belong to one object (an app's workload), so a
 * single key is kept as is: a Set per value would cost ~130 bytes per app more.
 */
type Index = Map<string, string | Set<string>>;

function addTo(index: Index, value: string, key: string): void {
  const keys = index.get(value);
  if (keys === undefined || keys === key) index.set(value, key);
  else if (typeof keys === "string") index.set(value, new Set([keys, key]));
  else keys.add(key);
}

function removeFrom(index: Index, value: string, key: string): void {
  const keys = index.get(value);
  if (keys === key) index.delete(value);
  else if (typeof keys !== "string" && keys?.delete(key) && keys.size === 1) {
    const [only] = keys;
    if (only !== undefined) index.set(value, only);
  }
}

const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

/**
 * List items come without apiVersion/kind, watch events with them: make both alike. Drops kubectl's
 * last-applied annotation (a whole copy of the object, and nothing reads it from a cache); managedFields,
 * the other large part nothing reads, the client already leaves out of every answer (json.ts).
 */
function normalized<T extends KubeObject>(obj: T, rt: ResourceType): T {
  let metadata = obj.metadata;
  if (metadata.annotations && LAST_APPLIED in metadata.annotations) {
    const { [LAST_APPLIED]: _copy, ...annotations } = metadata.annotations;
    metadata = { ...metadata, annotations };
  }
  const apiVersion = obj.apiVersion || (rt.group ? `${rt.group}/${rt.version}` : rt.version);
  return { ...obj, apiVersion, kind: obj.kind || rt.kind, metadata };
}

/** One shared informer per resource kind (and selector), however many controllers read it. */
export class InformerFactory {
  private readonly informers = new Map<string, Informer<KubeObject>>();
  private readonly client: KubeClient;
  private readonly defaults: InformerOptions;

  constructor(client: KubeClient, defaults: InformerOptions) {
    this.client = client;
    this.defaults = defaults;
  }

  informerFor<T extends KubeObject>(rt: ResourceType, opts: Partial<InformerOptions> = {}): Informer<T> {
    // Readers of one resource share its cache, so they must agree on its transform (if any).
    const key = [rt.group, rt.version, rt.plural, opts.labelSelector ?? "", opts.fieldSelector ?? ""].join(
      "|",
    );
    let inf = this.informers.get(key);
    if (!inf) {
      inf = new Informer<KubeObject>(this.client, rt, { ...this.defaults, ...opts });
      this.informers.set(key, inf);
    }
    return inf as unknown as Informer<T>;
  }

  all(): Informer<KubeObject>[] {
    return [...this.informers.values()];
  }

  start(): void {
    for (const inf of this.informers.values()) inf.start();
  }

  hasSynced(): boolean {
    return [...this.informers.values()].every((i) => i.hasSynced());
  }

  async waitForSync(signal?: AbortSignal): Promise<boolean> {
    const results = await Promise.all([...this.informers.values()].map((i) => i.waitForSync(signal)));
    return results.every(Boolean);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
  }
}
