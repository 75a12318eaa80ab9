// Evaluates AlertPolicies every interval: reads usage (one read per namespace per pass), steps each rule's
// state machine from the state stored in status, notifies the app's contacts through the outbox, exports metrics.

import {
  AlertPolicy,
  type AlertPolicySpec,
  type AlertPolicyStatus,
  type RuleStatus,
} from "../api/alert-policy.ts";
import { API_VERSION, type NotificationRecord, parseDuration } from "../api/common.ts";
import { MendixApp } from "../api/mendix-app.ts";
import type { TechnicalContact } from "../api/technical-contact.ts";
import {
  alertMessage,
  announcedWhileFiring,
  effectiveRule,
  firingOrGap,
  NO_DATA_GRACE_MS,
  remembered,
  selects,
  step,
} from "../domain/alerts.ts";
import { currentOrNextWindow } from "../domain/maintenance.ts";
import { SampleHistory, timeUntilFull } from "../domain/prediction.ts";
import { alertTeamMembers, mergeRecipients } from "../domain/recipients.ts";
import { type AppFindings, UsageExporter } from "../metrics/exporter.ts";
import { parseQuantity } from "../metrics/quantity.ts";
import type { UsageSource } from "../metrics/sources.ts";
import {
  type AppUsage,
  aggregateUsage,
  mountsClaim,
  type NamespaceUsage,
  type WorkloadShape,
} from "../metrics/usage.ts";
import type { FiringAlert } from "../notify/channels.ts";
import { alertLabels, boundedId, type Notification, type Recipient } from "../notify/message.ts";
import type { NotificationSender, Owner, OwnerObject } from "../notify/sender.ts";
import type { KubeObject } from "../runtime/client.ts";
import type { Clock } from "../runtime/clock.ts";
import { isoSeconds as iso } from "../runtime/clock.ts";
import { specOrLabelsChanged } from "../runtime/controller.ts";
import { type Informer, objectKey } from "../runtime/informer.ts";
import type { Manager } from "../runtime/manager.ts";
import { deepEqual, patchStatusIfChanged, setCondition } from "../runtime/status.ts";
import { reportInvalidSpec } from "./invalid-spec.ts";
import { ALERT_POLICIES, MENDIX_APPS, TECHNICAL_CONTACTS } from "./resources.ts";
import { cachedContacts, contactRecipient, recipientOf } from "./technical-contact.ts";
import { DEPLOYMENTS, STATEFULSETS, workloadForCache } from "./workload.ts";

type PolicyObject = KubeObject & { spec: AlertPolicy["spec"]; status?: AlertPolicyStatus };
type AppObject = KubeObject & { spec: MendixApp["spec"]; status?: MendixApp["status"] };
interface WorkloadObject extends KubeObject {
  spec?: {
    replicas?: number;
    ordinals?: { start?: number };
    selector?: { matchLabels?: Record<string, string>; matchExpressions?: WorkloadShape["matchExpressions"] };
    template?: {
      spec?: {
        containers?: { resources?: { limits?: { cpu?: string; memory?: string } } }[];
        volumes?: { persistentVolumeClaim?: { claimName: string } }[];
      };
    };
    volumeClaimTemplates?: { metadata: { name: string } }[];
  };
}

/** Which severity a rule shows when it has several volumes: the worst. */
const RANK = { Ok: 0, Unknown: 1, Warning: 2, Critical: 3 } as const;

