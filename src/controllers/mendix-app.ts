// Reconciles MendixApps: contacts, the MxID gate and license activation, the license lifecycle with renewal
// reminders, maintenance notices, start/stop, contact changes, and clean-up on deletion. Thin: decisions come
// from src/domain, this file reads the world and performs them.
import { API_VERSION } from "../api/common.ts";
import { MendixApp, MendixAppSpec, type MendixAppStatus } from "../api/mendix-app.ts";
import type { TechnicalContact } from "../api/technical-contact.ts";
import { contactChanges, decideNoContact, resolveContacts } from "../domain/contacts.ts";
import {
  checkLicenseSecret,
  decideLicense,
  NO_MXID,
  nextUtcMidnight,
  remindersSentFor,
  reminderText,
} from "../domain/license.ts";
import { decideMaintenance, maintenanceText } from "../domain/maintenance.ts";
import { desiredGrants } from "../domain/permissions.ts";
import { boundedId, type Notification, type Recipient } from "../notify/message.ts";
import { recordIntents } from "../notify/outbox.ts";
import type { NotificationSender, Owner, OwnerObject } from "../notify/sender.ts";
import { isNotFound, type KubeObject } from "../runtime/client.ts";
import type { Clock } from "../runtime/clock.ts";
import { isoSeconds as iso } from "../runtime/clock.ts";
import { specOrMetadataChanged } from "../runtime/controller.ts";
import type { Informer } from "../runtime/informer.ts";
import type { Manager } from "../runtime/manager.ts";
import { Recent } from "../runtime/recent.ts";
import { type Condition, patchStatusIfChanged, setCondition } from "../runtime/status.ts";
import { appMetrics } from "./app-metrics.ts";
import { reportInvalidSpec } from "./invalid-spec.ts";
import { rbacInformers, syncGrants } from "./rbac.ts";
import {
  appsNamingContact,
  appsOnWorkload,
  indexAppsByContact,
  indexAppsByWorkload,
  MENDIX_APPS,
  TECHNICAL_CONTACTS,
} from "./resources.ts";
import { checkSecretFromCache } from "./secrets.ts";
import { cachedContacts, contactRecipient, recipientOf } from "./technical-contact.ts";
import {
  applyLicenseEnv,
  DEPLOYMENTS,
  hasLicenseEnv,
  licenseInjected,
  removeLicenseEnv,
  replicasBeforeStop,
  STATEFULSETS,
  startWorkload,
  stopWorkload,
  type Workload,
  workloadForCache,
  workloadType,
} from "./workload.ts";

export const FINALIZER = "mxops.dev/workload-cleanup";

type AppObject = KubeObject & { spec: MendixApp["spec"]; status?: MendixAppStatus };
type ContactObject = KubeObject & { spec: TechnicalContact["spec"] };

/** Just the workload of an app, read alone: its deletion must not wait on the rest of a spec it cannot read. */
const AppWorkload = MendixAppSpec.pick({ workloadRef: true }).loose();

/** True when the only change from `a` to `b` is `finalizer` added to the finalizers. */
export function onlyFinalizerAdded(a: KubeObject, b: KubeObject, finalizer: string): boolean {
  if (a.metadata.finalizers?.includes(finalizer) || !b.metadata.finalizers?.includes(finalizer)) return false;
  const same = { ...a, metadata: { ...a.metadata, finalizers: b.metadata.finalizers } };
  return !specOrMetadataChanged(same, b);
}

