// Per-app metrics of the contact and license rules (bounded labels: namespace, app, hosting, state).
//
// Nine series per app (the license state set has five): as prom-client series each would be an object with a
// label object and a key string (1.2 MB per 2,000 apps in a heap snapshot), and every scrape would build as
// many again. One small record per app instead, written out as text when Prometheus scrapes.
import type { Registry } from "prom-client";
import { LicenseState } from "../api/mendix-app.ts";
import { addTextCollector, labelValue, type RecordGauge, recordGauges } from "../runtime/metrics.ts";

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

const FAMILIES: RecordGauge<AppRecord>[] = [
  {
    name: "mxops_app_info",
    help: "1 per MendixApp, with its hosting model.",
    series: (r, emit) => emit(`,hosting="${labelValue(r.hosting)}"`, 1),
  },
  {
    name: "mxops_app_technical_contacts",
    help: "Technical contacts an app names.",
    series: (r, emit) => emit("", r.contacts),
  },
  {
    name: "mxops_license_expiry_timestamp_seconds",
    help: "End of the license's last valid day (Unix seconds).",
    series: (r, emit) => r.expiry !== undefined && emit("", r.expiry),
  },
  {
    name: "mxops_license_days_remaining",
    help: "Whole days until the license expires.",
    series: (r, emit) => r.daysRemaining !== undefined && emit("", r.daysRemaining),
  },
  {
    name: "mxops_license_state",
    help: "License state as a state set: 1 for the current state, 0 for the others.",
    series: (r, emit) => {
      for (const s of LicenseState.options) emit(`,state="${s}"`, s === r.state ? 1 : 0);
    },
  },
];

export function appMetrics(registry: Registry): AppMetrics {
  const records = new Map<string, AppRecord>();
  // Apps in the order they were first set.
  addTextCollector(registry, () =>
    recordGauges(
      FAMILIES,
      records.values(),
      (r) => `namespace="${labelValue(r.namespace)}",app="${labelValue(r.name)}"`,
    ),
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
