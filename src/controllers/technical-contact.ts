// Reconciles TechnicalContacts: validates them, resumes their pending notifications, and answers the
// mxops.dev/send-test annotation with a test message through every channel of the person.
import { API_VERSION, type NotificationRecord } from "../api/common.ts";
import { TechnicalContact } from "../api/technical-contact.ts";
import { boundedId, type Notification, type Recipient } from "../notify/message.ts";
import type { NotificationSender, Owner, SubmitOptions } from "../notify/sender.ts";
import type { KubeObject } from "../runtime/client.ts";
import type { Clock } from "../runtime/clock.ts";
import { isoSeconds } from "../runtime/clock.ts";
import type { Informer } from "../runtime/informer.ts";
import type { Manager } from "../runtime/manager.ts";
import { patchStatusIfChanged, setCondition } from "../runtime/status.ts";
import { reportInvalidSpec } from "./invalid-spec.ts";
import { appsByContact, appsNamingContact, MENDIX_APPS, TECHNICAL_CONTACTS } from "./resources.ts";
import { secretValue } from "./secrets.ts";

export { TECHNICAL_CONTACTS } from "./resources.ts";

export const SEND_TEST_ANNOTATION = "mxops.dev/send-test";

type ContactObject = TechnicalContact & { status?: TechnicalContact["status"] };

const parsedContacts = new WeakMap<object, TechnicalContact | undefined>();

/**
 * A cached TechnicalContact parsed (undefined if invalid), once per object the cache holds (a change replaces
 * the object). Its status (assignedApps: every app that names the person) is not what readers need and not
 * parsed: parsing it for every app reconcile was ~140 us per app at 2,000 apps.
 */
function parseContact(obj: object): TechnicalContact | undefined {
  if (parsedContacts.has(obj)) return parsedContacts.get(obj);
  const { status: _status, ...rest } = obj as KubeObject & { status?: unknown };
  const parsed = TechnicalContact.safeParse({ ...rest, apiVersion: rest.apiVersion ?? API_VERSION });
  const contact = parsed.success ? parsed.data : undefined;
  parsedContacts.set(obj, contact);
  return contact;
}

/** The valid TechnicalContacts named `names` in `namespace`, from the cache (missing and invalid ones left out). */
export function cachedContacts(
  cache: { get(namespace: string, name: string): object | undefined },
  namespace: string,
  names: string[],
): TechnicalContact[] {
  return names.flatMap((n) => {
    const c = cache.get(namespace, n);
    const contact = c ? parseContact(c) : undefined;
    return contact ? [contact] : [];
  });
}

/**
 * The person behind a TechnicalContact and the channels that reach them, without reading Secrets (a webhook's
 * signing secret is left empty): enough to tell whether anything reaches them.
 */
export function recipientOf(contact: TechnicalContact, alertmanager: boolean): Recipient {
  const { spec, metadata } = contact;
  const recipient: Recipient = { key: `contact:${metadata.name}`, displayName: spec.displayName };
  if (spec.channels?.email?.enabled !== false) recipient.email = spec.email;
  // Only a signed webhook reaches anyone: one without secretRef fails every attempt ("no signing key"), so it
  // must not count as a channel (Reachable, what is recorded).
  if (spec.channels?.webhook?.secretRef) recipient.webhook = { url: spec.channels.webhook.url, secret: "" };
  if (alertmanager && spec.channels?.alertmanager?.enabled) recipient.alertmanager = true;
  return recipient;
}

/**
 * The recipient to send to: recipientOf with the webhook's signing secret, read at each webhook attempt (a
 * failed read is that target's retryable failure, not the whole delivery's).
 */
export async function contactRecipient(
  manager: Manager,
  contact: TechnicalContact,
  alertmanager: boolean,
): Promise<Recipient> {
  const recipient = recipientOf(contact, alertmanager);
  const secretName = contact.spec.channels?.webhook?.secretRef?.name;
  if (recipient.webhook && secretName)
    recipient.webhook.readSecret = async () =>
      (await secretValue(manager.client, contact.metadata.namespace ?? "", secretName, "secret")) ?? "";
  return recipient;
}

/**
 * What a send-test annotation value is answered as (status.lastTest.nonce, the end of the record's id): the value, or
 * for one too long for the id's 253 characters a cut of it with a hash, so any value can be asked for.
 */
export function testNonce(contact: TechnicalContact, value: string): string {
  const prefix = `test/${contact.metadata.uid ?? contact.metadata.name}/`;
  return boundedId(value, Math.max(64, 253 - prefix.length));
}

/** The annotation value (as testNonce gave it) a test record answers: all after "test/<uid>/", slashes and all. */
export function nonceOfTestRecord(id: string): string {
  return id.split("/").slice(2).join("/");
}

export function testNotification(contact: TechnicalContact, nonce: string, nowMs: number): Notification {
  return {
    id: `test/${contact.metadata.uid ?? contact.metadata.name}/${testNonce(contact, nonce)}`,
    kind: "Test",
    severity: "Ok",
    title: "mxops test message",
    body:
      `This is a test message for ${contact.spec.displayName}, technical contact ` +
      `${contact.metadata.namespace}/${contact.metadata.name}, requested with the ${SEND_TEST_ANNOTATION} annotation ` +
      `(${nonce}). If you read this, the channel works.`,
    occurredAt: isoSeconds(nowMs),
    labels: { alertname: "MendixTestMessage", contact: contact.metadata.name },
  };
}

