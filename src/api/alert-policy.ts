// AlertPolicy: CPU, memory and disk alert rules for one app (or the apps a selector picks).
import { z } from "zod";
import {
  ATOMIC_STATUS,
  cel,
  conditionsList,
  duration,
  notificationsList,
  ObjectMeta,
  objectName,
  observedGeneration,
} from "./common.ts";

export const Metric = z.enum(["CPU", "Disk", "Memory"]);
export type Metric = z.infer<typeof Metric>;

export const AlertState = z.enum(["Inactive", "Pending", "Firing", "Resolved", "Unknown"]);
export type AlertState = z.infer<typeof AlertState>;

export const Severity = z.enum(["Ok", "Warning", "Critical", "Recovery"]);
export type Severity = z.infer<typeof Severity>;

const percent = (what: string) => z.number().min(0).max(100).optional().describe(what);

const labelSelector = z
  .object({
    matchLabels: z
      .record(z.string().max(317), z.string().max(63))
      .optional()
      .describe("Apps whose labels contain all of these pairs."),
    matchExpressions: z
      .array(
        z
          .object({
            key: z.string().max(317).describe("The label key."),
            operator: z
              .enum(["In", "NotIn", "Exists", "DoesNotExist"])
              .describe("In, NotIn, Exists or DoesNotExist."),
            values: z.array(z.string().max(63)).max(64).optional().describe("Values for In and NotIn."),
          })
          .strict()
          .describe("A label selector requirement."),
      )
      .max(16)
      .optional()
      .describe("Label selector requirements, all of which must hold."),
  })
  .strict()
  .describe("Selects MendixApps in this namespace by label.");

export const AlertRule = cel(
  z
    .object({
      name: z
        .string()
        .min(1)
        .max(63)
        .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
        .describe("Name of the rule, unique in the policy (lowercase letters, digits, '-')."),
      metric: Metric.describe(
        "What the rule watches: CPU (of the limit), Memory (of the limit) or Disk (per volume).",
      ),
      warningPercent: percent(
        "Usage (percent) at which the rule fires a Warning. Defaults: CPU 75, Memory 90, Disk 75 (Mendix's).",
      ),
      criticalPercent: percent(
        "Usage (percent) at which the rule fires Critical. Defaults: CPU 85, Memory 95, Disk 85 (Mendix's).",
      ),
      for: duration(
        "How long usage must stay over a threshold before firing (default: 5m for CPU, 0s otherwise).",
      ).optional(),
      keepFiringFor: duration(
        "How long the rule keeps firing after usage drops below the threshold.",
      ).optional(),
      clearMarginPercent: z
        .number()
        .min(0)
        .max(50)
        .optional()
        .describe(
          "Hysteresis: usage must drop this many percentage points below a threshold to clear it " +
            "(default: 5 for CPU, 0 otherwise).",
        ),
      predictFullWithin: duration(
        "Disk only: warn early when a linear fit of recent samples predicts the volume full within this time.",
      ).optional(),
    })
    .strict()
    .describe("One alert rule."),
  {
    // With the defaults of the one not set (CPU 75/85, Memory 90/95, Disk 75/85): a warning of 90 alone on a CPU
    // rule would sit above its default critical, and the rule would go straight to Critical.
    rule:
      "(has(self.warningPercent) ? self.warningPercent : (self.metric == 'Memory' ? 90.0 : 75.0)) < " +
      "(has(self.criticalPercent) ? self.criticalPercent : (self.metric == 'Memory' ? 95.0 : 85.0))",
    message:
      "warningPercent must be lower than criticalPercent (where one is not set, its default: CPU 75/85, Memory 90/95, Disk 75/85)",
    fieldPath: ".warningPercent",
  },
  {
    rule: "self.metric == 'Disk' || !has(self.predictFullWithin)",
    message: "predictFullWithin applies to Disk rules only",
    fieldPath: ".predictFullWithin",
  },
);
export type AlertRule = z.infer<typeof AlertRule>;

