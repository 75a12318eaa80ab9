// Kubernetes Events (events.k8s.io/v1) with repeats aggregated into a series instead of new objects.
import { createHash } from "node:crypto";
import { isNotFound, type KubeClient, type KubeObject, type ResourceType } from "./client.ts";
import { type Clock, systemClock, type Timer } from "./clock.ts";
import { microTime } from "./leader.ts";
import type { Logger } from "./log.ts";

export const EVENTS: ResourceType = {
  group: "events.k8s.io",
  version: "v1",
  plural: "events",
  kind: "Event",
  namespaced: true,
};

export type EventType = "Normal" | "Warning";

export interface EventRecorderOptions {
  client: KubeClient;
  /** e.g. "mxops.dev/operator" */
  controller: string;
  /** e.g. the pod name */
  instance: string;
  log: Logger;
  clock?: Clock;
  /** Repeats within this window join the first event's series (default 10 minutes). */
  seriesWindowMs?: number;
  /** A series is written at most this often; counts in between are accumulated. */
  seriesFlushMs?: number;
}

interface SeriesState {
  /** Its key in the recorder's series map (gone from there: its Event's create failed, or the Event is gone). */
  key: string;
  name: string;
  namespace: string;
  count: number;
  written: number;
  lastObserved: number;
  lastWrite: number;
  timer?: Timer;
  /** The last write to this Event: a series update must not overtake the create (or an earlier update). */
  last: Promise<void>;
}

export class EventRecorder {
  private readonly opts: EventRecorderOptions;
  private readonly clock: Clock;
  private readonly series = new Map<string, SeriesState>();
  private readonly inflight = new Set<Promise<void>>();
  /** Drops series older than the window (10,000 apps' first events are ~4 MB), whether or not more events come. */
  private pruneTimer: Timer | undefined;
  /** Event API writes made (creates + series patches), for tests and benchmarks. */
  writes = 0;
  private sequence = 0;

  constructor(opts: EventRecorderOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
  }

  /** Records an event about `regarding`; never throws (events are best-effort and must not fail a reconcile). */
  event(regarding: KubeObject, type: EventType, reason: string, action: string, note: string): void {
    const meta = regarding.metadata;
    const namespace = meta.namespace ?? "default";
    // A digest, not the joined text: a series lives 10 minutes, and 10,000 apps' first events are 10,000 keys.
    const key = createHash("sha1")
      .update([meta.uid ?? `${namespace}/${meta.name}`, type, reason, action, note].join("\u0000"))
      .digest("base64");
    const now = this.clock.now();
    const s = this.series.get(key);
    const window = this.opts.seriesWindowMs ?? 10 * 60_000;
    if (s && now - s.lastObserved < window) {
      s.count++;
      s.lastObserved = now;
      this.scheduleSeriesWrite(s);
      return;
    }
    if (this.series.size > 10_000) this.prune(now, window);
    // The object's name and the time, as client-go names its Events (randomBytes cost ~25 us a call); the counter
    // tells apart events of one object within a millisecond.
    this.sequence = (this.sequence + 1) & 0xffff;
    const suffix = `${Math.floor(now).toString(16)}${this.sequence.toString(16).padStart(4, "0")}`;
    // A long name is cut to leave room, and a cut must not leave a label ending in '-' or '.'.
    const prefix = meta.name.slice(0, 253 - suffix.length - 1).replace(/[^a-z0-9]+$/, "");
    const name = `${prefix}.${suffix}`;
    const state: SeriesState = {
      key,
      name,
      namespace,
      count: 1,
      written: 1,
      lastObserved: now,
      lastWrite: now,
      last: Promise.resolve(),
    };
    this.series.set(key, state);
    this.schedulePrune(window);
    // A create that failed (a 429, a timeout) is no series: the next repeat creates the Event, rather than patch
    // one that does not exist.
    const forget = (err: unknown) => {
      if (this.live(state)) this.series.delete(key);
      throw err;
    };
    state.last = this.track(
      this.opts.client
        .create(EVENTS, {
          metadata: { name, namespace },
          eventTime: microTime(now),
          reportingController: this.opts.controller,
          reportingInstance: this.opts.instance,
          action,
          reason,
          type,
          note: cutToBytes(note, 1024),
          regarding: {
            apiVersion: regarding.apiVersion,
            kind: regarding.kind,
            name: meta.name,
            namespace: meta.namespace,
            uid: meta.uid,
            resourceVersion: meta.resourceVersion,
          },
        })
        .then(() => {
          this.writes++;
        }, forget),
      { reason, name },
    );
  }

  private schedulePrune(window: number): void {
    if (this.pruneTimer) return;
    this.pruneTimer = this.clock.after(window, () => {
      this.pruneTimer = undefined;
      this.prune(this.clock.now(), window);
      if (this.series.size) this.schedulePrune(window);
    });
  }

  private prune(now: number, window: number): void {
    for (const [key, s] of this.series)
      if (now - s.lastObserved >= window && !s.timer) this.series.delete(key);
  }

  private scheduleSeriesWrite(s: SeriesState): void {
    if (s.timer) return;
    const flushMs = this.opts.seriesFlushMs ?? 30_000;
    const wait = Math.max(0, s.lastWrite + flushMs - this.clock.now());
    s.timer = this.clock.after(wait, () => {
      s.timer = undefined;
      this.writeSeries(s);
    });
  }

  /** Whether `s` is still the series of its key (not dropped after a failed create or a 404, nor replaced). */
  private live(s: SeriesState): boolean {
    return this.series.get(s.key) === s;
  }

  private writeSeries(s: SeriesState): void {
    if (s.count === s.written || !this.live(s)) return;
    s.written = s.count;
    s.lastWrite = this.clock.now();
    const series = { count: s.count, lastObservedTime: microTime(s.lastObserved) };
    s.last = this.track(
      s.last
        .then(async () => {
          // Its create may have failed meanwhile: nothing to patch.
          if (this.live(s)) await this.opts.client.patch(EVENTS, s.namespace, s.name, { series }, "merge");
        })
        .then(
          () => {
            this.writes++;
          },
          (err: unknown) => {
            // Gone (its create failed, or it expired): the next repeat starts a new Event.
            if (isNotFound(err) && this.live(s)) this.series.delete(s.key);
            throw err;
          },
        ),
      { name: s.name, count: s.count },
    );
  }

  private track(p: Promise<void>, context: Record<string, unknown>): Promise<void> {
    const tracked = p.catch((err: unknown) => {
      this.opts.log.warn({ ...context, err: (err as Error).message }, "could not record event");
    });
    this.inflight.add(tracked);
    void tracked.finally(() => this.inflight.delete(tracked));
    return tracked;
  }

  /** Writes pending series counts and waits for in-flight writes (call on shutdown). */
  async flush(): Promise<void> {
    for (const s of this.series.values()) {
      s.timer?.cancel();
      s.timer = undefined;
      this.writeSeries(s);
    }
    await Promise.all([...this.inflight]);
  }
}

/** `text` cut to at most `max` bytes of UTF-8, as the API server counts an Event's note (never half a character). */
export function cutToBytes(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  let out = text.slice(0, max);
  while (Buffer.byteLength(out) > max) out = out.slice(0, -1);
  if (/[\uD800-\uDBFF]$/.test(out)) out = out.slice(0, -1);
  return out;
}
