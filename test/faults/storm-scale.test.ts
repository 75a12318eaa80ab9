// Case a, at scale: an alert storm wider than one policy's outbox (status.notifications, 64 records). One
// AlertPolicy picks its apps by label (as deploy/samples does for a whole tier); all of them cross the
// threshold together. Every app's contact must be told once, and the policy's status must follow the alerts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HttpReceiver } from "../support/http-receiver.ts";
import { startCpuPrometheus } from "../support/prometheus.ts";
import { SmtpInbox } from "./inbox.ts";
import {
  ApiReader,
  type Cluster,
  eventually,
  k,
  killAllOperators,
  MX,
  type MxObject,
  type OperatorProcess,
  report,
  sharedCluster,
  sleep,
  startOperator,
} from "./support.ts";

const NS = "wide-storm";
/**
 * status.notifications holds 64 records (the CRD's maxItems), of which up to 16 completed ones are kept. The
 * operator may see a storm in two evaluations (its usage cache can serve the first apps of a pass the previous
 * read), so 100 apps make sure one evaluation records more than fits, however the storm is split.
 */
const APPS = 100;

describe("an alert storm wider than the outbox of its policy", () => {
  let cp: Cluster;
  let api: ApiReader;
  let inbox: SmtpInbox;
  let prometheus: HttpReceiver;
  let op: OperatorProcess;
  let cores = 0.1;
  const apps = Array.from({ length: APPS }, (_, i) => `wide-${i + 1}`);

  beforeAll(async () => {
    cp = sharedCluster();
    api = new ApiReader(cp.kubeconfig);
    inbox = new SmtpInbox();
    await inbox.start();
    prometheus = await startCpuPrometheus(() => apps.map((app) => [app, cores]));
    await k(cp.kubeconfig)(
      ["apply", "-f", "-"],
      [
        `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}}`,
        `apiVersion: mxops.dev/v1alpha1\nkind: TechnicalContact\nmetadata: {name: alice, namespace: ${NS}}\nspec: {displayName: Alice, email: alice@example.com, mxid: alice@example.com}`,
        ...apps.flatMap((app) => [
          `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ${app}, namespace: ${NS}}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: ${app}}}\n  template:\n    metadata: {labels: {app: ${app}}}\n    spec: {containers: [{name: mendix, image: "mendix/runtime-base:latest", resources: {limits: {cpu: "1"}}}]}`,
          `apiVersion: mxops.dev/v1alpha1\nkind: MendixApp\nmetadata: {name: ${app}, namespace: ${NS}, labels: {tier: wide}}\nspec: {hosting: OnPremises, technicalContacts: [{name: alice}], workloadRef: {kind: Deployment, name: ${app}}}`,
        ]),
        `apiVersion: mxops.dev/v1alpha1\nkind: AlertPolicy\nmetadata: {name: tier-cpu, namespace: ${NS}}\nspec:\n  appSelector: {matchLabels: {tier: wide}}\n  rules: [{name: cpu, metric: CPU, warningPercent: 75, criticalPercent: 85, for: 0s}]`,
      ].join("\n---\n"),
    );
    op = startOperator("wide-storm", cp.kubeconfig, [`--namespaces=${NS}`], {
      MXOPS_SMTP_HOST: "127.0.0.1",
      MXOPS_SMTP_PORT: String(inbox.port),
      MXOPS_SMTP_TLS: "none",
      MXOPS_USAGE_SOURCE: "prometheus",
      MXOPS_PROMETHEUS_URL: prometheus.url,
      MXOPS_EVALUATION_INTERVAL: "1s",
      MXOPS_NOTIFY_HOURLY_CAP: "0",
    });
    await op.waitForLog("controllers started", (l) => l.msg === "controllers started");
    // Every app evaluated with data (10%), so that all of them cross in one and the same evaluation.
    await eventually(
      async () => {
        const p = await api.get<MxObject>(`${MX}/namespaces/${NS}/alertpolicies/tier-cpu`);
        const status = p?.status as { apps?: string[]; rules?: unknown[]; summary?: string } | undefined;
        // OK, not Unknown: evaluated with data. Inactive rules that never alerted have no entry.
        return status?.apps?.length === APPS && status.summary === "OK" && status.rules?.length === 0
          ? true
          : undefined;
      },
      { what: `the policy evaluating all ${APPS} apps at 10%`, timeoutMs: 60_000 },
    );
  });

  afterAll(async () => {
    await killAllOperators();
    await inbox?.stop();
    await prometheus?.close();
    api?.close();
  });

  it(`notifies each of ${APPS} apps crossing the threshold together under one AlertPolicy, once`, async () => {
    cores = 0.8;
    const crossedAt = Date.now();
    const alertMails = () => inbox.mails.filter((m) => m.headers["x-mxops-kind"] === "AlertFiring");
    const refused = (l: { msg: string; err?: unknown }) =>
      l.msg.startsWith("reconcile failed") && JSON.stringify(l.err ?? "").includes("must have at most");
    // Until every app is notified, or the API server refused the policy's outbox (then: watch it retry).
    await eventually(
      async () => (alertMails().length >= APPS || op.logs().some(refused) ? true : undefined),
      { what: "the storm's notifications (or the refusal of its outbox)", timeoutMs: 60_000 },
    ).catch(() => undefined);
    const allInMs = Date.now() - crossedAt;
    await sleep(op.logs().some(refused) ? 15_000 : 3000); // nothing more may come
    const policy = await api.get<MxObject>(`${MX}/namespaces/${NS}/alertpolicies/tier-cpu`);
    const firing = ((policy?.status?.rules as { state: string }[]) ?? []).filter((r) => r.state === "Firing");
    const perApp = new Map<string, Set<string>>();
    for (const m of alertMails()) {
      const app = /of ([a-z0-9-]+)/.exec(m.headers.subject ?? "")?.[1] ?? "?";
      perApp.set(app, (perApp.get(app) ?? new Set()).add(m.headers["x-mxops-delivery-id"] ?? ""));
    }
    report("a-storm-scale", {
      wideStorm: {
        appsUnderOnePolicy: APPS,
        outboxCapacity: 64,
        alertMailsExpected: APPS,
        alertMailsReceived: alertMails().length,
        appsNotified: perApp.size,
        appsNotifiedUnderTwoKeys: [...perApp.values()].filter((ids) => ids.size > 1).length,
        allNotifiedMs: alertMails().length >= APPS ? allInMs : null,
        rulesFiringInStatus: firing.length,
        outboxRefusedByApiServer: op.logs().filter(refused).length,
      },
    });
    // Until 28b78dd the API server refused the outbox write (more than 64 records) on every evaluation: no
    // alert of the policy was ever sent and its rule states stopped.
    expect(
      op
        .logs()
        .filter(refused)
        .map((l) => String(l.msg)),
    ).toEqual([]);
    expect(perApp.size).toBe(APPS);
    expect(alertMails()).toHaveLength(APPS);
    expect(firing.length).toBe(APPS);
  });
});