export function workloadShape(kind: "Deployment" | "StatefulSet", w: WorkloadObject): WorkloadShape {
  const containers = w.spec?.template?.spec?.containers ?? [];
  const sum = (get: (c: (typeof containers)[number]) => string | undefined) => {
    const values = containers.map((c) => parseQuantity(get(c)));
    return values.length && values.every((v) => v !== undefined)
      ? values.reduce((a = 0, b = 0) => a + b, 0)
      : undefined;
  };
  return {
    kind,
    name: w.metadata.name,
    matchLabels: w.spec?.selector?.matchLabels ?? {},
    matchExpressions: w.spec?.selector?.matchExpressions,
    cpuLimitCores: sum((c) => c.resources?.limits?.cpu),
    memoryLimitBytes: sum((c) => c.resources?.limits?.memory),
    claims: (w.spec?.template?.spec?.volumes ?? []).flatMap((v) =>
      v.persistentVolumeClaim ? [v.persistentVolumeClaim.claimName] : [],
    ),
    ...(kind === "StatefulSet"
      ? {
          claimTemplates: (w.spec?.volumeClaimTemplates ?? []).map((t) => t.metadata.name),
          replicas: w.spec?.replicas ?? 1,
          ordinalsStart: w.spec?.ordinals?.start ?? 0,
        }
      : {}),
  };
}

