// MendixApp: one Mendix app environment, its technical contacts, license, workload and maintenance window.
import { z } from "zod";
import {
  ATOMIC_STATUS,
  cel,
  conditionsList,
  duration,
  localObjectReference,
  notificationsList,
  ObjectMeta,
  objectName,
  observedGeneration,
} from "./common.ts";

export const Hosting = z.enum(["MendixCloud", "OnPremises"]);
export type Hosting = z.infer<typeof Hosting>;

export const NodePermission = z.enum([
  "ManagePermissions",
  "Deploy",
  "Monitoring",
  "Backups",
  "API",
  "ReceiveAlerts",
]);
export type NodePermission = z.infer<typeof NodePermission>;

export const LicenseState = z.enum(["Active", "Expiring", "Expired", "Unlicensed", "PendingMxID"]);
export type LicenseState = z.infer<typeof LicenseState>;

export const DayOfWeek = z.enum([
  "Monday",
  "Tuesday",
  "Wednesday",
  "Thursday",
  "Friday",
  "Saturday",
  "Sunday",
]);
export type DayOfWeek = z.infer<typeof DayOfWeek>;

const contactRef = z
  .object({ name: objectName("Name of a TechnicalContact in the same namespace.") })
  .strict()
  .describe("A reference to a TechnicalContact in the app's namespace.");

const permission = z
  .object({
    subject: z
      .object({
        kind: z.enum(["User", "Group"]).describe("User or Group, as the API server authenticates them."),
        name: z.string().min(1).max(253).describe("The Kubernetes user or group name."),
      })
      .strict()
      .describe("The team member (a Kubernetes user or group) receiving the rights."),
    rights: z
      .array(NodePermission.describe("One node permission."))
      .min(1)
      .max(6)
      .meta({ "x-kubernetes-list-type": "set" })
      .describe(
        "Mendix node permissions: ManagePermissions (granted only by a technical contact), Deploy (deploy, " +
          "start/stop), Monitoring, Backups, API, ReceiveAlerts (get this app's alerts).",
      ),
  })
  .strict()
  .describe("Node permissions of one team member.");

const HH_MM = "^([01][0-9]|2[0-3]):[0-5][0-9]$";

export const MendixAppSpec = cel(
  z
    .object({
      hosting: Hosting.describe(
        "Where the app runs by Mendix's rules: MendixCloud (exactly one technical contact, Mendix renews the " +
          "license) or OnPremises (one or more contacts, renewal reminders by email).",
      ),
      environment: z
        .string()
        .min(1)
        .max(63)
        .default("production")
        .describe(
          "Environment name used in notifications, e.g. production, acceptance (default production).",
        ),
      technicalContacts: z
        .array(contactRef)
        .min(1)
        .max(16)
        .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] })
        .describe(
          "The app's technical contacts (TechnicalContacts in this namespace). Every app has at least one; " +
            "a MendixCloud app has exactly one. The first is the primary contact, whose MxID gates license activation.",
        ),
      workloadRef: z
        .object({
          kind: z.enum(["Deployment", "StatefulSet"]).describe("Deployment or StatefulSet."),
          name: objectName("Name of the workload in the app's namespace."),
        })
        .strict()
        .optional()
        .describe(
          "The workload running the app: the operator injects the license and scales it for spec.state.",
        ),
      state: z
        .enum(["Running", "Stopped"])
        .default("Running")
        .describe("Running (default) or Stopped: Stopped scales the workload to 0 and Running restores it."),
      license: z
        .object({
          secretRef: localObjectReference(
            "Secret in the app's namespace holding LICENSE_ID (a UUID) and LICENSE_KEY.",
            "Name of the Secret.",
          ),
          expiresAt: z.iso
            .date()
            .optional()
            .describe(
              "The last day (YYYY-MM-DD, UTC) the license is valid; drives Expiring/Expired and reminders.",
            ),
          users: z
            .object({
              named: z
                .number()
                .int()
                .min(0)
                .max(10_000_000)
                .optional()
                .describe("Named users the license allows."),
              concurrent: z
                .number()
                .int()
                .min(0)
                .max(10_000_000)
                .optional()
                .describe("Concurrent users the license allows."),
            })
            .strict()
            .optional()
            .describe("User counts of the license."),
        })
        .strict()
        .optional()
        .describe(
          "The app's Mendix license. Without one the app runs in trial mode (6 users, stopped after 2-4 h).",
        ),
      maintenance: z
        .object({
          dayOfWeek: DayOfWeek.describe("Day of the weekly maintenance window (UTC)."),
          startTime: cel(z.string().max(5).describe("Start of the window, HH:MM in 24-hour UTC time."), {
            rule: `self.matches('${HH_MM}')`,
            message: "must be HH:MM in 24-hour UTC time, e.g. 02:30",
          }),
          duration: duration("Length of the window, at most 3h (e.g. 2h, 90m).", "3h"),
          noticeHours: z
            .number()
            .int()
            .min(1)
            .max(336)
            .default(48)
            .describe("How many hours before each window the contacts are notified (default 48)."),
        })
        .strict()
        .optional()
        .describe(
          "The weekly preferred maintenance window (Mendix Cloud apps: contacts are notified ahead of it).",
        ),
      permissions: cel(
        z
          .array(permission)
          .max(64)
          .optional()
          .describe(
            "Node permissions of team members, turned into RBAC on this app's objects. Only the app's technical " +
              "contacts (and cluster admins) may change them.",
          ),
        {
          rule: "self.all(p, self.exists_one(q, q.subject.kind == p.subject.kind && q.subject.name == p.subject.name))",
          message: "each subject (kind and name) may appear only once; list all its rights in one entry",
        },
      ),
    })
    .strict()
    .describe("The desired state of one Mendix app environment."),
  {
    rule: "self.hosting != 'MendixCloud' || size(self.technicalContacts) == 1",
    message: "a MendixCloud app must have exactly one technical contact (Mendix Cloud allows only one)",
    fieldPath: ".technicalContacts",
  },
);
export type MendixAppSpec = z.infer<typeof MendixAppSpec>;

