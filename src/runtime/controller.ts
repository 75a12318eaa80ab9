// The reconcile loop: informer events -> keyed work queue -> workers calling a level-based reconciler.

import type { Registry } from "prom-client";
import type { KubeObject } from "./client.ts";
import { type Clock, systemClock, type Timer } from "./clock.ts";
import { type EventHandler, type Informer, objectKey, splitKey } from "./informer.ts";
import { type Logger, lazyChild } from "./log.ts";
import { controllerMetrics } from "./metrics.ts";
import { type Priority, WorkQueue } from "./queue.ts";
import { defaultControllerRateLimiter, type RateLimiter } from "./rate-limit.ts";

export interface Request {
  key: string;
  namespace?: string;
  name: string;
}

export interface ReconcileResult {
  /** Reconcile this key again after this long (e.g. the next license reminder boundary). */
  requeueAfterMs?: number;
}

export interface ReconcileContext {
  log: Logger;
  /** Aborted when the controller shuts down past its grace period. */
  signal: AbortSignal;
}

export type Reconciler = (req: Request, ctx: ReconcileContext) => Promise<ReconcileResult | undefined>;

/** A related kind whose changes map to primary keys (owned objects, referenced objects). */
export interface Related<T extends KubeObject = KubeObject> {
  informer: Informer<T>;
  map: (obj: T) => string[];
  /** Which updates of the related object matter; default: spec/metadata changes, not status-only writes. */
  updateNeedsWork?: (oldObj: T, newObj: T) => boolean;
}

export interface ControllerOptions<P extends KubeObject> {
  name: string;
  primary: Informer<P>;
  reconcile: Reconciler;
  related?: Related[];
  concurrency?: number;
  /** Every key is reconciled again this often, whatever happened (level-based safety net). 0 disables. */
  resyncPeriodMs?: number;
  log: Logger;
  registry: Registry;
  clock?: Clock;
  rateLimiter?: RateLimiter;
  /** Which primary updates need work; default: spec/metadata changes, not status-only writes. */
  updateNeedsWork?: (oldObj: P, newObj: P) => boolean;
}

const stableJson = (v: unknown) => JSON.stringify(v ?? null);

/** A change of spec (generation), labels or deletion: not of status, annotations or finalizers. */
export function specOrLabelsChanged(oldObj: KubeObject, newObj: KubeObject): boolean {
  const a = oldObj.metadata;
  const b = newObj.metadata;
  return (
    // Another uid is another object under the same name: deleted and created again while a watch was down
    // (the relist sees one update), at generation 1 like the one before.
    a.uid !== b.uid ||
    a.generation !== b.generation ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    stableJson(a.labels) !== stableJson(b.labels)
  );
}

/** Generation or metadata that matters changed (a status-only write does neither). */
export function specOrMetadataChanged(oldObj: KubeObject, newObj: KubeObject): boolean {
  const a = oldObj.metadata;
  const b = newObj.metadata;
  if (specOrLabelsChanged(oldObj, newObj)) return true;
  if (stableJson(a.annotations) !== stableJson(b.annotations)) return true;
  if (stableJson(a.finalizers) !== stableJson(b.finalizers)) return true;
  // Kinds without a generation (ConfigMaps, Secrets): any change outside metadata and status counts.
  if (b.generation === undefined) {
    const strip = ({ metadata: _m, status: _s, ...rest }: KubeObject) => rest;
    return stableJson(strip(oldObj)) !== stableJson(strip(newObj));
  }
  return false;
}

export class Controller<P extends KubeObject = KubeObject> {
  readonly name: string;
  readonly queue: WorkQueue;
  private readonly opts: ControllerOptions<P>;
  private readonly clock: Clock;
  private readonly abort = new AbortController();
  private readonly workers: Promise<void>[] = [];
  private resyncTimer: Timer | undefined;
  private running = false;
  private readonly handlers: { informer: Informer<KubeObject>; handler: EventHandler<KubeObject> }[] = [];

  constructor(opts: ControllerOptions<P>) {
    this.opts = opts;
    this.name = opts.name;
    this.clock = opts.clock ?? systemClock;
    const metrics = controllerMetrics(opts.registry);
    this.queue = new WorkQueue(
      this.clock,
      opts.rateLimiter ?? defaultControllerRateLimiter(this.clock),
      metrics.queue(opts.name),
    );
  }

  /** Enqueues a key by hand (e.g. a webhook or a timer outside the controller noticed something). */
  enqueue(key: string): void {
    this.queue.add(key);
  }

  isRunning(): boolean {
    return this.running;
  }