export function registerAlertPolicyController(
  manager: Manager,
  deps: {
    sender: NotificationSender;
    clock: Clock;
    source: UsageSource;
    intervalMs: number;
    alertmanager: boolean;
    /**
     * Told after each evaluation which of the policy's alerts fire (Alertmanager keeps exactly those, whether
     * or not a notification said so); `held`: muted apps' firing alerts, kept as they are but not announced.
     */
    firing?: (namespace: string, policy: string, alerts: FiringAlert[], held: FiringAlert[]) => Promise<void>;
  },
) {
  const policies = manager.informers.informerFor<PolicyObject>(ALERT_POLICIES);
  const apps = manager.informers.informerFor<AppObject>(MENDIX_APPS);
  const contacts = manager.informers.informerFor<KubeObject & { spec: TechnicalContact["spec"] }>(
    TECHNICAL_CONTACTS,
  );
  const deployments = manager.informers.informerFor<WorkloadObject>(DEPLOYMENTS, {
    transform: workloadForCache,
  });
  const statefulsets = manager.informers.informerFor<WorkloadObject>(STATEFULSETS, {
    transform: workloadForCache,
  });
  const exporter = new UsageExporter(manager.registry);
  const { sender, clock } = deps;
  const usageCache = new Map<string, { at: number; usage: Promise<NamespaceUsage> }>();
  const diskHistory = new SampleHistory();
  /**
   * When each policy's app was last evaluated muted (within the NoData grace after): its NoData notice waits the
   * grace from then. In memory: after a restart the grace counts from when the data went missing, as before.
   */
  const lastMuted = new Map<string, Map<string, number>>();

  /** One source read per namespace per pass, however many policies and apps share it. */
  const namespaceUsage = (namespace: string): Promise<NamespaceUsage> => {
    const now = clock.now();
    const hit = usageCache.get(namespace);
    if (hit && now - hit.at < deps.intervalMs / 2) return hit.usage;
    const usage = deps.source.read(namespace);
    usageCache.set(namespace, { at: now, usage });
    usage.catch(() => usageCache.delete(namespace));
    return usage;
  };

  /** The app's contacts, and its team members with ReceiveAlerts. */
  const addressees = (namespace: string, appName: string) => {
    const app = apps.get(namespace, appName);
    const people = cachedContacts(
      contacts,
      namespace,
      (app?.spec.technicalContacts ?? []).map((c) => c.name),
    );
    return { people, members: alertTeamMembers(app?.spec.permissions) };
  };
  /** Evaluations in a row that found the cached status behind the stored one, by policy. */
  const staleTries = new Map<string, number>();
  const tellFiring = async (
    namespace: string,
    policy: string,
    alerts: FiringAlert[],
    held: FiringAlert[],
    log: { warn(o: object, msg: string): void },
  ) => {
    // Alertmanager down: its copies lapse at their endsAt, and the next evaluation tells it again.
    await deps.firing?.(namespace, policy, alerts, held).catch((err: unknown) => {
      log.warn({ err: (err as Error).message }, "could not update Alertmanager's firing alerts");
    });
  };
  const recipientsFor = (namespace: string, appName: string) => async (): Promise<Recipient[]> => {
    const { people, members } = addressees(namespace, appName);
    const recipients: Recipient[] = [];
    for (const c of people) recipients.push(await contactRecipient(manager, c, deps.alertmanager));
    return mergeRecipients(recipients, members);
  };

  /**
   * The apps a policy's selector picks, kept (as cache keys) while no app of the cache was added, deleted or
   * relabelled: every evaluation otherwise copied and filtered the whole app cache (10,000 apps under 100
   * policies: a million label matches per interval; ~13 s of CPU in a profile of their convergence).
   */
  const selections = new Map<string, { version: number; selector: string; keys: string[] }>();
  const selectedApps = (
    namespace: string,
    name: string,
    selector: AlertPolicySpec["appSelector"],
  ): AppObject[] => {
    const version = apps.membershipVersion();
    const key = `${namespace}/${name}`;
    const selectorKey = JSON.stringify(selector ?? null);
    const hit = selections.get(key);
    if (hit && hit.version === version && hit.selector === selectorKey)
      return hit.keys.map((k) => apps.getByKey(k)).filter((a): a is AppObject => !!a);
    const picked = apps.list(namespace).filter((a) => selects(selector, a.metadata.labels));
    selections.set(key, { version, selector: selectorKey, keys: picked.map(objectKey) });
    return picked;
  };

  /** The policies that pick `app`: by name (spec.appRef) or by its labels (spec.appSelector). */
  const policiesOf = (app: KubeObject) =>
    policies
      .list(app.metadata.namespace)
      .filter((p) =>
        p.spec?.appRef
          ? p.spec.appRef.name === app.metadata.name
          : selects(p.spec?.appSelector, app.metadata.labels),
      )
      .map((p) => `${p.metadata.namespace}/${p.metadata.name}`);

  return manager.addController<PolicyObject>({
    name: "alertpolicy",
    primary: policies,
    concurrency: 2,
    related: [
      {
        informer: apps as unknown as Informer<KubeObject>,
        map: policiesOf,
        // What an evaluation reads of an app: whether it exists, its labels (selection) and its spec (workload,
        // environment). Not its status or finalizers: with every app event evaluating every policy of the
        // namespace, 1,000 apps under 10 policies cost 7,959 policy reconciles while converging.
        updateNeedsWork: specOrLabelsChanged,
      },
    ],
    reconcile: async ({ namespace, name }, { log }) => {
      if (!namespace) return;
      const raw = policies.get(namespace, name);
      if (!raw) {
        exporter.removePolicy(namespace, name);
        selections.delete(`${namespace}/${name}`);
        staleTries.delete(`${namespace}/${name}`);
        lastMuted.delete(`${namespace}/${name}`);
        await tellFiring(namespace, name, [], [], log);
        return;
      }
      const now = clock.now();
      const generation = raw.metadata.generation;
      const parsed = AlertPolicy.safeParse({ ...raw, apiVersion: raw.apiVersion ?? API_VERSION });
      if (!parsed.success) {
        exporter.removePolicy(namespace, name);
        lastMuted.delete(`${namespace}/${name}`);
        await reportInvalidSpec(manager, ALERT_POLICIES, raw, parsed.error, new Date(now));
        return;
      }
      const spec = parsed.data.spec;
      const owner: Owner = { rt: ALERT_POLICIES, namespace, name };
      sender.resume(owner, raw as unknown as OwnerObject, (r: NotificationRecord) => ({
        recipients: recipientsFor(namespace, r.app?.name ?? ""),
      }));

      const targets = spec.appRef
        ? [apps.get(namespace, spec.appRef.name)].filter((a): a is AppObject => !!a)
        : selectedApps(namespace, name, spec.appSelector);
      const silenced = spec.suspend || (spec.silencedUntil ? Date.parse(spec.silencedUntil) > now : false);
      const repeatIntervalMs = parseDuration(spec.repeatInterval) ?? 4 * 3_600_000;
      const previous = raw.status?.rules ?? [];
      // By app, rule and volume: a policy over thousands of apps looks each up once per evaluation.
      const ruleKey = (app: string, rule: string, volume?: string) =>
        `${app}\u0000${rule}\u0000${volume ?? ""}`;
      const previousByKey = new Map(previous.map((r) => [ruleKey(r.app, r.rule, r.volume), r]));
      // Disk volumes whose alert is firing (or was, before a gap in the data): kept through a gap, each in its
      // place, so that data coming back resolves or continues that alert. Others need no place of their own.
      const firingVolumes = new Map<string, string[]>();
      for (const r of previous) {
        if (r.volume === undefined || !firingOrGap(r)) continue;
        const k = ruleKey(r.app, r.rule);
        const list = firingVolumes.get(k);
        if (list) list.push(r.volume);
        else firingVolumes.set(k, [r.volume]);
      }
      /** A rule's own labels on its alerts (alertLabels adds the app's). */
      const ruleLabels = (metric: string, rule: string, volume?: string) => ({
        alertname: `Mendix${metric}`,
        rule,
        policy: name,
        ...(volume ? { volume } : {}),
      });
      const rules: RuleStatus[] = [];
      const notifications: Notification[] = [];
      /** For each notification: its rule's entry in `rules` and the state before, to keep if it is deferred. */
      const transitions = new Map<string, { index: number; previous?: RuleStatus }>();
      let oldestSample: number | undefined;
      let sourceError: string | undefined;

      const findings = new Map<string, AppFindings>();
      // When each app of this policy was last evaluated muted, within the NoData grace after (see lastMuted).
      const policyMuted = lastMuted.get(`${namespace}/${name}`) ?? new Map<string, number>();
      lastMuted.set(`${namespace}/${name}`, policyMuted);
      const mutedApps = new Set<string>();
      let evaluated = 0;
      for (const app of targets) {
        // Let watch events and other reconciles in between: a policy over thousands of apps is seconds of work.
        if (++evaluated % YIELD_EVERY === 0) await new Promise((r) => setImmediate(r));
        const appName = app.metadata.name;
        // Only a maintenance window needs the parsed (defaulted) spec; the rest reads the cached fields.
        const appSpec =
          app.spec.hosting === "MendixCloud" && app.spec.maintenance
            ? MendixApp.shape.spec.safeParse(app.spec)
            : undefined;
        let usage: AppUsage | undefined;
        const ref = app.spec.workloadRef;
        const w = ref
          ? (ref.kind === "Deployment" ? deployments : statefulsets).get(namespace, ref.name)
          : undefined;
        const shape = ref && w ? workloadShape(ref.kind, w) : undefined;
        if (shape) {
          try {
            const read = await namespaceUsage(namespace);
            usage = aggregateUsage(shape, read);
            // One of two sources down: its rules have no data, and the policy says why.
            if (read.errors) sourceError = read.errors.join("; ");
          } catch (err) {
            sourceError = (err as Error).message;
          }
        }
        if (usage?.sampledAt) oldestSample = Math.min(oldestSample ?? usage.sampledAt, usage.sampledAt);
        const appFindings: AppFindings = { usage, rules: [] };
        findings.set(appName, appFindings);
        const maintenance =
          appSpec?.success && appSpec.data.maintenance
            ? currentOrNextWindow(appSpec.data.maintenance, now)
            : undefined;
        const muted =
          silenced ||
          app.spec.state === "Stopped" ||
          (maintenance ? maintenance.start <= now && now < maintenance.end : false);
        if (muted) {
          mutedApps.add(appName);
          policyMuted.set(appName, now);
        }

        for (const ruleSpec of spec.rules) {
          const rule = effectiveRule(ruleSpec);
          const samples: { volume?: string; value?: number }[] =
            rule.metric === "Disk"
              ? diskSamples(usage?.volumes ?? [], [
                  // A firing volume the workload no longer mounts (moved to another claim, a StatefulSet
                  // scaled down) is not kept: its alert ends, as a removed rule's does. While the app is muted,
                  // and through the grace after (a stopped StatefulSet mounts nothing, and is scaled up after the
                  // app is set Running), its alerts are kept as they are; policyMuted has it then.
                  ...(firingVolumes.get(ruleKey(appName, rule.name)) ?? []).filter(
                    (v) => policyMuted.has(appName) || !shape || mountsClaim(shape, v),
                  ),
                  ...(usage?.volumesWithoutData ?? []),
                ])
              : [
                  {
                    value:
                      rule.metric === "CPU"
                        ? usage?.cpuRatio !== undefined
                          ? usage.cpuRatio * 100
                          : undefined
                        : usage?.memoryRatio !== undefined
                          ? usage.memoryRatio * 100
                          : undefined,
                  },
                ];
          let worst = "Ok" as keyof typeof RANK;
          for (const sample of samples) {
            const prev = previousByKey.get(ruleKey(appName, rule.name, sample.volume));
            let predictedFull = false;
            if (rule.metric === "Disk" && ruleSpec.predictFullWithin && sample.value !== undefined) {
              const history = diskHistory.add(
                `${namespace}/${name}/${appName}/${rule.name}/${sample.volume ?? ""}`,
                { t: now, percent: sample.value },
              );
              const left = timeUntilFull(history, now);
              predictedFull = left !== undefined && left <= (parseDuration(ruleSpec.predictFullWithin) ?? 0);
            }
            const result = step({
              rule,
              app: appName,
              volume: sample.volume,
              previous: prev,
              value: sample.value,
              nowMs: now,
              repeatIntervalMs,
              sendResolved: spec.sendResolved,
              muted,
              predictedFull,
              lastMutedMs: policyMuted.get(appName),
            });
            rules.push(result.status);
            const sev: keyof typeof RANK =
              result.status.state === "Unknown"
                ? "Unknown"
                : result.status.state === "Firing" && result.status.severity !== "Recovery"
                  ? result.status.severity
                  : "Ok";
            if (RANK[sev] > RANK[worst]) worst = sev;
            if (result.notify) {
              const text = alertMessage(appName, rule, sample.volume, result.notify);
              // At most 240 characters, so that "/<sequence>" keeps the id within a status' 253.
              const thread = boundedId(
                `alert/${raw.metadata.uid ?? name}/${appName}/${rule.name}${sample.volume ? `/${sample.volume}` : ""}/${result.status.firingSince ?? prev?.firingSince ?? iso(now)}`,
                240,
              );
              const id = `${thread}/${result.status.sequence ?? 0}`;
              transitions.set(id, { index: rules.length - 1, previous: prev });
              notifications.push({
                id,
                threadId: `${thread}/1`,
                kind:
                  result.notify.event === "Resolved"
                    ? "AlertResolved"
                    : result.notify.event === "Escalated"
                      ? "AlertEscalated"
                      : result.notify.event === "NoData"
                        ? "AlertNoData"
                        : "AlertFiring",
                severity: result.notify.severity,
                app: { namespace, name: appName, environment: app.spec.environment },
                ...text,
                occurredAt: iso(now),
                labels: ruleLabels(rule.metric, rule.name, sample.volume),
              });
            }
          }
          appFindings.rules.push({ rule: rule.name, severity: worst });
        }
      }
      exporter.setPolicy(namespace, name, findings);
      // Kept only for apps still evaluated and within the grace: deleted, relabelled out or long unmuted go.
      for (const [app, at] of policyMuted)
        if (!findings.has(app) || at <= now - NO_DATA_GRACE_MS) policyMuted.delete(app);
      if (!policyMuted.size) lastMuted.delete(`${namespace}/${name}`);
      exporter.setLag(namespace, name, oldestSample, now);
      exporter.evaluations.inc({ result: sourceError ? "source_error" : "ok" });

      let base: PolicyObject = raw;
      // The rule states the status keeps (`remembered`): Firing and Unknown ones, which the summary counts, are
      // always among them.
      let kept = rules.filter(remembered);
      let deferred = 0;
      // What no configured channel reaches is not recorded; its rule's state moves on all the same.
      const toRecord = sender.reachable(notifications, (n) => {
        const { people, members } = addressees(namespace, n.app?.name ?? "");
        return [...people.map((c) => recipientOf(c, deps.alertmanager)), ...members];
      });
      if (toRecord.length) {
        const wanted = new Set(toRecord.map((n) => n.id));
        // An alert storm can bring more state changes than the outbox holds: those apps keep their previous
        // state (no `for` timer reset) and are notified from a later evaluation, once deliveries made room.
        const recorded = await sender.recordFitting(
          owner,
          toRecord,
          (status, ids) => {
            const keepPrevious = new Map(
              [...transitions]
                .filter(([id]) => wanted.has(id) && !ids.has(id))
                .map(([, t]) => [t.index, t.previous]),
            );
            kept = rules
              .flatMap((r, i) =>
                keepPrevious.has(i) ? [keepPrevious.get(i)].filter((p): p is RuleStatus => !!p) : [r],
              )
              .filter(remembered);
            status.rules = kept;
          },
          (status) => deepEqual(status.rules ?? [], previous),
        );
        if (recorded.stale) {
          // Decided from a cached status older than the stored one (our last write's watch event is on the
          // way): evaluated again from the stored state, or a state change would be notified twice. Backing
          // off (0.2 s doubling to 5 s) while the cache lags, e.g. behind a stalled watch.
          const tries = (staleTries.get(`${namespace}/${name}`) ?? 0) + 1;
          staleTries.set(`${namespace}/${name}`, tries);
          log.debug({ tries }, "the policy's stored status is newer than the cached one; evaluating again");
          return { requeueAfterMs: Math.min(5000, 200 * 2 ** (tries - 1)) };
        }
        staleTries.delete(`${namespace}/${name}`);
        deferred = recorded.deferred;
        const written = recorded.object;
        if (written) base = written as unknown as PolicyObject;
        for (const record of (written?.status?.notifications ?? []).filter(
          (r) => r.state === "Pending" && wanted.has(r.id),
        )) {
          // `written` came from the API server just now: delivery need not read the (large) policy again.
          sender.submit(
            owner,
            record,
            { recipients: recipientsFor(namespace, record.app?.name ?? "") },
            written,
          );
        }
      }
      if (notifications.length)
        log.info(
          {
            notifications: notifications.map((n) => `${n.kind}/${n.severity}`),
            unreachable: notifications.length - toRecord.length || undefined,
          },
          "alert notifications",
        );
      if (deps.firing) {
        const byName = new Map(targets.map((a) => [a.metadata.name, a]));
        const reaches = new Map<string, boolean>();
        const reachesAlertmanager = (appName: string) => {
          let r = reaches.get(appName);
          if (r === undefined) {
            r = addressees(namespace, appName).people.some((c) => recipientOf(c, true).alertmanager);
            reaches.set(appName, r);
          }
          return r;
        };
        // Firing, or firing before a gap in the data (Unknown with firingSince): the same alert, which a gap
        // must not end and start again in Alertmanager.
        const stillFiring = kept.filter(
          (r) => firingOrGap(r) && (r.severity === "Warning" || r.severity === "Critical"),
        );
        const alerts: FiringAlert[] = [];
        const held: FiringAlert[] = [];
        for (const r of stillFiring) {
          const app = byName.get(r.app);
          const metric = spec.rules.find((x) => x.name === r.rule)?.metric;
          if (!app || !metric || !reachesAlertmanager(r.app)) continue;
          const alert: FiringAlert = {
            // The labels its notifications carry: Alertmanager tells alerts apart by them.
            labels: alertLabels({
              kind: "AlertFiring",
              app: { namespace, name: r.app, environment: app.spec.environment },
              labels: ruleLabels(metric, r.rule, r.volume),
            }),
            severity: r.severity === "Critical" ? "critical" : "warning",
            startsAt: r.firingSince ?? iso(now),
            summary: `${r.app}: ${r.rule} ${r.severity}${r.volume ? ` (${r.volume})` : ""}`,
          };
          // A muted app's firing alert is neither announced nor changed, but kept if Alertmanager has it: it
          // had it if the alert was announced while firing (a notification of it recorded since it began).
          if (mutedApps.has(r.app)) held.push({ ...alert, announced: announcedWhileFiring(r) });
          else alerts.push(alert);
        }
        await tellFiring(namespace, name, alerts, held, log);
      }
      const firing = kept.filter((r) => r.state === "Firing");
      const summary = firing.length
        ? `Firing: ${["Critical", "Warning"].map((s) => `${firing.filter((r) => r.severity === s).length} ${s}`).join(", ")}`
        : kept.some((r) => r.state === "Unknown")
          ? "Unknown: no data"
          : "OK";
      await patchStatusIfChanged(manager.client, ALERT_POLICIES, base, (current) => ({
        ...current,
        observedGeneration: generation,
        apps: targets.map((a) => a.metadata.name).sort(),
        rules: kept,
        summary,
        conditions: setCondition(
          current?.conditions,
          sourceError
            ? {
                type: "Ready",
                status: "False",
                reason: "UsageSourceFailed",
                message: `${deps.source.name}: ${sourceError}`.slice(0, 2048),
                observedGeneration: generation,
              }
            : targets.length
              ? {
                  type: "Ready",
                  status: "True",
                  reason: "Evaluated",
                  message: `${targets.length} app(s) evaluated`,
                  observedGeneration: generation,
                }
              : {
                  type: "Ready",
                  status: "False",
                  reason: "NoApps",
                  message: "no MendixApp matches appRef/appSelector",
                  observedGeneration: generation,
                },
          new Date(now),
        ),
      }));
      if (deferred) {
        log.info({ deferred }, "outbox full: state changes deferred until deliveries make room");
        return { requeueAfterMs: Math.min(deps.intervalMs, 1000) };
      }
      return { requeueAfterMs: untilDue(`${namespace}/${name}`, clock.now(), deps.intervalMs) };
    },
  });
}

