// Usage and alert metrics for Prometheus, on the runtime's registry. Labels are bounded: namespace, app,
// volume (claim names of the app's workload), policy, rule, severity; never a person or an email.
import { Counter, Gauge, type Registry } from "prom-client";
import type { AppUsage } from "./usage.ts";

export const ALERT_SEVERITIES = ["Ok", "Warning", "Critical", "Unknown"] as const;

export class UsageExporter {
  private readonly cpuCores: Gauge<"namespace" | "app">;
  private readonly cpuRatio: Gauge<"namespace" | "app">;
  private readonly memoryRatio: Gauge<"namespace" | "app">;
  private readonly diskUsed: Gauge<"namespace" | "app" | "volume">;
  private readonly diskCapacity: Gauge<"namespace" | "app" | "volume">;
  private readonly diskRatio: Gauge<"namespace" | "app" | "volume">;
  private readonly alertState: Gauge<"namespace" | "policy" | "app" | "rule" | "severity">;
  readonly lag: Gauge;
  readonly evaluations: Counter<"result">;
  private readonly volumesOf = new Map<string, string[]>();

  constructor(registry: Registry) {
    const registers = [registry];
    const app = ["namespace", "app"] as const;
    const vol = ["namespace", "app", "volume"] as const;
    this.cpuCores = new Gauge({
      name: "mxops_app_cpu_usage_cores",
      help: "CPU in use by the app's pods, in cores.",
      labelNames: app,
      registers,
    });
    this.cpuRatio = new Gauge({
      name: "mxops_app_cpu_usage_ratio",
      help: "CPU in use as a ratio (0..1) of the pods' CPU limits.",
      labelNames: app,
      registers,
    });
    this.memoryRatio = new Gauge({
      name: "mxops_app_memory_usage_ratio",
      help: "Memory in use as a ratio (0..1) of the pods' memory limits.",
      labelNames: app,
      registers,
    });
    this.diskUsed = new Gauge({
      name: "mxops_app_disk_used_bytes",
      help: "Bytes used on a volume of the app.",
      labelNames: vol,
      registers,
    });
    this.diskCapacity = new Gauge({
      name: "mxops_app_disk_capacity_bytes",
      help: "Capacity of a volume of the app, in bytes.",
      labelNames: vol,
      registers,
    });
    this.diskRatio = new Gauge({
      name: "mxops_app_disk_usage_ratio",
      help: "Used ratio (0..1) of a volume of the app.",
      labelNames: vol,
      registers,
    });
    this.alertState = new Gauge({
      name: "mxops_alert_state",
      help: "Alert severity of a rule for an app as a state set: 1 for the current severity (Ok, Warning, Critical, Unknown).",
      labelNames: ["namespace", "policy", "app", "rule", "severity"],
      registers,
    });
    this.lag = new Gauge({
      name: "mxops_alert_evaluation_lag_seconds",
      help: "Age of the oldest usage sample used in the last evaluation.",
      registers,
    });
    this.evaluations = new Counter({
      name: "mxops_alert_evaluations_total",
      help: "Policy evaluations, by result.",
      labelNames: ["result"],
      registers,
    });
  }

  setUsage(namespace: string, app: string, u: AppUsage | undefined): void {
    const l = { namespace, app };
    const set = (g: Gauge<"namespace" | "app">, v: number | undefined) =>
      v === undefined ? g.remove(l) : g.set(l, v);
    set(this.cpuCores, u?.cpuCores);
    set(this.cpuRatio, u?.cpuRatio);
    set(this.memoryRatio, u?.memoryRatio);
    const key = `${namespace}/${app}`;
    const now = (u?.volumes ?? []).map((v) => v.volume);
    for (const gone of (this.volumesOf.get(key) ?? []).filter((v) => !now.includes(v))) {
      for (const g of [this.diskUsed, this.diskCapacity, this.diskRatio]) g.remove({ ...l, volume: gone });
    }
    this.volumesOf.set(key, now);
    for (const v of u?.volumes ?? []) {
      this.diskUsed.set({ ...l, volume: v.volume }, v.usedBytes);
      this.diskCapacity.set({ ...l, volume: v.volume }, v.capacityBytes);
      this.diskRatio.set({ ...l, volume: v.volume }, v.ratio);
    }
  }

  setAlert(
    namespace: string,
    policy: string,
    app: string,
    rule: string,
    severity: (typeof ALERT_SEVERITIES)[number],
  ): void {
    for (const s of ALERT_SEVERITIES)
      this.alertState.set({ namespace, policy, app, rule, severity: s }, s === severity ? 1 : 0);
  }

  removeAlert(namespace: string, policy: string, app: string, rule: string): void {
    for (const s of ALERT_SEVERITIES) this.alertState.remove({ namespace, policy, app, rule, severity: s });
  }
}