  /** Subscribes to events (the cache's current objects are replayed, so every key is reconciled) and starts workers. */
  start(): void {
    if (this.running) return;
    this.running = true;
    const needsWork = this.opts.updateNeedsWork ?? specOrMetadataChanged;
    // Adds from a cache's initial list (or its replay to a new handler) are bulk work: the low lane.
    let replaying = false;
    const addPriority = (informer: { hasSynced(): boolean }): Priority =>
      replaying || !informer.hasSynced() ? "low" : "high";
    const primaryHandler: EventHandler<P> = {
      onAdd: (obj) => this.queue.add(objectKey(obj), addPriority(this.opts.primary)),
      onUpdate: (oldObj, newObj) => {
        if (needsWork(oldObj, newObj)) this.queue.add(objectKey(newObj));
      },
      onDelete: (obj) => this.queue.add(objectKey(obj)),
    };
    replaying = true;
    this.opts.primary.addHandler(primaryHandler);
    replaying = false;
    this.handlers.push({
      informer: this.opts.primary as unknown as Informer<KubeObject>,
      handler: primaryHandler as EventHandler<KubeObject>,
    });
    for (const rel of this.opts.related ?? []) {
      const enqueueMapped = (obj: KubeObject, priority: Priority = "high") => {
        for (const key of rel.map(obj)) this.queue.add(key, priority);
      };
      const handler: EventHandler<KubeObject> = {
        onAdd: (obj) => enqueueMapped(obj, addPriority(rel.informer)),
        onUpdate: (oldObj, newObj) => {
          // A related object's status-only write (e.g. a contact's assignedApps) changes nothing its owners read.
          if (!(rel.updateNeedsWork ?? specOrMetadataChanged)(oldObj, newObj)) return;
          // Both: a relation that moved (e.g. a label selector no longer matching) concerns the old owner too.
          enqueueMapped(oldObj);
          enqueueMapped(newObj);
        },
        onDelete: enqueueMapped,
      };
      replaying = true;
      rel.informer.addHandler(handler);
      replaying = false;
      this.handlers.push({ informer: rel.informer, handler });
    }
    const concurrency = Math.max(1, this.opts.concurrency ?? 1);
    for (let i = 0; i < concurrency; i++) this.workers.push(this.worker());
    this.scheduleResync();
  }

  /**
   * Stops taking work and waits up to `graceMs` for in-flight reconciles; then aborts them and returns without
   * waiting further, as controller-runtime's graceful-shutdown timeout does (a reconcile stuck on a request must
   * not hold the process past its termination grace period; what it leaves half done is redone, level-based).
   */
  async stop(graceMs = 30_000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.resyncTimer?.cancel();
    for (const { informer, handler } of this.handlers) informer.removeHandler(handler);
    const drained = this.queue.shutDown();
    const timedOut = await Promise.race([
      drained.then(() => false),
      new Promise<boolean>((r) => this.clock.after(graceMs, () => r(true))),
    ]);
    if (timedOut) {
      this.opts.log.warn({ graceMs }, "in-flight reconciles did not finish in time; aborting them");
      this.abort.abort();
      return;
    }
    await Promise.all(this.workers);
  }

  private scheduleResync(): void {
    const period = this.opts.resyncPeriodMs ?? 0;
    if (!period || !this.running) return;
    this.resyncTimer = this.clock.after(period, () => {
      for (const key of this.opts.primary.keys()) this.queue.add(key, "low");
      this.scheduleResync();
    });
  }

  private async worker(): Promise<void> {
    const metrics = controllerMetrics(this.opts.registry);
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const { namespace, name } = splitKey(key);
      const log = lazyChild(this.opts.log, {
        controller: this.name,
        ...(namespace ? { namespace } : {}),
        name,
      });
      const started = performance.now();
      metrics.activeWorkers.inc({ controller: this.name });
      try {
        const result = await this.opts.reconcile(
          { key, namespace, name },
          { log, signal: this.abort.signal },
        );
        this.queue.forget(key);
        if (result?.requeueAfterMs !== undefined && result.requeueAfterMs >= 0) {
          this.queue.addAfter(key, result.requeueAfterMs);
          metrics.reconciles.inc({ controller: this.name, result: "requeue_after" });
        } else {
          metrics.reconciles.inc({ controller: this.name, result: "success" });
        }
      } catch (err) {
        metrics.reconciles.inc({ controller: this.name, result: "error" });
        metrics.reconcileErrors.inc({ controller: this.name });
        log.error({ err, retries: this.queue.retries(key) }, "reconcile failed; retrying with backoff");
        this.queue.addRateLimited(key);
      } finally {
        metrics.activeWorkers.dec({ controller: this.name });
        metrics.reconcileTime.observe({ controller: this.name }, (performance.now() - started) / 1000);
        this.queue.done(key);
      }
    }
  }
}