/** Apps evaluated between two yields to the event loop. */
const YIELD_EVERY = 50;

/**
 * Milliseconds until the policy `key` is due again: every interval, at a phase of its own (a hash of its key),
 * so that many policies spread over the interval instead of all evaluating at once (after a start, together,
 * they would stay in step and stall the process's other work once per interval).
 */
export function untilDue(key: string, nowMs: number, intervalMs: number): number {
  let h = 2166136261;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
  const phase = (h >>> 0) % intervalMs;
  const since = (((nowMs - phase) % intervalMs) + intervalMs) % intervalMs;
  return intervalMs - since;
}

/**
 * A Disk rule's samples: each volume the source reports, and each it does not that is firing or that the
 * workload mounts (without a value: Unknown, which keeps a firing alert's place, so data coming back resolves or
 * continues it); with neither, one sample for the app.
 */
export function diskSamples(
  reported: { volume: string; ratio: number }[],
  expected: string[],
): { volume?: string; value?: number }[] {
  const samples: { volume?: string; value?: number }[] = reported.map((v) => ({
    volume: v.volume,
    value: v.ratio * 100,
  }));
  for (const volume of new Set(expected))
    if (!reported.some((v) => v.volume === volume)) samples.push({ volume });
  return samples.length ? samples : [{}];
}
