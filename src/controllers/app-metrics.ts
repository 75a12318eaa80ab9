// Per-app metrics of the contact and license rules (bounded labels: namespace, app, hosting, state).
import { Gauge, type Registry } from "prom-client";
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

export function appMetrics(registry: Registry): AppMetrics {
  const registers = [registry];
  const info = new Gauge({
    name: "mxops_app_info",
    help: "1 per MendixApp, with its hosting model.",
    labelNames: ["namespace", "app", "hosting"],
    registers,
  });
  const contacts = new Gauge({
    name: "mxops_app_technical_contacts",
    help: "Technical contacts an app names.",
    labelNames: ["namespace", "app"],
    registers,
  });
  const expiry = new Gauge({
    name: "mxops_license_expiry_timestamp_seconds",
    help: "End of the license's last valid day (Unix seconds).",
    labelNames: ["namespace", "app"],
    registers,
  });
  const days = new Gauge({
    name: "mxops_license_days_remaining",
    help: "Whole days until the license expires.",
    labelNames: ["namespace", "app"],
    registers,
  });
  const state = new Gauge({
    name: "mxops_license_state",
    help: "License state as a state set: 1 for the current state, 0 for the others.",
    labelNames: ["namespace", "app", "state"],
    registers,
  });
  const hostingOf = new Map<string, string>();
  return {
    set(a) {
      const key = `${a.namespace}/${a.name}`;
      const previous = hostingOf.get(key);
      if (previous && previous !== a.hosting)
        info.remove({ namespace: a.namespace, app: a.name, hosting: previous });
      hostingOf.set(key, a.hosting);
      info.set({ namespace: a.namespace, app: a.name, hosting: a.hosting }, 1);
      contacts.set({ namespace: a.namespace, app: a.name }, a.contacts);
      if (a.expiresAt)
        expiry.set(
          { namespace: a.namespace, app: a.name },
          Date.parse(`${a.expiresAt}T00:00:00Z`) / 1000 + 86_400,
        );
      else expiry.remove({ namespace: a.namespace, app: a.name });
      if (a.daysRemaining !== undefined) days.set({ namespace: a.namespace, app: a.name }, a.daysRemaining);
      else days.remove({ namespace: a.namespace, app: a.name });
      for (const s of LicenseState.options)
        state.set({ namespace: a.namespace, app: a.name, state: s }, s === a.state ? 1 : 0);
    },
    remove(namespace, name) {
      const key = `${namespace}/${name}`;
      const hosting = hostingOf.get(key);
      if (hosting) info.remove({ namespace, app: name, hosting });
      hostingOf.delete(key);
      contacts.remove({ namespace, app: name });
      expiry.remove({ namespace, app: name });
      days.remove({ namespace, app: name });
      for (const s of LicenseState.options) state.remove({ namespace, app: name, state: s });
    },
  };
}
