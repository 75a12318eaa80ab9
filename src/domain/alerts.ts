// The alert state machine of one rule for one app: Inactive -> Pending (for) -> Firing (Warning | Critical)
// -> resolved, with hysteresis, keepFiringFor, repeats, muting, and Unknown when there is no data.
// Pure: the previous state comes from AlertPolicy.status, so restarts never reset a timer.
import type { AlertPolicySpec, AlertRule, RuleStatus, Severity } from "../api/alert-policy.ts";
import { parseDuration } from "../api/common.ts";
import { isoSeconds as iso } from "../runtime/clock.ts";

export const DEFAULT_THRESHOLDS = {
  CPU: { warning: 75, critical: 85, forMs: 5 * 60_000, clearMargin: 5 },
  Memory: { warning: 90, critical: 95, forMs: 0, clearMargin: 0 },
  Disk: { warning: 75, critical: 85, forMs: 0, clearMargin: 0 },
} as const;

export const NO_DATA_GRACE_MS = 5 * 60_000;

export interface EffectiveRule {
  name: string;
  metric: AlertRule["metric"];
  warning: number;
  critical: number;
  forMs: number;
  keepFiringForMs: number;
  clearMargin: number;
}

export function effectiveRule(rule: AlertRule): EffectiveRule {
  const d = DEFAULT_THRESHOLDS[rule.metric];
  return {
    name: rule.name,
    metric: rule.metric,
    warning: rule.warningPercent ?? d.warning,
    critical: rule.criticalPercent ?? d.critical,
    forMs: rule.for ? (parseDuration(rule.for) ?? d.forMs) : d.forMs,
    keepFiringForMs: rule.keepFiringFor ? (parseDuration(rule.keepFiringFor) ?? 0) : 0,
    clearMargin: rule.clearMarginPercent ?? d.clearMargin,
  };
}

export type AlertEvent = "Firing" | "Escalated" | "Deescalated" | "Repeat" | "Resolved" | "NoData";

export interface AlertStep {
  status: RuleStatus;
  /** A notification to send, if any (already filtered by muting). */
  notify?: {
    event: AlertEvent;
    severity: Severity;
    value?: number;
    peak?: number;
    firingForMs?: number;
    predicted?: boolean;
  };
}

export interface StepInput {
  rule: EffectiveRule;
  app: string;
  volume?: string;
  previous?: RuleStatus;
  /** Usage in percent; undefined when no data. */
  value?: number;
  nowMs: number;
  repeatIntervalMs: number;
  sendResolved: boolean;
  /** Notifications are muted (silence, suspend, app stopped, maintenance in progress); state still moves. */
  muted: boolean;
  /** Disk rules: the volume is predicted full within the rule's horizon, which warns early. */
  predictedFull?: boolean;
  /**
   * When the app was last seen muted, if lately: a NoData notice's grace counts from then too, so that data
   * missing while muted (a stopped app has no pods) is not announced the moment the mute ends.
   */
  lastMutedMs?: number;
}

const ms = (s?: string) => (s ? Date.parse(s) : Number.NaN);

/** The severity `value` calls for, keeping the current one until usage falls clearMargin below its threshold. */
export function levelFor(rule: EffectiveRule, value: number, current: Severity | undefined): Severity {
  const critClear = current === "Critical" ? rule.critical - rule.clearMargin : rule.critical;
  const warnClear =
    current === "Critical" || current === "Warning" ? rule.warning - rule.clearMargin : rule.warning;
  if (value >= critClear) return "Critical";
  if (value >= warnClear) return "Warning";
  return "Ok";
}

/**
 * Whether a rule's state is kept in the policy's status: every state but Inactive, and an Inactive one that
 * has notified before (its sequence numbers the next alert's notifications, and its lastNotifiedAt is what a
 * restart must not notify again). An Inactive rule that never alerted has nothing to remember: leaving it out
 * keeps a policy's status in proportion to its alerting apps, not to its fleet (~110 bytes an app), and
 * evaluating it again without an entry gives the same Inactive state.
 */
export function remembered(r: RuleStatus): boolean {
  return r.state !== "Inactive" || (r.sequence ?? 0) > 0 || r.lastNotifiedAt !== undefined;
}

/**
 * Whether the rule's alert was announced as it is now: a notification of it went out since it began firing, at
 * its current severity (an escalation while muted was not announced), so Alertmanager was told of it so.
 */
export function announcedWhileFiring(
  r: Pick<RuleStatus, "lastNotifiedAt" | "firingSince" | "since" | "severity" | "notifiedSeverity">,
): boolean {
  const began = Date.parse(r.firingSince ?? r.since ?? "");
  return (
    !!r.lastNotifiedAt &&
    !Number.isNaN(began) &&
    Date.parse(r.lastNotifiedAt) >= began &&
    // A state written before notifiedSeverity was recorded: taken as announced as it is (as it was then).
    (r.notifiedSeverity ?? r.severity) === r.severity
  );
}