export const MendixAppStatus = z
  .object({
    observedGeneration: observedGeneration(),
    conditions: conditionsList(),
    contacts: z
      .object({
        count: z.number().int().min(0).describe("Number of technical contacts referenced."),
        primary: z.string().max(253).optional().describe("The primary (first) technical contact."),
        missing: z
          .array(z.string().max(253))
          .max(16)
          .optional()
          .describe("Referenced TechnicalContacts that do not exist."),
        withoutMxid: z
          .array(z.string().max(253))
          .max(16)
          .optional()
          .describe("Referenced contacts that have no MxID."),
        notified: z
          .array(z.string().max(253))
          .max(16)
          .optional()
          .describe("Contacts already told they are this app's technical contact (changes are announced)."),
        noneSince: z.iso
          .datetime()
          .optional()
          .describe("Since when none of the referenced TechnicalContacts exists; unset while one does."),
        defaultContactNotified: z
          .boolean()
          .optional()
          .describe(
            "Whether the cluster's default contact (--default-contact) was told, once per such period.",
          ),
      })
      .optional()
      .describe("What the operator found of the app's technical contacts."),
    license: z
      .object({
        state: LicenseState.describe(
          "Active, Expiring (30 days or less), Expired, Unlicensed or PendingMxID.",
        ),
        expiresAt: z.iso.date().optional().describe("The license's last valid day."),
        daysRemaining: z
          .number()
          .int()
          .optional()
          .describe("Whole days until expiry (negative once expired)."),
        remindersSent: z
          .array(z.number().int())
          .max(8)
          .optional()
          .describe("Renewal reminders already sent, as days before expiry (90, 30, 15, 7)."),
        renewal: z
          .enum(["Mendix", "TechnicalContact"])
          .optional()
          .describe("Who renews: Mendix (MendixCloud) or the technical contact (OnPremises)."),
        expandVia: z
          .enum(["AccountExecutive", "CustomerSuccessManager"])
          .optional()
          .describe(
            "Who the contact asks for more users: AccountExecutive (OnPremises) or CustomerSuccessManager.",
          ),
      })
      .optional()
      .describe(
        "The license lifecycle. What the state means and what to do is the Licensed condition's message.",
      ),
    workload: z
      .object({
        kind: z
          .enum(["Deployment", "StatefulSet"])
          .optional()
          .describe(
            "The workload the operator last changed for the app; one other than spec.workloadRef is handed back (license env removed, a stop undone) on the next reconcile.",
          ),
        name: z.string().max(253).optional().describe("Its name."),
        licenseInjected: z
          .boolean()
          .optional()
          .describe("Whether LICENSE_ID/LICENSE_KEY are set on the workload."),
        rememberedReplicas: z
          .number()
          .int()
          .min(0)
          .optional()
          .describe("Replica count restored when the app is started again."),
      })
      .optional()
      .describe("What the operator did to the app's workload."),
    maintenance: z
      .object({
        nextWindowStart: z.iso.datetime().optional().describe("Start of the next maintenance window."),
        lastNoticeFor: z.iso.datetime().optional().describe("The window whose notice was sent last."),
      })
      .optional()
      .describe("Maintenance window bookkeeping."),
    notifications: notificationsList(),
  })
  .describe("Observed state of the MendixApp.")
  .meta(ATOMIC_STATUS);
export type MendixAppStatus = z.infer<typeof MendixAppStatus>;

export const MendixApp = z.object({
  apiVersion: z.string(),
  kind: z.literal("MendixApp"),
  metadata: ObjectMeta,
  spec: MendixAppSpec,
  status: MendixAppStatus.optional(),
});
export type MendixApp = z.infer<typeof MendixApp>;