export function registerMendixAppController(
  manager: Manager,
  deps: {
    sender: NotificationSender;
    clock: Clock;
    alertmanager: boolean;
    /** Email address of the cluster's default contact (rule 1); undefined: none. */
    defaultContact?: string;
    /** How long an app must have had no contact before the default contact is told (default 5 minutes). */
    defaultContactAfterMs?: number;
    concurrency?: number;
    resyncPeriodMs?: number;
  },
) {
  const apps = manager.informers.informerFor<AppObject>(MENDIX_APPS);
  const contacts = manager.informers.informerFor<ContactObject>(TECHNICAL_CONTACTS);
  indexAppsByContact(apps);
  indexAppsByWorkload(apps);
  const workloads = {
    Deployment: manager.informers.informerFor<Workload>(DEPLOYMENTS, { transform: workloadForCache }),
    StatefulSet: manager.informers.informerFor<Workload>(STATEFULSETS, { transform: workloadForCache }),
  };
  const metrics = appMetrics(manager.registry);
  const rbac = rbacInformers(manager);
  const { sender, clock } = deps;
  // Apps sharing a license Secret reconcile in bursts (start-up, resync, a fleet applied at once): a passing
  // verdict on it is reused for a second instead of one read per app. Only the verdict is kept, never the
  // Secret's data; a failing one is read again every time. Secrets are not watched, so a Secret broken later
  // is seen at the app's next reconcile either way.
  const licenseSecretVerdicts = new Recent<ReturnType<typeof checkLicenseSecret>>({
    ttlMs: 1000,
    keep: (v) => v.ok,
  });

  const contactsOf = (namespace: string, names: string[]) => cachedContacts(contacts, namespace, names);

  /** The cluster's default contact, told when an app has none (its notices carry the label defaultContact). */
  const defaultContact: Recipient | undefined = deps.defaultContact
    ? { key: "default-contact", displayName: "Default technical contact", email: deps.defaultContact }
    : undefined;
  const forDefaultContact = (record: { labels?: Record<string, string> }) =>
    record.labels?.defaultContact === "true";
  /** The default contact, for the notices that are its (no app contact gets those). */
  const defaultRecipients = (record: { labels?: Record<string, string> }): Recipient[] =>
    forDefaultContact(record) && defaultContact ? [defaultContact] : [];

  /** Who a notification of the app goes to. */
  const addressees = (namespace: string, appName: string, record: { labels?: Record<string, string> }) => {
    if (forDefaultContact(record)) return [];
    const app = apps.get(namespace, appName);
    // A contact change is told to the one contact it concerns (even a removed one); the rest to all contacts.
    const names = record.labels?.contact
      ? [record.labels.contact]
      : (app?.spec.technicalContacts ?? []).map((c) => c.name);
    return contactsOf(namespace, names);
  };
  const recipientsFor =
    (namespace: string, appName: string, record: { labels?: Record<string, string> }) => async () => {
      const people = defaultRecipients(record);
      for (const c of addressees(namespace, appName, record))
        people.push(await contactRecipient(manager, c, deps.alertmanager));
      return people;
    };

  const owner = (namespace: string, name: string): Owner => ({ rt: MENDIX_APPS, namespace, name });

  // The resourceVersion each of our own workload writes produced: its watch event is the echo of a change
  // this controller made and already accounted for, so it does not reconcile the app a second time.
  // (Anyone else's change to the workload has another resourceVersion and is reconciled.)
  const echoes = new Map<string, string>();
  const workloadKey = (w: KubeObject) => `${w.kind}/${w.metadata.namespace}/${w.metadata.name}`;
  // Events of a workload that arrive while our write to it is in flight (the echo can come before the
  // write's response): held until the response tells which resourceVersion was ours.
  const inflight = new Map<string, string[]>();
  let controller: { enqueue(key: string): void } | undefined;
  /** Performs one of our writes to workload `w` and remembers its resourceVersion as an echo to skip. */
  const own = async (w: Workload, write: () => Promise<KubeObject>): Promise<void> => {
    const key = workloadKey(w);
    inflight.set(key, []);
    let rv: string | undefined;
    try {
      rv = (await write()).metadata.resourceVersion;
    } finally {
      const seen = inflight.get(key) ?? [];
      inflight.delete(key);
      if (rv && !seen.includes(rv)) echoes.set(key, rv);
      // Anything else seen meanwhile was someone else's change (or our write failed): reconcile for it.
      if (seen.some((r) => r !== rv))
        for (const a of appsOnWorkload(apps, w.metadata.namespace ?? "", {
          kind: w.kind ?? "",
          name: w.metadata.name,
        }))
          controller?.enqueue(`${a.metadata.namespace}/${a.metadata.name}`);
    }
  };
  const isEcho = (w: KubeObject) => {
    const key = workloadKey(w);
    const during = inflight.get(key);
    if (during) {
      during.push(w.metadata.resourceVersion ?? "");
      return true;
    }
    const rv = echoes.get(key);
    if (rv === undefined) return false;
    if (rv === w.metadata.resourceVersion) {
      echoes.delete(key);
      return true;
    }
    return false;
  };

  type WorkloadRef = { kind: "Deployment" | "StatefulSet"; name: string };
  /** The workload `ref` names, from the shared cache (its changes reconcile the app: a GET would repeat them). */
  const workloadOf = (namespace: string, ref: WorkloadRef | undefined) => ({
    wrt: ref ? workloadType(ref.kind) : undefined,
    workload: ref ? workloads[ref.kind].get(namespace, ref.name) : undefined,
  });

  /**
   * Takes back what the app added to a workload (the license env, a stop) and leaves it running. Read from the
   * API server, not the cache: this is the app's last look at the workload (it goes, or names another), and a
   * write of ours the cache has not shown yet (the license just applied, a stop) must be taken back too.
   */
  const releaseWorkload = async (namespace: string, workloadRef: WorkloadRef | undefined): Promise<void> => {
    if (!workloadRef) return;
    const wrt = workloadType(workloadRef.kind);
    const workload = await manager.client.get<Workload>(wrt, namespace, workloadRef.name);
    if (!workload) return;
    if (hasLicenseEnv(workload)) await own(workload, () => removeLicenseEnv(manager.client, wrt, workload));
    const remembered = replicasBeforeStop(workload);
    if (workload.spec?.replicas === 0 && remembered)
      await own(workload, () => startWorkload(manager.client, wrt, workload, remembered));
  };

  /**
   * The workload the app's status still names when the app names another (or none) now: handing it back has not
   * worked yet. Undefined when there is none, or another app names it now (it is that app's).
   */
  const previousWorkload = (raw: AppObject, now: WorkloadRef | undefined): WorkloadRef | undefined => {
    const before = raw.status?.workload;
    if (!before?.kind || !before.name || (before.kind === now?.kind && before.name === now.name))
      return undefined;
    const ref = { kind: before.kind, name: before.name };
    const others = appsOnWorkload(apps, raw.metadata.namespace ?? "", ref).some(
      (a) => a.metadata.name !== raw.metadata.name,
    );
    return others ? undefined : ref;
  };

  /** The app is being deleted: its license env is taken off the workload (left running), then the finalizer. */
  const finishDeletion = async (
    raw: AppObject,
    workloadRef: WorkloadRef | undefined,
    log: { info(msg: string): void },
  ): Promise<void> => {
    const namespace = raw.metadata.namespace ?? "";
    const name = raw.metadata.name;
    await releaseWorkload(namespace, workloadRef);
    // A workload the app named before, while handing it back had not worked yet, is handed back too; until that
    // works the finalizer stays and this is retried.
    await releaseWorkload(namespace, previousWorkload(raw, workloadRef));
    if (raw.metadata.finalizers?.includes(FINALIZER)) {
      const finalizers = raw.metadata.finalizers.filter((f) => f !== FINALIZER);
      await manager.client
        .patch(
          MENDIX_APPS,
          namespace,
          name,
          { metadata: { finalizers, resourceVersion: raw.metadata.resourceVersion } },
          "merge",
        )
        .catch((e: unknown) => {
          if (!isNotFound(e)) throw e;
        });
    }
    metrics.remove(namespace, name);
    log.info("app deleted; workload left running without the license env");
  };

  controller = manager.addController<AppObject>({
    name: "mendixapp",
    primary: apps,
    concurrency: deps.concurrency ?? 16,
    // Our own finalizer arriving changes nothing the reconcile reads: no second reconcile for it.
    updateNeedsWork: (oldObj, newObj) =>
      specOrMetadataChanged(oldObj, newObj) && !onlyFinalizerAdded(oldObj, newObj, FINALIZER),
    resyncPeriodMs: deps.resyncPeriodMs ?? 0,
    related: [
      {
        informer: contacts as unknown as Informer<KubeObject>,
        map: (c) =>
          appsNamingContact(apps, c.metadata.namespace ?? "", c.metadata.name).map(
            (a) => `${a.metadata.namespace}/${a.metadata.name}`,
          ),
      },
      ...(["Deployment", "StatefulSet"] as const).map((kind) => ({
        informer: workloads[kind] as unknown as Informer<KubeObject>,
        map: (w: KubeObject) =>
          appsOnWorkload(apps, w.metadata.namespace ?? "", { kind, name: w.metadata.name }).map(
            (a) => `${a.metadata.namespace}/${a.metadata.name}`,
          ),
        updateNeedsWork: (oldObj: KubeObject, newObj: KubeObject) =>
          !isEcho({ ...newObj, kind }) && specOrMetadataChanged(oldObj, newObj),
      })),
    ],
    reconcile: async ({ namespace, name }, { log }) => {
      if (!namespace) return;
      const raw = apps.get(namespace, name);
      if (!raw) {
        metrics.remove(namespace, name);
        return;
      }
      const now = clock.now();
      const generation = raw.metadata.generation;
      // The spec is what is checked; the status is this controller's own (read from `raw` where needed).
      const { status: _status, ...unparsed } = raw;
      const parsed = MendixApp.safeParse({ ...unparsed, apiVersion: raw.apiVersion ?? API_VERSION });
      if (!parsed.success) {
        // Deleted all the same (its spec may predate a stricter schema): the finalizer must not hold it forever.
        if (raw.metadata.deletionTimestamp) {
          await finishDeletion(raw, AppWorkload.safeParse(raw.spec).data?.workloadRef, log);
          return;
        }
        metrics.remove(namespace, name); // its state is unknown until the spec is fixed
        await reportInvalidSpec(manager, MENDIX_APPS, raw, parsed.error, new Date(now));
        return;
      }
      const app = parsed.data;
      const spec = app.spec;
      // Deletion: take back what we added to the workload, leave it running, then let the app go.
      if (raw.metadata.deletionTimestamp) {
        await finishDeletion(raw, spec.workloadRef, log);
        return;
      }
      const { wrt, workload } = workloadOf(namespace, spec.workloadRef);
      // The latest copy of the app: the cache's, or what our own write returned (so the status write
      // below does not conflict with the finalizer patch).
      let base: AppObject = raw;
      // The license Secret is read while the finalizer is added: both only wait on the API server.
      const secretName = spec.license?.secretRef.name;
      const secretRead = secretName
        ? licenseSecretVerdicts.get(`${namespace}/${secretName}`, () =>
            checkSecretFromCache(manager.client, namespace, secretName, (data) =>
              checkLicenseSecret(secretName, data),
            ),
          )
        : undefined;
      secretRead?.catch(() => undefined); // awaited below; not unhandled if the finalizer patch throws
      if (!raw.metadata.finalizers?.includes(FINALIZER)) {
        base = await manager.client.patch<AppObject>(
          MENDIX_APPS,
          namespace,
          name,
          {
            metadata: {
              finalizers: [...(raw.metadata.finalizers ?? []), FINALIZER],
              resourceVersion: raw.metadata.resourceVersion,
            },
          },
          "merge",
        );
      }

      sender.resume(owner(namespace, name), raw as unknown as OwnerObject, (r) => ({
        recipients: recipientsFor(namespace, name, r),
      }));

      // Contacts.
      const referenced = spec.technicalContacts.map((c) => c.name);
      const found = (n: string) => {
        const c = contacts.get(namespace, n);
        return c ? { mxid: c.spec?.mxid } : undefined;
      };
      const contactsResolved = resolveContacts(referenced, found);
      const primary =
        contactsResolved.primary && found(contactsResolved.primary)
          ? { name: contactsResolved.primary, mxid: found(contactsResolved.primary)?.mxid }
          : undefined;

      // License.
      const secretCheck = secretRead ? await secretRead : ({ ok: true } as const);
      const decision = decideLicense({
        hosting: spec.hosting,
        license: spec.license,
        secret: secretCheck,
        primaryContact: primary,
        remindersSent: remindersSentFor(raw.status?.license, spec.license?.expiresAt),
        nowMs: now,
        contactsExist: referenced.some((n) => found(n) !== undefined),
        // Activated by this operator (its status says so), not merely set in a manifest it was handed.
        alreadyActive:
          raw.status?.workload?.licenseInjected === true &&
          !!workload &&
          !!secretName &&
          licenseInjected(workload, secretName),
      });

      // A failing workload or RBAC write must not hold up the rest: the grants (an old contact losing the role's
      // rights), the notices and the status are still done, the status says what failed, and the error is
      // rethrown at the end so that the reconcile is retried.
      const failures: { reason: string; message: string; err: unknown }[] = [];
      let injected = false;
      let remembered: number | undefined;
      let workloadMissing = false;
      // A workload the app no longer names (spec.workloadRef changed or removed) gets back what the app added,
      // unless another app names it now; until that worked, the status keeps naming it, so it is tried again.
      const before = raw.status?.workload;
      const handBack = previousWorkload(raw, spec.workloadRef);
      let handedBack = true;
      try {
        if (handBack) {
          handedBack = false;
          await releaseWorkload(namespace, handBack);
          handedBack = true;
          log.info(
            { workload: `${handBack.kind}/${handBack.name}` },
            "the app names another workload; the license env and a stop were taken back from this one",
          );
        }

        // Workload: license env and replicas.
        if (spec.workloadRef && wrt) {
          if (!workload) workloadMissing = true;
          else {
            const envSecret = secretName ?? "";
            if (decision.activate) {
              if (!licenseInjected(workload, envSecret)) {
                await own(workload, () => applyLicenseEnv(manager.client, wrt, workload, envSecret));
                manager.events.event(
                  raw,
                  "Normal",
                  "LicenseActivated",
                  "ActivateLicense",
                  `LICENSE_ID and LICENSE_KEY of Secret ${envSecret} set on ${spec.workloadRef.kind} ${spec.workloadRef.name}`,
                );
              }
              injected = true;
            } else if (hasLicenseEnv(workload)) {
              await own(workload, () => removeLicenseEnv(manager.client, wrt, workload));
            }
            remembered = replicasBeforeStop(workload);
            const replicas = workload.spec?.replicas ?? 1;
            if (spec.state === "Stopped" && replicas !== 0) {
              await own(workload, async () => {
                const stopped = await stopWorkload(manager.client, wrt, workload);
                remembered = stopped.replicas;
                return stopped.object;
              });
            } else if (spec.state === "Running" && remembered !== undefined) {
              // Running again: the remembered count is restored, or, when the workload already runs (its owner set
              // replicas with the change to Running), the note is dropped, or a later scale to 0 would be undone.
              const to = replicas === 0 ? remembered : undefined;
              await own(workload, () => startWorkload(manager.client, wrt, workload, to));
              remembered = undefined;
            }
          }
        }
      } catch (err) {
        injected = !!(workload && decision.activate && licenseInjected(workload, secretName ?? ""));
        remembered = workload ? replicasBeforeStop(workload) : undefined;
        failures.push({
          reason: "WorkloadUpdateFailed",
          message: `updating ${spec.workloadRef?.kind} ${spec.workloadRef?.name} failed: ${(err as Error).message}`,
          err,
        });
      }

      // Notifications: reminders, maintenance notices, contact changes; recorded with their bookkeeping.
      const notifications: Notification[] = [];
      const appRef = { namespace, name, environment: spec.environment };
      const uid = raw.metadata.uid ?? name;
      if (decision.reminder !== undefined && spec.license?.expiresAt) {
        const text = reminderText(
          name,
          spec.license.expiresAt,
          decision.daysRemaining ?? decision.reminder,
          referenced.join(", "),
        );
        notifications.push({
          id: `reminder/${uid}/${spec.license.expiresAt}/${decision.reminder}`,
          kind: "LicenseReminder",
          severity: "Warning",
          app: appRef,
          ...text,
          occurredAt: iso(now),
        });
      }
      const lastNoticeFor = raw.status?.maintenance?.lastNoticeFor
        ? Date.parse(raw.status.maintenance.lastNoticeFor)
        : undefined;
      const maintenance =
        spec.hosting === "MendixCloud" && spec.maintenance
          ? decideMaintenance(spec.maintenance, lastNoticeFor, now)
          : undefined;
      const noticeFor = maintenance?.noticeFor;
      if (noticeFor !== undefined && spec.maintenance) {
        notifications.push({
          id: `maintenance/${uid}/${iso(noticeFor)}`,
          kind: "MaintenanceNotice",
          severity: "Ok",
          app: appRef,
          ...maintenanceText(name, noticeFor, spec.maintenance.duration),
          occurredAt: iso(now),
        });
      }
      const existing = referenced.filter((n) => found(n));
      const changes = contactChanges(raw.status?.contacts?.notified, existing, referenced);
      for (const c of changes.added) {
        notifications.push({
          id: boundedId(`contact-added/${uid}/${c}/${generation ?? 0}`),
          kind: "ContactAssigned",
          severity: "Ok",
          app: appRef,
          title: `You are now the technical contact of ${name}`,
          body: `You are now a technical contact of the Mendix app ${name} (${spec.hosting}, ${spec.environment}) in namespace ${namespace}. You will receive its license reminders, maintenance notices and alerts.`,
          occurredAt: iso(now),
          labels: { contact: c },
        });
      }
      for (const c of changes.removed) {
        notifications.push({
          id: boundedId(`contact-removed/${uid}/${c}/${generation ?? 0}`),
          kind: "ContactRemoved",
          severity: "Ok",
          app: appRef,
          title: `You are no longer the technical contact of ${name}`,
          body: `You are no longer a technical contact of the Mendix app ${name} in namespace ${namespace}; the rights that came with the role are withdrawn.`,
          occurredAt: iso(now),
          labels: { contact: c },
        });
      }
      // Rule 1: none of the app's contacts exists. Marked (ContactAssigned=False, status.contacts.noneSince),
      // and the cluster's default contact is told once, after a grace period for contacts applied later.
      const noContact = decideNoContact(
        existing.length,
        raw.status?.contacts,
        now,
        !!defaultContact,
        deps.defaultContactAfterMs,
      );
      if (noContact.notify && noContact.noneSince) {
        notifications.push({
          id: `no-contact/${uid}/${noContact.noneSince}`,
          kind: "NoTechnicalContact",
          severity: "Warning",
          app: appRef,
          title: `${name} has no technical contact`,
          body: `The Mendix app ${name} (${spec.hosting}, ${spec.environment}) in namespace ${namespace} has had no technical contact since ${noContact.noneSince}: none of ${referenced.join(", ")} exists as a TechnicalContact there. Nobody receives its license reminders, maintenance notices or alerts. You are told as the cluster's default technical contact; create the TechnicalContact or fix spec.technicalContacts.`,
          occurredAt: iso(now),
          labels: { defaultContact: "true" },
        });
      }
      // What no configured channel reaches is not recorded (its bookkeeping below still says it is done).
      const toRecord = sender.reachable(notifications, (n) => [
        ...defaultRecipients(n),
        ...addressees(namespace, name, n).map((c) => recipientOf(c, deps.alertmanager)),
      ]);

      // An Event for a change of contacts; the first assignment is the app's creation, which its
      // ContactAssigned condition already tells (one Event less per new app).
      const firstAssignment = raw.status?.contacts?.notified === undefined;
      if (!firstAssignment && (changes.added.length || changes.removed.length)) {
        manager.events.event(
          raw,
          "Normal",
          "TechnicalContactChanged",
          "ChangeContact",
          `added: ${changes.added.join(", ") || "-"}; removed: ${changes.removed.join(", ") || "-"}`,
        );
      }

      // Node permissions (and the contacts' own rights) as Roles and RoleBindings on this app's objects.
      const contactIdentities = contactsOf(namespace, existing).map((c) => ({
        name: c.metadata.name,
        identities: c.spec.identities,
      }));
      await syncGrants(manager, raw, desiredGrants(name, spec, contactIdentities), rbac).catch(
        (err: unknown) => {
          failures.push({
            reason: "RBACUpdateFailed",
            message: `updating the Roles and RoleBindings of the app's contacts and node permissions failed: ${(err as Error).message}`,
            err,
          });
        },
      );

      // Status.
      const conditionsFor = (current: Condition[] | undefined): Condition[] => {
        const at = new Date(now);
        let c = setCondition(
          current,
          { ...contactsResolved.condition, type: "ContactAssigned", observedGeneration: generation },
          at,
        );
        c = setCondition(
          c,
          {
            type: "Licensed",
            status: decision.notLicensed ? "False" : "True",
            reason: decision.reason,
            message: decision.message,
            observedGeneration: generation,
          },
          at,
        );
        const notReady = contactsResolved.missing.length
          ? { reason: "ContactNotFound", message: contactsResolved.condition.message }
          : decision.notLicensed
            ? { reason: decision.notLicensed, message: decision.message }
            : workloadMissing
              ? {
                  reason: "WorkloadNotFound",
                  message: `${spec.workloadRef?.kind} ${spec.workloadRef?.name} does not exist in this namespace`,
                }
              : failures[0]
                ? {
                    reason: failures[0].reason,
                    message: failures
                      .map((f) => f.message)
                      .join("; ")
                      .slice(0, 4000),
                  }
                : undefined;
        return setCondition(
          c,
          {
            type: "Ready",
            status: notReady ? "False" : "True",
            reason: notReady?.reason ?? "Reconciled",
            message: notReady?.message ?? "contacts found and license active",
            observedGeneration: generation,
          },
          at,
        );
      };
      // The workload the status names: the one the app names, or the old one while handing it back failed.
      const owned = handedBack ? spec.workloadRef : before;
      const previousLicenseState = raw.status?.license?.state;
      // One status write carries the outcome and the outbox: new notifications are recorded (Pending) with
      // their bookkeeping in the same write, and sent only after it succeeded.
      const written = await patchStatusIfChanged(manager.client, MENDIX_APPS, base, (current) => {
        const sentBefore = remindersSentFor(current?.license, spec.license?.expiresAt);
        const remindersSent =
          decision.reminder !== undefined
            ? [...new Set([...sentBefore, ...decision.remindersSent])].sort((a, b) => b - a)
            : sentBefore;
        const next: MendixAppStatus = {
          ...current,
          notifications: toRecord.length
            ? recordIntents(current?.notifications, toRecord, new Date(now))
            : current?.notifications,
          observedGeneration: generation,
          conditions: conditionsFor(current?.conditions),
          contacts: {
            count: contactsResolved.count,
            primary: contactsResolved.primary,
            missing: contactsResolved.missing.length ? contactsResolved.missing : undefined,
            withoutMxid: contactsResolved.withoutMxid.length ? contactsResolved.withoutMxid : undefined,
            notified: notifications.some((n) => !forDefaultContact(n))
              ? changes.announced
              : current?.contacts?.notified,
            noneSince: noContact.noneSince,
            defaultContactNotified: noContact.defaultContactNotified,
          },
          license: {
            state: decision.state,
            expiresAt: spec.license?.expiresAt,
            daysRemaining: decision.daysRemaining,
            remindersSent: remindersSent.length ? remindersSent : undefined,
            renewal: decision.renewal,
            expandVia: decision.expandVia,
          },
          workload: spec.workloadRef
            ? {
                kind: owned?.kind,
                name: owned?.name,
                licenseInjected: injected,
                rememberedReplicas: remembered,
              }
            : owned && { kind: owned.kind, name: owned.name },
          maintenance: maintenance
            ? {
                nextWindowStart: iso(maintenance.nextWindowStart),
                lastNoticeFor: noticeFor !== undefined ? iso(noticeFor) : current?.maintenance?.lastNoticeFor,
              }
            : undefined,
        };
        return next;
      });
      for (const record of (written.object.status?.notifications ?? []).filter(
        (r) => r.state === "Pending" && toRecord.some((n) => n.id === r.id),
      )) {
        sender.submit(
          owner(namespace, name),
          record,
          { recipients: recipientsFor(namespace, name, record) },
          written.written ? (written.object as unknown as OwnerObject) : undefined,
        );
      }
      // Told when the app enters a state to warn about, and when a kept license's contact loses its MxID.
      const previousLicensed = raw.status?.conditions?.find((c) => c.type === "Licensed")?.message ?? "";
      if (
        decision.warning &&
        (decision.state !== previousLicenseState ||
          (decision.warning === "LicensePendingMxID" && !previousLicensed.includes(NO_MXID)))
      )
        manager.events.event(raw, "Warning", decision.warning, "CheckLicense", decision.message);
      if (contactsResolved.missing.length) {
        manager.events.event(
          raw,
          "Warning",
          "ContactNotFound",
          "ResolveContacts",
          contactsResolved.condition.message,
        );
      }
      metrics.set({
        namespace,
        name,
        hosting: spec.hosting,
        contacts: referenced.length,
        state: decision.state,
        expiresAt: spec.license?.expiresAt,
        daysRemaining: decision.daysRemaining,
      });

      // Retried (with the controller's backoff) until the workload and RBAC writes go through.
      if (failures[0]) throw failures[0].err;

      // Requeue at the next boundary: midnight UTC (days left, reminders, expiry), the maintenance notice,
      // or soon when a license Secret is broken (Secrets are not watched; workloads are).
      const waits = [nextUtcMidnight(now) - now];
      if (maintenance) waits.push(maintenance.recheckAt - now);
      if (!secretCheck.ok) waits.push(30_000);
      if (noContact.recheckAtMs !== undefined) waits.push(noContact.recheckAtMs - now);
      return { requeueAfterMs: Math.max(1000, Math.min(...waits)) };
    },
  });
  return controller;
}