/**
 * A rule whose alert is firing: Firing, or in a gap in its data since it was (Unknown with firingSince). A gap
 * neither ends the alert nor starts a new one.
 */
export function firingOrGap(r: Pick<RuleStatus, "state" | "firingSince">): boolean {
  return r.state === "Firing" || (r.state === "Unknown" && !!r.firingSince);
}

/** When the alert began firing, if `previous` is a firing alert's gap in the data (Unknown after Firing). */
function firingBeforeNoData(previous: RuleStatus | undefined): string | undefined {
  if (previous?.state !== "Unknown" || !firingOrGap(previous)) return undefined;
  return previous.severity === "Warning" || previous.severity === "Critical"
    ? previous.firingSince
    : undefined;
}

export function step(input: StepInput): AlertStep {
  const { rule, previous, value, nowMs } = input;
  const base = { app: input.app, rule: rule.name, ...(input.volume ? { volume: input.volume } : {}) };
  const seq = previous?.sequence ?? 0;
  const emit = (
    event: AlertEvent,
    severity: Severity,
    status: RuleStatus,
    extra: Partial<AlertStep["notify"]> = {},
  ): AlertStep => {
    if (input.muted) return { status };
    const announces =
      event === "Firing" || event === "Escalated" || event === "Deescalated" || event === "Repeat";
    return {
      status: {
        ...status,
        lastNotifiedAt: iso(nowMs),
        sequence: (status.sequence ?? seq) + 1,
        ...(announces ? { notifiedSeverity: status.severity } : {}),
      },
      notify: { event, severity, value: status.value, peak: status.peak, ...extra },
    };
  };

  if (value === undefined) {
    // No data is its own state, never OK; its notice waits out a grace period (scrapes can be late). A firing
    // alert keeps when it began firing (and its peak): when data returns it is the same alert, which resolves
    // with a Recovery or goes on firing, never silently dropped nor announced a second time.
    if (previous?.state !== "Unknown") {
      const firingSince = previous?.state === "Firing" ? (previous.firingSince ?? previous.since) : undefined;
      return {
        status: {
          ...base,
          state: "Unknown",
          severity:
            previous?.severity === "Critical" || previous?.severity === "Warning" ? previous.severity : "Ok",
          since: iso(nowMs),
          ...(firingSince
            ? { firingSince, peak: previous?.peak, notifiedSeverity: previous?.notifiedSeverity }
            : {}),
          sequence: seq,
          lastNotifiedAt: previous?.lastNotifiedAt,
        },
      };
    }
    const since = ms(previous.since);
    const noticed = previous.lastNotifiedAt && ms(previous.lastNotifiedAt) >= since;
    const graceFrom = Math.max(since, input.lastMutedMs ?? Number.NEGATIVE_INFINITY);
    if (!noticed && nowMs - graceFrom >= NO_DATA_GRACE_MS) return emit("NoData", "Warning", { ...previous });
    return { status: previous };
  }

  // Whole percent, and kept only while Pending or Firing: a policy's status holds every app's state, so an
  // Inactive app's usage in it would rewrite the whole status (~130 B per app) at nearly every evaluation of
  // a real fleet, where some app's usage always moves. Current usage is in the metrics.
  const rounded = Math.round(value);
  const firingBefore = firingBeforeNoData(previous);
  const wasFiring = previous?.state === "Firing" || firingBefore !== undefined;
  const measured = levelFor(rule, value, wasFiring ? previous?.severity : undefined);
  const level = measured === "Ok" && input.predictedFull ? "Warning" : measured;

  if (wasFiring && previous) {
    const peak = Math.max(previous.peak ?? rounded, rounded);
    // Data back after a gap in a firing alert: it fires on from where it was (since = when it began firing).
    const firing: RuleStatus = firingBefore
      ? { ...previous, state: "Firing", since: firingBefore, value: rounded, peak }
      : { ...previous, value: rounded, peak };
    if (level === "Ok") {
      // keepFiringFor: stay firing for a while after usage drops, so a dip does not resolve and re-fire.
      const clearSince = previous.clearSince ? ms(previous.clearSince) : nowMs;
      if (nowMs - clearSince < rule.keepFiringForMs)
        return { status: { ...firing, clearSince: iso(clearSince) } };
      const resolved: RuleStatus = {
        ...base,
        state: "Inactive",
        severity: "Ok",
        since: iso(nowMs),
        sequence: seq,
        lastNotifiedAt: previous.lastNotifiedAt,
      };
      if (!input.sendResolved) return { status: resolved };
      return emit("Resolved", "Recovery", resolved, {
        value: rounded,
        peak,
        firingForMs: nowMs - ms(previous.firingSince ?? previous.since),
      });
    }
    const steady: RuleStatus = { ...firing };
    delete steady.clearSince;
    if (level !== previous.severity) {
      const changed: RuleStatus = { ...steady, severity: level };
      return emit(level === "Critical" ? "Escalated" : "Deescalated", level, changed);
    }
    const last = ms(previous.lastNotifiedAt);
    if (!Number.isNaN(last) && nowMs - last >= input.repeatIntervalMs) return emit("Repeat", level, steady);
    if (Number.isNaN(last) && !input.muted) return emit("Firing", level, steady); // muted until now: tell once
    return { status: steady };
  }

  if (level === "Ok") {
    // (A value is dropped once from statuses written before Inactive kept none.)
    if (previous?.state === "Inactive" && previous.value === undefined) return { status: previous };
    return {
      status: {
        ...base,
        state: "Inactive",
        severity: "Ok",
        since: previous?.state === "Inactive" ? previous.since : iso(nowMs),
        sequence: seq,
        lastNotifiedAt: previous?.lastNotifiedAt,
      },
    };
  }
  // Over a threshold: pending until `for` has passed (measured from the first sample over it).
  const pendingSince = previous?.state === "Pending" ? ms(previous.since) : nowMs;
  const peak = Math.max(previous?.state === "Pending" ? (previous.peak ?? rounded) : rounded, rounded);
  if (nowMs - pendingSince < rule.forMs) {
    return {
      status: {
        ...base,
        state: "Pending",
        severity: level,
        since: iso(pendingSince),
        value: rounded,
        peak,
        sequence: seq,
        lastNotifiedAt: previous?.lastNotifiedAt,
      },
    };
  }
  // A new alert numbers its notifications from 1 (its ids are told apart by firingSince), so that its first is
  // "<thread>/1", which mail threads refer to.
  const firing: RuleStatus = {
    ...base,
    state: "Firing",
    severity: level,
    since: iso(nowMs),
    firingSince: iso(nowMs),
    value: rounded,
    peak,
    sequence: 0,
  };
  if (input.muted) return { status: firing };
  return emit("Firing", level, firing, measured === "Ok" ? { predicted: true } : {});
}

