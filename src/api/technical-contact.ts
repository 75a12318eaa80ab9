// TechnicalContact: the person accountable for Mendix apps, and how to reach them.
import { z } from "zod";
import {
  ATOMIC_STATUS,
  cel,
  conditionsList,
  emailAddress,
  localObjectReference,
  notificationsList,
  ObjectMeta,
  objectName,
  observedGeneration,
} from "./common.ts";

const identityName = z.string().min(1).max(253);

export const TechnicalContactSpec = cel(
  z
    .object({
      displayName: z.string().min(1).max(256).describe("The person's name as shown in notifications."),
      email: emailAddress("Where license reminders, maintenance notices and alerts are sent by email."),
      mxid: emailAddress(
        "The person's Mendix account id (MxID, an email-style login). Required before any app naming this " +
          "person as primary contact can have its license activated. Once set it can never change.",
      ).optional(),
      identities: z
        .object({
          users: z
            .array(identityName.describe("A Kubernetes user name."))
            .max(64)
            .meta({ "x-kubernetes-list-type": "set" })
            .optional()
            .describe(
              "Kubernetes user names (as the API server authenticates them) that act as this person.",
            ),
          groups: z
            .array(identityName.describe("A Kubernetes group name."))
            .max(64)
            .meta({ "x-kubernetes-list-type": "set" })
            .optional()
            .describe("Kubernetes groups whose members act as this person."),
        })
        .strict()
        .optional()
        .describe(
          "The Kubernetes identities of this person: they may change the alert settings and node permissions " +
            "of the apps this person is technical contact of.",
        ),
      channels: z
        .object({
          email: z
            .object({
              enabled: z.boolean().default(true).describe("Send notifications to spec.email (default true)."),
            })
            .strict()
            .optional()
            .describe("Email delivery."),
          webhook: z
            .object({
              url: cel(
                z
                  .url()
                  .max(2048)
                  .describe("HTTPS (or HTTP inside the cluster) endpoint receiving signed JSON alerts."),
                {
                  rule: "self.startsWith('https://') || self.startsWith('http://')",
                  message: "must be an http:// or https:// URL",
                },
              ),
              secretRef: localObjectReference(
                "Secret in the same namespace whose key `secret` holds the HMAC-SHA256 signing key.",
                "Name of the Secret.",
              ).optional(),
            })
            .strict()
            .optional()
            .describe("Signed webhook delivery (Mendix alert-webhook format, HMAC-SHA256 signed)."),
          alertmanager: z
            .object({
              enabled: z
                .boolean()
                .default(false)
                .describe("Forward this person's alerts to the configured Alertmanager."),
            })
            .strict()
            .optional()
            .describe("Alertmanager forwarding."),
        })
        .strict()
        .optional()
        .describe(
          "How this person is notified. Email is always available; webhook and Alertmanager are optional.",
        ),
    })
    .strict()
    .describe("A person who is the technical contact of Mendix apps."),
  {
    rule: "!has(oldSelf.mxid) || (has(self.mxid) && self.mxid == oldSelf.mxid)",
    message: "mxid cannot be changed or removed once set (the MxID of a Mendix account never changes)",
    fieldPath: ".mxid",
  },
);
export type TechnicalContactSpec = z.infer<typeof TechnicalContactSpec>;

export const TechnicalContactStatus = z
  .object({
    observedGeneration: observedGeneration(),
    conditions: conditionsList(),
    assignedApps: z
      .array(objectName("Name of a MendixApp in this namespace."))
      .max(10000)
      .optional()
      .describe("The MendixApps in this namespace that name this person as a technical contact."),
    assignedAppCount: z.number().int().min(0).optional().describe("How many apps this person is contact of."),
    lastTest: z
      .object({
        nonce: z
          .string()
          .max(253)
          .describe("The value of the mxops.dev/send-test annotation that was answered."),
        result: z.string().max(4096).describe("Outcome per channel."),
        at: z.iso.datetime().describe("When the test message was sent."),
      })
      .optional()
      .describe("The last test message sent through this person's channels."),
    notifications: notificationsList(),
  })
  .describe("Observed state of the TechnicalContact.")
  .meta(ATOMIC_STATUS);
export type TechnicalContactStatus = z.infer<typeof TechnicalContactStatus>;

export const TechnicalContact = z.object({
  apiVersion: z.string(),
  kind: z.literal("TechnicalContact"),
  metadata: ObjectMeta,
  spec: TechnicalContactSpec,
  status: TechnicalContactStatus.optional(),
});
export type TechnicalContact = z.infer<typeof TechnicalContact>;
