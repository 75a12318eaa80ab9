import { Gauge, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { metricsText } from "../runtime/metrics.ts";
import { appMetrics } from "./app-metrics.ts";

const lines = async (registry: Registry) =>
  (await metricsText(registry)).split("\n").filter((l) => l.startsWith("mxops_"));

describe("app metrics", () => {
  it("exports each app's contacts, hosting and license as series written out at scrape time", async () => {
    const registry = new Registry();
    const metrics = appMetrics(registry);
    metrics.set({
      namespace: "apps",
      name: "crm",
      hosting: "OnPremises",
      contacts: 2,
      state: "Expiring",
      expiresAt: "2026-12-20",
      daysRemaining: 22,
    });
    metrics.set({ namespace: "apps", name: "hr", hosting: "MendixCloud", contacts: 1, state: "Unlicensed" });
    // A second set replaces the first: the old hosting label is gone, not left at 1.
    metrics.set({ namespace: "apps", name: "hr", hosting: "OnPremises", contacts: 1, state: "Unlicensed" });
    expect(await lines(registry)).toEqual([
      'mxops_app_info{namespace="apps",app="crm",hosting="OnPremises"} 1',
      'mxops_app_info{namespace="apps",app="hr",hosting="OnPremises"} 1',
      'mxops_app_technical_contacts{namespace="apps",app="crm"} 2',
      'mxops_app_technical_contacts{namespace="apps",app="hr"} 1',
      `mxops_license_expiry_timestamp_seconds{namespace="apps",app="crm"} ${Date.parse("2026-12-21T00:00:00Z") / 1000}`,
      'mxops_license_days_remaining{namespace="apps",app="crm"} 22',
      'mxops_license_state{namespace="apps",app="crm",state="Active"} 0',
      'mxops_license_state{namespace="apps",app="crm",state="Expiring"} 1',
      'mxops_license_state{namespace="apps",app="crm",state="Expired"} 0',
      'mxops_license_state{namespace="apps",app="crm",state="Unlicensed"} 0',
      'mxops_license_state{namespace="apps",app="crm",state="PendingMxID"} 0',
      'mxops_license_state{namespace="apps",app="hr",state="Active"} 0',
      'mxops_license_state{namespace="apps",app="hr",state="Expiring"} 0',
      'mxops_license_state{namespace="apps",app="hr",state="Expired"} 0',
      'mxops_license_state{namespace="apps",app="hr",state="Unlicensed"} 1',
      'mxops_license_state{namespace="apps",app="hr",state="PendingMxID"} 0',
    ]);
    const text = await metricsText(registry);
    expect(text).toContain(
      "# HELP mxops_license_state License state as a state set: 1 for the current state, 0 for the others.\n# TYPE mxops_license_state gauge\n",
    );
    expect(text.endsWith("} 0\n")).toBe(true);
    metrics.remove("apps", "crm");
    expect((await lines(registry)).filter((l) => l.includes('app="crm"'))).toEqual([]);
    expect(await lines(registry)).toHaveLength(7);
  });

  it("escapes label values and keeps the registry's own metrics first", async () => {
    const registry = new Registry();
    new Gauge({ name: "other_metric", help: "From prom-client.", registers: [registry] }).set(3);
    appMetrics(registry).set({
      namespace: "apps",
      name: 'we"ird\\name',
      hosting: "OnPremises",
      contacts: 0,
      state: "Unlicensed",
    });
    const text = await metricsText(registry);
    expect(text.indexOf("other_metric 3")).toBeLessThan(text.indexOf("mxops_app_info"));
    expect(text).toContain('mxops_app_technical_contacts{namespace="apps",app="we\\"ird\\\\name"} 0');
  });
});
