// Usage and alert metrics for Prometheus, on the runtime's registry. Labels are bounded: namespace, app,
// volume (claim names of the app's workload), policy, rule, severity; never a person or an email.
//
// Each policy evaluation hands over what it found for its apps, replacing what its previous evaluation found:
// an app that left the policy (or was deleted) and a deleted policy lose their series. Kept as one small
// record per app and written out as text when Prometheus scrapes (as src/controllers/app-metrics.ts does),
// not as prom-client series: at 10,000 apps that would be 60,000 series objects with their label objects.
import { Counter, Gauge, type Registry } from "prom-client";
import { addTextCollector, labelValue } from "../runtime/metrics.ts";
import type { AppUsage } from "./usage.ts";

export const ALERT_SEVERITIES = ["Ok", "Warning", "Critical", "Unknown"] as const;
export type AlertSeverity = (typeof ALERT_SEVERITIES)[number];

/** What one evaluation found for one app: its usage, and the worst severity of each rule. */
export interface AppFindings {
  usage?: AppUsage;
  rules: { rule: string; severity: AlertSeverity }[];
}

interface PolicyFindings {
  namespace: string;
  policy: string;
  apps: Map<string, AppFindings>;
}

type Emit = (name: string, labels: string, value: number) => void;

const USAGE_FAMILIES: {
  name: string;
  help: string;
  series: (u: AppUsage, app: string, emit: Emit) => void;
}[] = [
  {
    name: "mxops_app_cpu_usage_cores",
    help: "CPU in use by the app's pods, in cores.",
    series: (u, app, emit) => u.cpuCores !== undefined && emit("mxops_app_cpu_usage_cores", app, u.cpuCores),
  },
  {
    name: "mxops_app_cpu_usage_ratio",
    help: "CPU in use as a ratio (0..1) of the pods' CPU limits.",
    series: (u, app, emit) => u.cpuRatio !== undefined && emit("mxops_app_cpu_usage_ratio", app, u.cpuRatio),
  },
  {
    name: "mxops_app_memory_usage_ratio",
    help: "Memory in use as a ratio (0..1) of the pods' memory limits.",
    series: (u, app, emit) =>
      u.memoryRatio !== undefined && emit("mxops_app_memory_usage_ratio", app, u.memoryRatio),
  },
  {
    name: "mxops_app_disk_used_bytes",
    help: "Bytes used on a volume of the app.",
    series: (u, app, emit) => {
      for (const v of u.volumes)
        emit("mxops_app_disk_used_bytes", `${app},volume="${labelValue(v.volume)}"`, v.usedBytes);
    },
  },
  {
    name: "mxops_app_disk_capacity_bytes",
    help: "Capacity of a volume of the app, in bytes.",
    series: (u, app, emit) => {
      for (const v of u.volumes)
        emit("mxops_app_disk_capacity_bytes", `${app},volume="${labelValue(v.volume)}"`, v.capacityBytes);
    },
  },
  {
    name: "mxops_app_disk_usage_ratio",
    help: "Used ratio (0..1) of a volume of the app.",
    series: (u, app, emit) => {
      for (const v of u.volumes)
        emit("mxops_app_disk_usage_ratio", `${app},volume="${labelValue(v.volume)}"`, v.ratio);
    },
  },
];

const ALERT_STATE = {
  name: "mxops_alert_state",
  help: "Alert severity of a rule for an app as a state set: 1 for the current severity (Ok, Warning, Critical, Unknown).",
};

/** The families in Prometheus's text format (0.0.4). An app picked by several policies has its usage once. */
export function usageExposition(policies: Iterable<PolicyFindings>): string {
  const list = [...policies];
  const out: string[] = [];
  const emit: Emit = (name, labels, value) => out.push(`${name}{${labels}} ${value}\n`);
  for (const f of USAGE_FAMILIES) {
    out.push(`# HELP ${f.name} ${f.help}\n# TYPE ${f.name} gauge\n`);
    const seen = new Set<string>();
    for (const p of list)
      for (const [app, found] of p.apps) {
        const key = `${p.namespace}/${app}`;
        if (!found.usage || seen.has(key)) continue;
        seen.add(key);
        f.series(found.usage, `namespace="${labelValue(p.namespace)}",app="${labelValue(app)}"`, emit);
      }
  }
  out.push(`# HELP ${ALERT_STATE.name} ${ALERT_STATE.help}\n# TYPE ${ALERT_STATE.name} gauge\n`);
  for (const p of list) {
    const prefix = `namespace="${labelValue(p.namespace)}",policy="${labelValue(p.policy)}"`;
    for (const [app, found] of p.apps)
      for (const r of found.rules)
        for (const s of ALERT_SEVERITIES)
          emit(
            ALERT_STATE.name,
            `${prefix},app="${labelValue(app)}",rule="${labelValue(r.rule)}",severity="${s}"`,
            s === r.severity ? 1 : 0,
          );
  }
  return out.join("");
}

export class UsageExporter {
  private readonly findings = new Map<string, PolicyFindings>();
  readonly lag: Gauge;
  readonly evaluations: Counter<"result">;

  constructor(registry: Registry) {
    const registers = [registry];
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
    addTextCollector(registry, () => usageExposition(this.findings.values()));
  }

  /** What an evaluation of the policy found, replacing what the previous one found. */
  setPolicy(namespace: string, policy: string, apps: Map<string, AppFindings>): void {
    this.findings.set(`${namespace}/${policy}`, { namespace, policy, apps });
  }

  /** The policy is gone (or invalid): its series go. */
  removePolicy(namespace: string, policy: string): void {
    this.findings.delete(`${namespace}/${policy}`);
  }
}
