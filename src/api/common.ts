// Schema building blocks shared by the three resources: CEL rules, durations, references, conditions.
import { z } from "zod";

export const GROUP = "mxops.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

export interface CelRule {
  rule: string;
  message: string;
  /** JSON path (relative to the node) the error is reported at, e.g. ".technicalContacts". */
  fieldPath?: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
}

/** Attaches CEL validation rules (x-kubernetes-validations) that the API server enforces. */
export function cel<T extends z.ZodType>(schema: T, ...rules: CelRule[]): T {
  return schema.meta({ "x-kubernetes-validations": rules }) as T;
}

const GO_DURATION = /^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a Go-style duration ("90s", "5m", "1h30m") into milliseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  if (!GO_DURATION.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g)) {
    total += Number(m[1]) * (UNIT_MS[m[2] ?? "s"] ?? 0);
  }
  return total;
}

/** A Go-style duration string; the API server checks it with CEL's duration(). */
export function duration(description: string, max?: string) {
  const rules: CelRule[] = [
    {
      rule: `self.matches('${GO_DURATION.source.replaceAll("\\", "\\\\")}')`,
      message: "must be a duration such as 90s, 5m, 1h30m (units ms, s, m, h)",
    },
  ];
  if (max) {
    rules.push({
      rule: `!self.matches('${GO_DURATION.source.replaceAll("\\", "\\\\")}') || duration(self) <= duration('${max}')`,
      message: `must be at most ${max}`,
    });
  }
  return cel(
    z
      .string()
      .max(32)
      .refine(
        (s) => parseDuration(s) !== undefined,
        "must be a duration such as 90s, 5m, 1h30m (units ms, s, m, h)",
      )
      .describe(description),
    ...rules,
  );
}

/** A Kubernetes object name (DNS subdomain). */
export function objectName(description: string) {
  return z
    .string()
    .min(1)
    .max(253)
    .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "must be a lowercase DNS name (a-z, 0-9, '-', '.')")
    .describe(description);
}

/**
 * An email address as the operator mails it: local@domain, without spaces, a display name or brackets. Written so
 * that RE2 (the API server, from the CRD's pattern) and JavaScript read it alike: with the CRD's own "email"
 * format (Go's mail.ParseAddress: "Alice <a@b.c>", "a@corp") the two disagreed, and a contact the API server
 * stored was one the operator could not read.
 */
export function emailAddress(description: string) {
  return (
    z
      .string()
      .max(254)
      // Not \s: RE2's is [\t\n\f\r ] where JavaScript's also takes Unicode spaces; the characters are spelled out.
      .regex(
        /^[^\t\n\f\r @<>()[\],;:"]+@[^\t\n\f\r @<>()[\],;:".]+(\.[^\t\n\f\r @<>()[\],;:".]+)*$/,
        "must be an email address such as alice@example.com",
      )
      .describe(description)
  );
}

export function localObjectReference(description: string, nameDescription: string) {
  return z
    .object({ name: objectName(nameDescription) })
    .strict()
    .describe(description);
}

export const ConditionStatus = z.enum(["True", "False", "Unknown"]);

export const Condition = z
  .object({
    type: z
      .string()
      .min(1)
      .max(316)
      .describe("Type of condition in CamelCase, e.g. Ready, ContactAssigned, Licensed."),
    status: ConditionStatus.describe("True, False or Unknown."),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .describe("Machine-readable CamelCase reason for the condition's last transition."),
    message: z.string().max(32768).describe("Human-readable details: what is wrong and what to do about it."),
    lastTransitionTime: z.iso
      .datetime()
      .describe("When the condition last changed from one status to another."),
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("The .metadata.generation the condition was set for."),
  })
  .describe("A standard Kubernetes condition.");
export type Condition = z.infer<typeof Condition>;

export function conditionsList() {
  return z
    .array(Condition)
    .max(32)
    .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] })
    .optional()
    .describe("Standard conditions: the latest observations of the object's state.");
}

export const observedGeneration = () =>
  z.number().int().min(0).optional().describe("The .metadata.generation the status was computed from.");

/** The object envelope shared by all three kinds. */
export const ObjectMeta = z
  .object({
    name: z.string(),
    namespace: z.string().optional(),
    uid: z.string().optional(),
    generation: z.number().optional(),
    resourceVersion: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    deletionTimestamp: z.string().optional(),
    finalizers: z.array(z.string()).optional(),
  })
  .loose();

/**
 * The most targets one notification can have: 16 contacts on 3 channels and 64 ReceiveAlerts members by email
 * (an app's limits), with room. A target is "<id (253)>/<channel>/<recipient key (user: + 253)>".
 */
const MAX_TARGETS = 128;
const targetList = (description: string) =>
  z.array(z.string().max(640)).max(MAX_TARGETS).optional().describe(description);

/** A notification the operator recorded before sending it (the outbox), so a restart neither loses nor repeats it. */
export const NotificationRecord = z
  .object({
    id: z
      .string()
      .max(253)
      .describe("Idempotency key, stable across restarts; receivers can deduplicate on it."),
    kind: z.string().max(64).describe("What it is about, e.g. LicenseReminder, AlertFiring, Test."),
    severity: z
      .enum(["Ok", "Warning", "Critical", "Recovery"])
      .describe("Ok, Warning, Critical or Recovery."),
    title: z.string().max(256).describe("Subject line."),
    body: z
      .string()
      .max(4096)
      .optional()
      .describe(
        "Message text (never contains license keys or secrets); dropped once delivery finished, with labels and threadId.",
      ),
    app: z
      .object({
        namespace: z.string().max(63).describe("Namespace of the app."),
        name: z.string().max(253).describe("Name of the MendixApp."),
        environment: z.string().max(63).optional().describe("Environment of the app."),
      })
      .optional()
      .describe("The app the notification concerns."),
    threadId: z
      .string()
      .max(253)
      .optional()
      .describe("First notification of the same alert, for mail threading."),
    occurredAt: z.iso.datetime().describe("When the reported event happened."),
    labels: z
      .record(z.string().max(63), z.string().max(253))
      .optional()
      .describe("Labels for webhook and Alertmanager receivers."),
    state: z
      .enum(["Pending", "Sent", "Failed"])
      .describe("Pending until every target is delivered or has failed."),
    createdAt: z.iso.datetime().describe("When the intent to send was recorded."),
    completedAt: z.iso.datetime().optional().describe("When delivery finished."),
    delivered: targetList("Targets (notification/channel/recipient) already delivered: never sent again."),
    failed: targetList("Targets that failed past the retry budget."),
    held: targetList(
      "Targets held back by the per-recipient hourly cap: they go out in the recipient's next digest.",
    ),
    message: z.string().max(1024).optional().describe("Why targets failed."),
  })
  .describe("One notification and its delivery state.");
export type NotificationRecord = z.infer<typeof NotificationRecord>;

/**
 * Schema extension for a status the operator alone writes, always whole: atomic for server-side apply, so
 * the API server tracks it as one field (one managedFields entry of a few bytes instead of every field, and
 * less work on every status write: bench:requests measured the operator's status writes ~13% cheaper).
 */
export const ATOMIC_STATUS = { "x-kubernetes-map-type": "atomic" } as const;

/** The most records an outbox (an owner's status.notifications) holds. */
export const MAX_NOTIFICATION_RECORDS = 64;

export function notificationsList() {
  return z
    .array(NotificationRecord)
    .max(MAX_NOTIFICATION_RECORDS)
    .optional()
    .describe("The notification outbox: intents recorded before sending, with their delivery state.");
}
