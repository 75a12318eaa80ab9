// Usage and alert metrics for Prometheus, on the runtime's registry. Labels are bounded: namespace, app,
// volume (claim names of the app's workload), policy, rule, severity; never a person or an email.
//
// Each policy evaluation hands over what it found for its apps, replacing what its previous evaluation found:
// an app that left the policy (or was deleted) and a deleted policy lose their series. Kept as one small
// record per app and written out as text when Prometheus scrapes (as src/controllers/app-metrics.ts does),
// not as prom-client series: at 10,000 apps that would be 60,000 series objects with their label objects.
import { Counter, Gauge, type Registry } from "prom-client";
import {
  addTextCollector,
  type EmitSeries,
  labelValue,
  type RecordGauge,
  recordGauges,
} from "../runtime/metrics.ts";
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

/** One app's usage, once however many policies pick it. */
interface UsageRow {
  namespace: string;
  app: string;
  usage: AppUsage;
}

/** One app's rule in one policy. */
interface RuleRow {
  namespace: string;
  policy: string;
  app: string;
  rule: string;
  severity: AlertSeverity;
}

const perVolume = (value: (v: AppUsage["volumes"][number]) => number) => (r: UsageRow, emit: EmitSeries) => {
  for (const v of r.usage.volumes) emit(`,volume="${labelValue(v.volume)}"`, value(v));
};

const USAGE: RecordGauge<UsageRow>[] = [
  {
    name: "mxops_app_cpu_usage_cores",
    help: "CPU in use by the app's pods, in cores.",
    series: ({ usage: u }, emit) => u.cpuCores !== undefined && emit("", u.cpuCores),
  },
  {
    name: "mxops_app_cpu_usage_ratio",
    help: "CPU in use as a ratio (0..1) of the pods' CPU limits.",
    series: ({ usage: u }, emit) => u.cpuRatio !== undefined && emit("", unit(u.cpuRatio)),
  },
  {
    name: "mxops_app_memory_usage_ratio",
    help: "Memory in use as a ratio (0..1) of the pods' memory limits.",
    series: ({ usage: u }, emit) => u.memoryRatio !== undefined && emit("", unit(u.memoryRatio)),
  },
  {
    name: "mxops_app_disk_used_bytes",
    help: "Bytes used on a volume of the app.",
    series: perVolume((v) => v.usedBytes),
  },
  {
    name: "mxops_app_disk_capacity_bytes",
    help: "Capacity of a volume of the app, in bytes.",
    series: perVolume((v) => v.capacityBytes),
  },
  {
    name: "mxops_app_disk_usage_ratio",
    help: "Used ratio (0..1) of a volume of the app.",
    series: perVolume((v) => unit(v.ratio)),
  },
];

/**
 * A `_ratio` clamped to 0..1, as the metrics' contract says: usage can exceed the template's limits (a sidecar
 * injected into the pods, old pods of a rollout that lowered them). Alerts read the raw ratio.
 */
function unit(ratio: number): number {
  return Math.min(1, Math.max(0, ratio));
}

const ALERT_STATE: RecordGauge<RuleRow> = {
  name: "mxops_alert_state",
  help: "Alert severity of a rule for an app as a state set: 1 for the current severity (Ok, Warning, Critical, Unknown).",
  series: (r, emit) => {
    for (const s of ALERT_SEVERITIES) emit(`,severity="${s}"`, s === r.severity ? 1 : 0);
  },
};

/** The families in Prometheus's text format (0.0.4). An app picked by several policies has its usage once. */
function* usageExposition(policies: Iterable<PolicyFindings>): Generator<string> {
  const usage = new Map<string, UsageRow>();
  const rules: RuleRow[] = [];
  for (const { namespace, policy, apps } of policies)
    for (const [app, found] of apps) {
      const key = `${namespace}/${app}`;
      if (found.usage && !usage.has(key)) usage.set(key, { namespace, app, usage: found.usage });
      for (const { rule, severity } of found.rules) rules.push({ namespace, policy, app, rule, severity });
    }
  const ns = (namespace: string) => `namespace="${labelValue(namespace)}"`;
  yield* recordGauges(USAGE, usage.values(), (r) => `${ns(r.namespace)},app="${labelValue(r.app)}"`);
  yield* recordGauges(
    [ALERT_STATE],
    rules,
    (r) =>
      `${ns(r.namespace)},policy="${labelValue(r.policy)}",app="${labelValue(r.app)}",rule="${labelValue(r.rule)}"`,
  );
}

export class UsageExporter {
  private readonly findings = new Map<string, PolicyFindings>();
  readonly lag: Gauge<"namespace" | "policy">;
  readonly evaluations: Counter<"result">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.lag = new Gauge({
      name: "mxops_alert_evaluation_lag_seconds",
      help: "Age of the oldest usage sample used in the policy's last evaluation (no series while it had none).",
      labelNames: ["namespace", "policy"],
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
    this.lag.remove({ namespace, policy });
  }

  /** How old the oldest sample an evaluation used was; none used (no data, the source down): no series. */
  setLag(namespace: string, policy: string, oldestSampleMs: number | undefined, nowMs: number): void {
    if (oldestSampleMs === undefined) this.lag.remove({ namespace, policy });
    else this.lag.set({ namespace, policy }, Math.max(0, (nowMs - oldestSampleMs) / 1000));
  }
}
