// Controller metrics with controller-runtime's names, on a Registry instance (never the global one).
import type { Writable } from "node:stream";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { QueueMetrics } from "./queue.ts";

export function newRegistry(): Registry {
  return new Registry();
}

/**
 * Metric families rendered straight to Prometheus's text format at each scrape, for series that are many
 * (one set per app) and derived from a small record each: prom-client would keep an object, a label object
 * and a key string per series, and build more per scrape. A collector yields its text in chunks of about
 * CHUNK characters, which /metrics sends as they come. At 10,000 apps the app series alone are 6.3 MB in
 * 90,000 lines; built as one string, with every line alive until the join, each scrape left more than that
 * as garbage in V8's old space, which showed in the operator's memory until the next full collection.
 */
export type TextCollector = () => Iterable<string>;

/** Characters per chunk of a text collector's output. */
export const CHUNK = 64 * 1024;

const textCollectors = new WeakMap<Registry, TextCollector[]>();

export function addTextCollector(registry: Registry, collect: TextCollector): void {
  textCollectors.set(registry, [...(textCollectors.get(registry) ?? []), collect]);
}

/** What /metrics serves, in chunks: the registry's metrics, then its text collectors'. */
async function* exposition(registry: Registry): AsyncGenerator<string> {
  yield await registry.metrics();
  for (const collect of textCollectors.get(registry) ?? []) {
    let first = true;
    for (const chunk of collect()) {
      if (chunk === "") continue;
      if (first) yield "\n";
      first = false;
      yield chunk;
    }
  }
}

/** The whole exposition as one string (tests, small registries). */
export async function metricsText(registry: Registry): Promise<string> {
  const chunks: string[] = [];
  for await (const chunk of exposition(registry)) chunks.push(chunk);
  return chunks.join("");
}

/**
 * Writes the exposition to `out` chunk by chunk, waiting for it to drain when it asks to; `start` is called
 * once the first chunk (the registry's own metrics, where a collection would fail) is ready.
 */
export async function writeMetrics(registry: Registry, out: Writable, start: () => void): Promise<void> {
  let started = false;
  for await (const chunk of exposition(registry)) {
    if (!started) start();
    started = true;
    if (out.write(chunk)) continue;
    // A full buffer: wait until it drains, or the scraper has gone (then there is no one to write to).
    await new Promise<void>((resolve) => {
      const go = () => {
        out.off("drain", go);
        out.off("close", go);
        resolve();
      };
      out.on("drain", go);
      out.on("close", go);
    });
    if (out.destroyed) return;
  }
}

/** Emits one series of a record: the labels after the record's own (e.g. `,state="Active"`, or ""), its value. */
export type EmitSeries = (extraLabels: string, value: number) => void;

/** A gauge family with series per record. */
export interface RecordGauge<R> {
  name: string;
  help: string;
  series: (record: R, emit: EmitSeries) => void;
}

/**
 * Gauge families over `records` in Prometheus's text format (0.0.4), in chunks of about CHUNK characters:
 * each family's HELP and TYPE, then every record's series, labelled with the record's own labels
 * (`labelsOf`, e.g. `namespace="a",app="b"`, escaped with labelValue) first.
 */
export function* recordGauges<R>(
  families: RecordGauge<R>[],
  records: Iterable<R>,
  labelsOf: (record: R) => string,
): Generator<string> {
  const rows = Array.from(records, (r) => [r, labelsOf(r)] as const);
  let out = "";
  for (const f of families) {
    out += `# HELP ${f.name} ${f.help}\n# TYPE ${f.name} gauge\n`;
    let prefix = "";
    const emit: EmitSeries = (extra, value) => {
      out += `${prefix}${extra}} ${value}\n`;
    };
    for (const [r, labels] of rows) {
      prefix = `${f.name}{${labels}`;
      f.series(r, emit);
      if (out.length >= CHUNK) {
        yield out;
        out = "";
      }
    }
  }
  if (out) yield out;
}

/** A Prometheus label value, escaped as the text format requires. */
export function labelValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"') : v;
}

export interface ControllerMetrics {
  reconciles: Counter<"controller" | "result">;
  reconcileErrors: Counter<"controller">;
  reconcileTime: Histogram<"controller">;
  activeWorkers: Gauge<"controller">;
  queue(name: string): QueueMetrics;
}

const byRegistry = new WeakMap<Registry, ControllerMetrics>();

/** The controller and work-queue metrics of a registry (created once per registry). */
export function controllerMetrics(registry: Registry): ControllerMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const durationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
  const depth = new Gauge({
    name: "workqueue_depth",
    help: "Current depth of the work queue.",
    labelNames: ["name"],
    registers,
  });
  const adds = new Counter({
    name: "workqueue_adds_total",
    help: "Total adds handled by the work queue.",
    labelNames: ["name"],
    registers,
  });
  const retries = new Counter({
    name: "workqueue_retries_total",
    help: "Total retries (rate-limited re-adds) handled by the work queue.",
    labelNames: ["name"],
    registers,
  });
  const queueDuration = new Histogram({
    name: "workqueue_queue_duration_seconds",
    help: "How long in seconds an item stays in the work queue before being requested.",
    labelNames: ["name"],
    buckets: durationBuckets,
    registers,
  });
  const workDuration = new Histogram({
    name: "workqueue_work_duration_seconds",
    help: "How long in seconds processing an item from the work queue takes.",
    labelNames: ["name"],
    buckets: durationBuckets,
    registers,
  });
  const m: ControllerMetrics = {
    reconciles: new Counter({
      name: "controller_runtime_reconcile_total",
      help: "Total number of reconciliations per controller, by result (success, error, requeue, requeue_after).",
      labelNames: ["controller", "result"],
      registers,
    }),
    reconcileErrors: new Counter({
      name: "controller_runtime_reconcile_errors_total",
      help: "Total number of reconciliation errors per controller.",
      labelNames: ["controller"],
      registers,
    }),
    reconcileTime: new Histogram({
      name: "controller_runtime_reconcile_time_seconds",
      help: "Length of time per reconciliation per controller.",
      labelNames: ["controller"],
      buckets: durationBuckets,
      registers,
    }),
    activeWorkers: new Gauge({
      name: "controller_runtime_active_workers",
      help: "Number of currently used workers per controller.",
      labelNames: ["controller"],
      registers,
    }),
    queue: (name) => ({
      depth: (n) => depth.set({ name }, n),
      added: () => adds.inc({ name }),
      retried: () => retries.inc({ name }),
      queued: (s) => queueDuration.observe({ name }, s),
      worked: (s) => workDuration.observe({ name }, s),
    }),
  };
  byRegistry.set(registry, m);
  return m;
}