export function registerTechnicalContactController(
  manager: Manager,
  deps: { sender: NotificationSender; clock: Clock; alertmanager: boolean },
) {
  const contacts = manager.informers.informerFor<ContactObject>(TECHNICAL_CONTACTS);
  // The app controller registers the index; the contact controller reads it for status.assignedApps.
  const apps = manager.informers.informerFor<
    KubeObject & { spec?: { technicalContacts?: { name: string }[] } }
  >(MENDIX_APPS);

  const submitOptions =
    (namespace: string, name: string) =>
    (record: NotificationRecord): SubmitOptions => ({
      recipients: async () => {
        const [contact] = cachedContacts(contacts, namespace, [name]);
        return contact ? [await contactRecipient(manager, contact, deps.alertmanager)] : [];
      },
      onComplete: (status, closed, outcomes) => {
        if (record.kind !== "Test") return;
        const nonce = nonceOfTestRecord(record.id);
        const result = outcomes.length
          ? [...outcomes]
              .sort((a, b) => a.channel.localeCompare(b.channel))
              .map(
                (o) =>
                  `${o.channel}: ${o.ok ? "delivered" : o.held ? "held for the hourly digest" : `failed (${o.error})`}`,
              )
              .join("; ")
          : "no channel reaches this contact";
        status.lastTest = {
          nonce,
          result: result.slice(0, 4096),
          at: closed.completedAt ?? isoSeconds(deps.clock.now()),
        };
      },
    });

  return manager.addController<ContactObject>({
    name: "technicalcontact",
    primary: contacts,
    related: [
      {
        informer: apps as unknown as Informer<KubeObject>,
        map: (a) => appsByContact(a),
        // A contact reads only which apps name it: an app's other changes (its finalizer, its spec) need no
        // contact reconcile. At 10,000 apps that was 17,500 contact reconciles during convergence.
        updateNeedsWork: (oldApp, newApp) => appsByContact(oldApp).join() !== appsByContact(newApp).join(),
      },
    ],
    reconcile: async ({ namespace, name }, { log }) => {
      if (!namespace) return;
      const raw = contacts.get(namespace, name);
      if (!raw) return;
      const owner: Owner = { rt: TECHNICAL_CONTACTS, namespace, name };
      const generation = raw.metadata.generation;
      const parsed = TechnicalContact.safeParse({ ...raw, apiVersion: raw.apiVersion ?? API_VERSION });
      const now = new Date(deps.clock.now());
      if (!parsed.success) {
        await reportInvalidSpec(manager, TECHNICAL_CONTACTS, raw, parsed.error, new Date(now));
        return;
      }
      const contact = parsed.data;

      deps.sender.resume(owner, raw, submitOptions(namespace, name));

      const nonce = raw.metadata.annotations?.[SEND_TEST_ANNOTATION];
      if (nonce && raw.status?.lastTest?.nonce !== testNonce(contact, nonce)) {
        const notification = testNotification(contact, nonce, deps.clock.now());
        if (!raw.status?.notifications?.some((r) => r.id === notification.id)) {
          const written = await deps.sender.record(owner, [notification]);
          const record = written?.status?.notifications?.find((r) => r.id === notification.id);
          if (record?.state === "Pending")
            deps.sender.submit(owner, record, submitOptions(namespace, name)(record), written);
          log.info({ nonce }, "test message requested");
        }
      }

      // Whether anything this operator sends reaches the person: notifications nothing reaches are not sent.
      const channels = deps.sender.channelsReaching(recipientOf(contact, deps.alertmanager));
      const reachable = {
        type: "Reachable",
        observedGeneration: generation,
        ...(channels.length
          ? {
              status: "True" as const,
              reason: "ChannelConfigured",
              message: `notifications reach this contact by ${channels.join(", ")}`,
            }
          : {
              status: "False" as const,
              reason: "NoChannel",
              message:
                "no notification channel reaches this contact, so reminders, notices and alerts to it are not sent: email needs the operator's --smtp-host (MXOPS_SMTP_HOST) and spec.email not disabled; or set spec.channels.webhook with its secretRef (a webhook is always signed)",
            }),
      };

      const assignedApps = appsNamingContact(apps, namespace, name)
        .map((a) => a.metadata.name)
        .sort();
      await patchStatusIfChanged(manager.client, TECHNICAL_CONTACTS, raw, (current) => ({
        ...current,
        observedGeneration: generation,
        assignedApps: assignedApps.length ? assignedApps : undefined,
        assignedAppCount: assignedApps.length,
        conditions: setCondition(
          setCondition(current?.conditions, reachable, now),
          {
            type: "Ready",
            status: "True",
            reason: contact.spec.mxid ? "Valid" : "MxIDMissing",
            message: contact.spec.mxid
              ? "contact is valid"
              : "contact has no MxID: licenses of apps with this primary contact cannot be activated until spec.mxid is set",
            observedGeneration: generation,
          },
          now,
        ),
      }));
      return undefined;
    },
  });
}
