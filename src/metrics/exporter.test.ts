import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { metricsText } from "../runtime/metrics.ts";
import { type AppFindings, UsageExporter } from "./exporter.ts";

const crm: AppFindings = {
  usage: {
    pods: 2,
    cpuCores: 0.5,
    cpuRatio: 0.25,
    volumes: [{ volume: "crm-data", usedBytes: 50, capacityBytes: 100, ratio: 0.5 }],
  },
  rules: [{ rule: "cpu", severity: "Warning" }],
};

describe("UsageExporter", () => {
  it("writes each app's usage once, the rule states as a state set, and drops what an evaluation no longer found", async () => {
    const registry = new Registry();
    const exporter = new UsageExporter(registry);
    exporter.setPolicy("shop", "cpu", new Map([["crm", crm]]));
    // A second policy picking the same app: its usage is not written twice (a duplicate series is invalid).
    exporter.setPolicy(
      "shop",
      "disk",
      new Map([["crm", { usage: crm.usage, rules: [{ rule: "disk", severity: "Ok" }] }]]),
    );
    let text = await metricsText(registry);
    expect(text.match(/^mxops_app_cpu_usage_ratio\{.*$/gm)).toEqual([
      'mxops_app_cpu_usage_ratio{namespace="shop",app="crm"} 0.25',
    ]);
    expect(text).toContain('mxops_app_cpu_usage_cores{namespace="shop",app="crm"} 0.5\n');
    expect(text).toContain('mxops_app_disk_usage_ratio{namespace="shop",app="crm",volume="crm-data"} 0.5\n');
    expect(text).not.toContain("mxops_app_memory_usage_ratio{");
    expect(text.match(/^mxops_alert_state\{namespace="shop",policy="cpu".*$/gm)).toEqual([
      'mxops_alert_state{namespace="shop",policy="cpu",app="crm",rule="cpu",severity="Ok"} 0',
      'mxops_alert_state{namespace="shop",policy="cpu",app="crm",rule="cpu",severity="Warning"} 1',
      'mxops_alert_state{namespace="shop",policy="cpu",app="crm",rule="cpu",severity="Critical"} 0',
      'mxops_alert_state{namespace="shop",policy="cpu",app="crm",rule="cpu",severity="Unknown"} 0',
    ]);
    expect(text).toContain("# TYPE mxops_alert_state gauge\n");

    // The app left policy "cpu"; policy "disk" was deleted.
    exporter.setPolicy("shop", "cpu", new Map());
    exporter.removePolicy("shop", "disk");
    text = await metricsText(registry);
    expect(text).not.toMatch(/app="crm"/);
  });

  it("keeps every _ratio in 0..1 when usage exceeds the limits (a sidecar, a rollout that lowered them)", async () => {
    const registry = new Registry();
    const over: AppFindings = {
      usage: {
        pods: 2,
        cpuCores: 2.2,
        cpuRatio: 1.1,
        memoryRatio: 1.05,
        volumes: [{ volume: "logs", usedBytes: 110, capacityBytes: 100, ratio: 1.1 }],
      },
      rules: [],
    };
    new UsageExporter(registry).setPolicy("shop", "cpu", new Map([["crm", over]]));
    const text = await metricsText(registry);
    expect(text).toContain('mxops_app_cpu_usage_ratio{namespace="shop",app="crm"} 1\n');
    expect(text).toContain('mxops_app_memory_usage_ratio{namespace="shop",app="crm"} 1\n');
    expect(text).toContain('mxops_app_disk_usage_ratio{namespace="shop",app="crm",volume="logs"} 1\n');
    expect(text).toContain('mxops_app_cpu_usage_cores{namespace="shop",app="crm"} 2.2\n');
  });

  it("keeps the evaluation lag per policy, with no series while an evaluation used no sample", async () => {
    const registry = new Registry();
    const exporter = new UsageExporter(registry);
    exporter.setLag("shop", "cpu", 10_000, 40_000);
    exporter.setLag("shop", "disk", 39_000, 40_000);
    let text = await metricsText(registry);
    expect(text).toContain('mxops_alert_evaluation_lag_seconds{namespace="shop",policy="cpu"} 30');
    expect(text).toContain('mxops_alert_evaluation_lag_seconds{namespace="shop",policy="disk"} 1');
    // The source went down: no sample, so no figure (not a 0 that reads as fresh data).
    exporter.setLag("shop", "cpu", undefined, 70_000);
    exporter.removePolicy("shop", "disk");
    text = await metricsText(registry);
    expect(text).not.toMatch(/mxops_alert_evaluation_lag_seconds\{/);
  });
});
