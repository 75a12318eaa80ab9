// Per-app metrics of the contact and license rules (bounded labels: namespace, app, hosting, state).
//
// Nine series per app (the license state set has five) would be nine prom-client series objects, each with
// its own label object and key string: ~2.5 MB per 2,000 apps. One small record per app instead, turned
// into series when Prometheus scrapes.
import type { Metric, Registry } from "prom-client";
import { LicenseState } from "../api/mendix-app.ts";

export interface AppMetrics {
  set(app: {
    namespace: string;
    name: string;
    hosting: string;
    contacts: number;
    state: LicenseState;
    expiresAt?: string;
    daysRemaining?: number;
  }): void;
  remove(namespace: string, name: string): void;
}

interface AppRecord {
  namespace: string;
  name: string;
  hosting: string;
  contacts: number;
  state: LicenseState;
  /** End of the license's last valid day, in Unix seconds. */
  expiry?: number;
  daysRemaining?: number;
}

type Labels = Record<string, string>;

/** A gauge whose series are computed from `records` at each scrape. */
function derivedGauge(
  registry: Registry,
  name: string,
  help: string,
  series: (r: AppRecord, emit: (labels: Labels, value: number) => void) => void,
  records: Map<string, AppRecord>,
): void {
  const metric = {
    name,
    help,
    type: "gauge",
    aggregator: "sum",
    collect: () => undefined,
    get: async () => {
      const values: { labels: Labels; value: number }[] = [];
      for (const r of records.values()) series(r, (labels, value) => values.push({ labels, value }));
      return { name, help, type: "gauge", aggregator: "sum", values };
    },
  };
  // prom-client's Registry formats any registered object with a name, help, type and get() (its typings
  // declare the type as a numeric enum; at run time it is the text Prometheus shows).
  registry.registerMetric(metric as unknown as Metric);
}

export function appMetrics(registry: Registry): AppMetrics {
  const records = new Map<string, AppRecord>();
  const app = (r: AppRecord) => ({ namespace: r.namespace, app: r.name });
  derivedGauge(
    registry,
    "mxops_app_info",
    "1 per MendixApp, with its hosting model.",
    (r, emit) => emit({ ...app(r), hosting: r.hosting }, 1),
    records,
  );
  derivedGauge(
    registry,
    "mxops_app_technical_contacts",
    "Technical contacts an app names.",
    (r, emit) => emit(app(r), r.contacts),
    records,
  );
  derivedGauge(
    registry,
    "mxops_license_expiry_timestamp_seconds",
    "End of the license's last valid day (Unix seconds).",
    (r, emit) => r.expiry !== undefined && emit(app(r), r.expiry),
    records,
  );
  derivedGauge(
    registry,
    "mxops_license_days_remaining",
    "Whole days until the license expires.",
    (r, emit) => r.daysRemaining !== undefined && emit(app(r), r.daysRemaining),
    records,
  );
  derivedGauge(
    registry,
    "mxops_license_state",
    "License state as a state set: 1 for the current state, 0 for the others.",
    (r, emit) => {
      for (const s of LicenseState.options) emit({ ...app(r), state: s }, s === r.state ? 1 : 0);
    },
    records,
  );
  return {
    set(a) {
      records.set(`${a.namespace}/${a.name}`, {
        namespace: a.namespace,
        name: a.name,
        hosting: a.hosting,
        contacts: a.contacts,
        state: a.state,
        expiry: a.expiresAt ? Date.parse(`${a.expiresAt}T00:00:00Z`) / 1000 + 86_400 : undefined,
        daysRemaining: a.daysRemaining,
      });
    },
    remove(namespace, name) {
      records.delete(`${namespace}/${name}`);
    },
  };
}