export const AlertPolicySpec = cel(
  z
    .object({
      appRef: z
        .object({ name: objectName("Name of a MendixApp in this namespace.") })
        .strict()
        .optional()
        .describe("The app this policy applies to. Set exactly one of appRef and appSelector."),
      appSelector: labelSelector
        .optional()
        .describe("The apps (by label) this policy applies to. Set exactly one of appRef and appSelector."),
      rules: z
        .array(AlertRule)
        .min(1)
        .max(32)
        .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] })
        .describe("The alert rules."),
      repeatInterval: duration("How often a still-firing alert is notified again (default 4h).").default(
        "4h",
      ),
      sendResolved: z.boolean().default(true).describe("Notify when an alert resolves (default true)."),
      silencedUntil: z.iso
        .datetime({ offset: true })
        .optional()
        .describe("Until this time (RFC 3339) notifications are muted; alert states are still tracked."),
      suspend: z
        .boolean()
        .default(false)
        .describe("Mute all notifications of this policy; states are still tracked."),
    })
    .strict()
    .describe(
      "Alert settings of one app or of the apps a selector picks. Only their technical contacts may change them.",
    ),
  {
    rule: "has(self.appRef) != has(self.appSelector)",
    message: "set exactly one of appRef and appSelector",
  },
);
export type AlertPolicySpec = z.infer<typeof AlertPolicySpec>;

export const RuleStatus = z
  .object({
    app: z.string().max(253).describe("The MendixApp the state is for."),
    rule: z.string().max(63).describe("The rule's name."),
    volume: z.string().max(253).optional().describe("For Disk rules: the volume."),
    state: AlertState.describe(
      "Inactive, Pending (waiting for `for`), Firing, Resolved or Unknown (no data).",
    ),
    severity: Severity.describe("Ok, Warning, Critical or Recovery."),
    since: z.iso
      .datetime()
      .optional()
      .describe("When the current state began (the `for` timer runs from here)."),
    firingSince: z.iso.datetime().optional().describe("When the alert started firing."),
    clearSince: z.iso
      .datetime()
      .optional()
      .describe("When usage dropped below the threshold (keepFiringFor runs from here)."),
    value: z
      .number()
      .optional()
      .describe(
        "The last observed usage, in whole percent, while Pending or Firing. Inactive rules keep none: the policy's status would be rewritten whenever any app's usage moved. Current usage is in the metrics.",
      ),
    peak: z.number().optional().describe("The highest usage while pending or firing, in percent."),
    lastNotifiedAt: z.iso
      .datetime()
      .optional()
      .describe("When the contact was last notified for this state."),
    notifiedSeverity: Severity.optional().describe(
      "The severity the alert's last notification announced (what Alertmanager was told).",
    ),
    sequence: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("Increases with each notification; part of its idempotency key."),
  })
  .describe("The alert state of one rule for one app.");
export type RuleStatus = z.infer<typeof RuleStatus>;

export const AlertPolicyStatus = z
  .object({
    observedGeneration: observedGeneration(),
    conditions: conditionsList(),
    summary: z.string().max(256).optional().describe("One line: how many alerts fire, at which severity."),
    apps: z
      .array(z.string().max(253))
      .max(10000)
      .optional()
      .describe("The apps this policy currently applies to."),
    rules: z
      .array(RuleStatus)
      .max(10000)
      .optional()
      .describe(
        "Alert state per app and rule, for the rules with something to remember: Pending, Firing, Unknown, and Inactive ones that have notified before. An app in `apps` without an entry for a rule is Inactive and has never alerted on it.",
      ),
    notifications: notificationsList(),
  })
  .describe("Observed state of the AlertPolicy.")
  .meta(ATOMIC_STATUS);
export type AlertPolicyStatus = z.infer<typeof AlertPolicyStatus>;

export const AlertPolicy = z.object({
  apiVersion: z.string(),
  kind: z.literal("AlertPolicy"),
  metadata: ObjectMeta,
  spec: AlertPolicySpec,
  status: AlertPolicyStatus.optional(),
});
export type AlertPolicy = z.infer<typeof AlertPolicy>;