export function alertMessage(
  app: string,
  rule: EffectiveRule,
  volume: string | undefined,
  notify: NonNullable<AlertStep["notify"]>,
): { title: string; body: string } {
  const what =
    rule.metric === "Disk"
      ? `Disk usage of ${app}${volume ? ` (volume ${volume})` : ""}`
      : `${rule.metric} usage of ${app}`;
  const v = notify.value === undefined ? "unknown" : `${notify.value}%`;
  switch (notify.event) {
    case "Resolved":
      return {
        title: `${what} is back to normal (${v})`,
        body: `${what} is back to ${v}. The alert fired for ${Math.round((notify.firingForMs ?? 0) / 60_000)} minute(s) and peaked at ${notify.peak}%.`,
      };
    case "NoData":
      return {
        title: `No ${rule.metric} data for ${app}${volume ? ` (volume ${volume})` : ""}`,
        body: `mxops has had no ${rule.metric} usage data for ${app} for over ${NO_DATA_GRACE_MS / 60_000} minutes; its alerts cannot be evaluated.`,
      };
    default: {
      if (notify.predicted) {
        return {
          title: `${what} is predicted to fill up (${v})`,
          body: `${what} is ${v} and rising: at the current rate the volume is full within the rule's prediction horizon (predictFullWithin).`,
        };
      }
      const threshold = notify.severity === "Critical" ? rule.critical : rule.warning;
      const again = notify.event === "Repeat" ? " (still)" : "";
      return {
        title: `${what} is ${notify.severity.toLowerCase()}${again} (${v})`,
        body: `${what} is ${v} (${notify.severity.toLowerCase()} threshold ${threshold}%).`,
      };
    }
  }
}

/** Whether a policy's appSelector (matchLabels and matchExpressions) picks an app with these labels. */
export function selects(
  selector: AlertPolicySpec["appSelector"],
  labels: Record<string, string> = {},
): boolean {
  if (!selector) return false;
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpr = (selector.matchExpressions ?? []).every((e) => {
    const has = e.key in labels;
    const v = labels[e.key] ?? "";
    switch (e.operator) {
      case "In":
        return has && (e.values ?? []).includes(v);
      case "NotIn":
        return !has || !(e.values ?? []).includes(v);
      case "Exists":
        return has;
      case "DoesNotExist":
        return !has;
      default:
        return false;
    }
  });
  return byLabels && byExpr;
}
