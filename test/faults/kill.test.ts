// Case a: the operator killed with SIGKILL again and again, during an alert storm and while it sends license
// reminders. Every notification must arrive (0 lost); a duplicate may only be a resend under the same
// idempotency key (Message-ID, X-Mxops-Delivery-Id); a restart must not restart an alert's `for` timer.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HttpReceiver } from "../support/http-receiver.ts";
import { startCpuPrometheus } from "../support/prometheus.ts";
import { type Mail, SmtpInbox } from "./inbox.ts";
import {
  ApiReader,
  type Cluster,
  canary,
  condition,
  dayFromNow,
  eventually,
  FAST,
  k,
  killAllOperators,
  MX,
  type MxObject,
  type OperatorProcess,
  pendingRecords,
  ROUNDS,
  report,
  rng,
  SEED,
  scanForLeaks,
  sharedCluster,
  sleep,
  startOperator,
} from "./support.ts";

const STORM_APPS = FAST ? 6 : 12;
const LICENSE_APPS_PER_ROUND = 3;
const FOR_SECONDS = 10;
/** After the last round: how long a restarted operator is watched for sending anything again. */
const QUIET_MS = FAST ? 2000 : 5000;
const RECIPIENTS = ["alice@example.com", "bob@example.com"];
const random = rng(SEED);

interface RuleStatus {
  app: string;
  rule: string;
  state: string;
  severity: string;
  since?: string;
  firingSince?: string;
}

/** Which logical notification a mail is: kind, app (from the subject) and recipient. */
function logicalKey(m: Mail): string {
  const app = /\bof ([a-z0-9-]+)/.exec(m.headers.subject ?? "")?.[1] ?? "?";
  return `${m.headers["x-mxops-kind"]}|${app}|${m.to.join(",")}`;
}

interface Tally {
  expected: number;
  mails: number;
  distinct: number;
  duplicates: number;
  lost: string[];
  extra: string[];
  duplicateKeysMismatched: string[];
}

/** Compares what arrived with what should have: per logical notification, the distinct idempotency keys. */
function tally(mails: Mail[], expected: Map<string, number>): Tally {
  const keys = new Map<string, Set<string>>();
  const byId = new Map<string, Mail[]>();
  for (const m of mails) {
    const id = m.headers["x-mxops-delivery-id"] ?? "(none)";
    const key = logicalKey(m);
    keys.set(key, (keys.get(key) ?? new Set()).add(id));
    byId.set(id, [...(byId.get(id) ?? []), m]);
  }
  const lost: string[] = [];
  const extra: string[] = [];
  for (const [key, n] of expected) {
    const got = keys.get(key)?.size ?? 0;
    if (got < n) lost.push(`${key}: ${got} of ${n}`);
    if (got > n) extra.push(`${key}: ${got} distinct keys for ${n} notification(s)`);
  }
  for (const [key, ids] of keys) if (!expected.has(key)) extra.push(`${key}: ${ids.size} unexpected`);
  const duplicateKeysMismatched: string[] = [];
  for (const [id, group] of byId) {
    if (group.length < 2) continue;
    if (new Set(group.map((m) => m.headers["message-id"])).size !== 1) duplicateKeysMismatched.push(id);
  }
  return {
    expected: [...expected.values()].reduce((a, b) => a + b, 0),
    mails: mails.length,
    distinct: byId.size,
    duplicates: mails.length - byId.size,
    lost,
    extra,
    duplicateKeysMismatched,
  };
}

const add = (m: Map<string, number>, key: string, n = 1) => m.set(key, (m.get(key) ?? 0) + n);

describe("kill -9 of the operator", () => {
  let cp: Cluster;
  let api: ApiReader;
  let inbox: SmtpInbox;
  let prometheus: HttpReceiver;
  const cpu = new Map<string, number>(); // app -> cores in use (limit: 1 core)
  const smtpPassword = canary("smtp-password");
  const licenseKey = canary("license-key");
  let operator: OperatorProcess | undefined;
  /** Set by a round that kills on the n-th mail: the mail is stored, the operator dies before the 250. */
  let killOnMail: { remaining: number; victim: OperatorProcess; killed: boolean } | undefined;
  const restartMs: number[] = [];

  const kubectl = () => k(cp.kubeconfig);

  beforeAll(async () => {
    cp = sharedCluster();
    api = new ApiReader(cp.kubeconfig);
    inbox = new SmtpInbox({
      users: { mxops: smtpPassword },
      beforeAck: () => {
        if (killOnMail && !killOnMail.killed && --killOnMail.remaining <= 0) {
          killOnMail.killed = true;
          killOnMail.victim.child.kill("SIGKILL");
        }
        return undefined;
      },
    });
    await inbox.start();
    // Prometheus' query API: CPU per pod (the pod names a Deployment's ReplicaSet gives), nothing else.
    prometheus = await startCpuPrometheus(() => cpu);
    await kubectl()(
      ["apply", "-f", "-"],
      `apiVersion: v1
kind: Namespace
metadata: {name: mxops-system}
---
apiVersion: v1
kind: Secret
metadata: {name: smtp-credentials, namespace: mxops-system}
stringData: {username: mxops, password: "${smtpPassword}"}
`,
    );
  });

  afterAll(async () => {
    await killAllOperators();
    await inbox?.stop();
    await prometheus?.close();
    api?.close();
  });

  const start = async (ns: string): Promise<OperatorProcess> => {
    const began = Date.now();
    const op = startOperator(`kill-${ns}`, cp.kubeconfig, [`--namespaces=${ns}`], {
      MXOPS_SMTP_HOST: "127.0.0.1",
      MXOPS_SMTP_PORT: String(inbox.port),
      MXOPS_SMTP_TLS: "none",
      MXOPS_SMTP_FROM: "mxops@example.com",
      MXOPS_SMTP_CREDENTIALS_SECRET: "mxops-system/smtp-credentials",
      MXOPS_USAGE_SOURCE: "prometheus",
      MXOPS_PROMETHEUS_URL: prometheus.url,
      MXOPS_EVALUATION_INTERVAL: "1s",
      MXOPS_NOTIFY_HOURLY_CAP: "0",
      MXOPS_NOTIFY_INITIAL_BACKOFF: "200ms",
      MXOPS_NOTIFY_MAX_BACKOFF: "2s",
    });
    await op.waitForLog("controllers started", (l) => l.msg === "controllers started");
    restartMs.push(Date.now() - began);
    operator = op;
    return op;
  };

  /** Kills the operator at once, or on the n-th mail from now (before the server acknowledges it). */
  const scheduleKill = (trigger: "timed" | "mail", delayMs: number, mailNumber: number) => {
    const victim = operator;
    if (!victim) throw new Error("no operator running");
    if (trigger === "mail") {
      killOnMail = { remaining: mailNumber, victim, killed: false };
      return;
    }
    setTimeout(() => victim.child.kill("SIGKILL"), delayMs);
  };

  /** Waits for the victim to die (a mail-triggered kill may not come when fewer mails are due), then restarts. */
  const restartAfterKill = async (ns: string, waitMs: number) => {
    const victim = operator;
    if (!victim) throw new Error("no operator running");
    const died = await Promise.race([victim.exit.then(() => true), sleep(waitMs).then(() => false)]);
    const pendingMailKill = killOnMail && !killOnMail.killed;
    killOnMail = undefined;
    if (!died) {
      expect(pendingMailKill, "a timed kill must have happened").toBe(true);
      await victim.kill9(); // fewer mails than the trigger wanted: kill now
    }
    expect(victim.alive()).toBe(false);
    await start(ns);
    return died ? "as planned" : "late";
  };

  it(`loses no alert notification and resets no 'for' timer across ${ROUNDS} kills during an alert storm (${STORM_APPS} apps)`, async () => {
    const ns = "storm";
    const apps = Array.from({ length: STORM_APPS }, (_, i) => `storm-${i + 1}`);
    for (const app of apps) cpu.set(app, 0.1);
    const docs = [
      `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}}`,
      ...["alice", "bob"].map(
        (c) =>
          `apiVersion: mxops.dev/v1alpha1\nkind: TechnicalContact\nmetadata: {name: ${c}, namespace: ${ns}}\nspec: {displayName: ${c}, email: ${c}@example.com, mxid: ${c}@example.com}`,
      ),
      ...apps.flatMap((app) => [
        `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ${app}, namespace: ${ns}}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: ${app}}}\n  template:\n    metadata: {labels: {app: ${app}}}\n    spec: {containers: [{name: mendix, image: "mendix/runtime-base:latest", resources: {limits: {cpu: "1", memory: 1Gi}}}]}`,
        `apiVersion: mxops.dev/v1alpha1\nkind: MendixApp\nmetadata: {name: ${app}, namespace: ${ns}, labels: {tier: storm}}\nspec: {hosting: OnPremises, technicalContacts: [{name: alice}, {name: bob}], workloadRef: {kind: Deployment, name: ${app}}}`,
      ]),
      `apiVersion: mxops.dev/v1alpha1\nkind: AlertPolicy\nmetadata: {name: storm, namespace: ${ns}}\nspec:\n  appSelector: {matchLabels: {tier: storm}}\n  rules: [{name: cpu, metric: CPU, warningPercent: 75, criticalPercent: 85, for: ${FOR_SECONDS}s, clearMarginPercent: 5}]`,
    ];
    await kubectl()(["apply", "-f", "-"], docs.join("\n---\n"));
    await start(ns);

    const expected = new Map<string, number>();
    for (const app of apps) for (const r of RECIPIENTS) add(expected, `ContactAssigned|${app}|${r}`);
    const stormMails = () => inbox.mails.filter((m) => /^storm-\d+$/.test(logicalKey(m).split("|")[1] ?? ""));
    const policy = async () => await api.get<MxObject>(`${MX}/namespaces/${ns}/alertpolicies/storm`);
    const rules = (p: MxObject | undefined) => (p?.status?.rules ?? []) as RuleStatus[];
    const delivered = async (p: MxObject | undefined) => {
      const t = tally(stormMails(), expected);
      const objs = [...(await api.list<MxObject>(`${MX}/namespaces/${ns}/mendixapps`)), ...(p ? [p] : [])];
      return t.lost.length === 0 && pendingRecords(objs).length === 0 ? t : undefined;
    };
    const converge = async (state: string, severity: string, what: string) =>
      await eventually(
        async () => {
          const p = await policy();
          const rs = rules(p);
          const ok =
            apps.every((a) => rs.some((r) => r.app === a && r.state === state && r.severity === severity)) &&
            (await delivered(p));
          return ok ? p : undefined;
        },
        { what, timeoutMs: 90_000, intervalMs: 300 },
      );
    // Evaluated with data (OK, not Unknown); an app that never alerted has no rule entry yet.
    await eventually(
      async () => {
        const p = await policy();
        const status = p?.status as { apps?: string[]; summary?: string } | undefined;
        const ok =
          apps.every((a) => status?.apps?.includes(a)) &&
          status?.summary === "OK" &&
          rules(p).length === 0 &&
          (await delivered(p));
        return ok ? p : undefined;
      },
      { what: "the storm apps evaluated and their contacts told", timeoutMs: 90_000, intervalMs: 300 },
    );

    const phases = [
      { name: "warning", cores: 0.8, kind: "AlertFiring", state: "Firing", severity: "Warning" },
      { name: "critical", cores: 0.9, kind: "AlertEscalated", state: "Firing", severity: "Critical" },
      { name: "recovered", cores: 0.1, kind: "AlertResolved", state: "Inactive", severity: "Ok" },
    ] as const;
    const kills = { timed: 0, onMail: 0, duringPending: 0, lateMailKills: 0 };
    let timerChecks = 0;
    const firingDelays: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const phase = phases[(round - 1) % phases.length] as (typeof phases)[number];
      for (const app of apps) {
        cpu.set(app, phase.cores);
        add(expected, `${phase.kind}|${app}|${RECIPIENTS[0]}`);
        add(expected, `${phase.kind}|${app}|${RECIPIENTS[1]}`);
      }
      if (phase.name === "warning") {
        // Kill while every app waits out `for`: the timer must run on from the recorded start, not restart.
        const pending = await eventually(
          async () => {
            const rs = rules(await policy());
            return apps.every((a) => rs.some((r) => r.app === a && r.state === "Pending")) ? rs : undefined;
          },
          { what: `round ${round}: every app Pending`, timeoutMs: 30_000, intervalMs: 100 },
        );
        const since = new Map(pending.map((r) => [r.app, r.since ?? ""]));
        await sleep(random.int(500, 2000));
        await operator?.kill9();
        kills.duringPending++;
        await start(ns);
        const readyAt = Date.now();
        for (const r of rules(await policy())) {
          if (r.state !== "Pending") continue;
          expect(r.since, `round ${round}: ${r.app}'s Pending since after the restart`).toBe(
            since.get(r.app),
          );
          timerChecks++;
        }
        const fired = await converge(phase.state, phase.severity, `round ${round}: every app Firing Warning`);
        for (const r of rules(fired)) {
          const pendingAt = Date.parse(since.get(r.app) ?? "");
          const delay = Date.parse(r.firingSince ?? "") - pendingAt;
          firingDelays.push(delay);
          // It fires `for` after it went Pending, or at the first evaluation after the restart if the operator
          // was down when the timer ran out; a reset timer would fire `for` after the restart. Seconds are
          // truncated in status; 3 s allow for one evaluation interval and a loaded machine.
          const latest = Math.max(FOR_SECONDS * 1000, readyAt - pendingAt) + 3000;
          expect(
            delay,
            `round ${round}: ${r.app} fired ${delay} ms after it went Pending`,
          ).toBeGreaterThanOrEqual((FOR_SECONDS - 1) * 1000);
          expect(delay, `round ${round}: ${r.app}'s timer restarted with the operator`).toBeLessThanOrEqual(
            latest,
          );
        }
      } else {
        const trigger = random.chance(0.5) ? "mail" : "timed";
        if (trigger === "mail") kills.onMail++;
        else kills.timed++;
        scheduleKill(trigger, random.int(0, 2500), random.int(1, apps.length * RECIPIENTS.length));
        const outcome = await restartAfterKill(ns, 15_000);
        if (outcome === "late") kills.lateMailKills++;
        await converge(
          phase.state,
          phase.severity,
          `round ${round}: every app ${phase.state} ${phase.severity}`,
        );
      }
    }

    // A clean restart afterwards sends nothing again.
    // A clean restart afterwards (SIGTERM, a new process) sends nothing again.
    const beforeRestart = inbox.mails.length;
    await operator?.stop();
    await start(ns);
    await sleep(QUIET_MS);
    const sentAfterCleanRestart = inbox.mails.length - beforeRestart;
    const t = tally(stormMails(), expected);
    const finalRules = rules(await policy());
    report("a-kill-storm", {
      storm: {
        apps: STORM_APPS,
        recipientsPerNotification: RECIPIENTS.length,
        forSeconds: FOR_SECONDS,
        kills: ROUNDS,
        killsDuringPending: kills.duringPending,
        killsTimed: kills.timed,
        killsOnMailBeforeAck: kills.onMail,
        mailKillsThatFiredLate: kills.lateMailKills,
        expectedDeliveries: t.expected,
        mailsReceived: t.mails,
        distinctIdempotencyKeys: t.distinct,
        duplicatesSameKey: t.duplicates,
        lost: t.lost.length,
        extraDistinctNotifications: t.extra.length,
        pendingTimerChecks: timerChecks,
        firingDelayMsMin: Math.min(...firingDelays),
        firingDelayMsMax: Math.max(...firingDelays),
        restartToControllersStartedMsMax: Math.max(...restartMs),
        sentAfterCleanRestart,
      },
    });
    expect(sentAfterCleanRestart, "mails after a clean restart").toBe(0);
    expect(t.lost, "notifications lost").toEqual([]);
    expect(t.extra, "notifications sent under more than one idempotency key").toEqual([]);
    expect(t.duplicateKeysMismatched, "duplicates with a different Message-ID").toEqual([]);
    expect(t.distinct).toBe(t.expected);
    expect(finalRules.length).toBe(STORM_APPS);
    expect(timerChecks).toBeGreaterThan(0);
  });

  it(`loses no license reminder and sends none twice under another key across ${ROUNDS} kills`, async () => {
    const ns = "licenses";
    await kubectl()(
      ["apply", "-f", "-"],
      [
        `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}}`,
        ...["alice", "bob"].map(
          (c) =>
            `apiVersion: mxops.dev/v1alpha1\nkind: TechnicalContact\nmetadata: {name: ${c}, namespace: ${ns}}\nspec: {displayName: ${c}, email: ${c}@example.com, mxid: ${c}@example.com}`,
        ),
      ].join("\n---\n"),
    );
    await operator?.stop();
    restartMs.length = 0;
    await start(ns);
    const expected = new Map<string, number>();
    const reminderDays = [3, 10, 20, 45, 80, 200]; // 200: no reminder due (a negative control)
    const created: { app: string; days: number }[] = [];
    const kills = { timed: 0, onMail: 0, lateMailKills: 0 };
    const licMails = () => inbox.mails.filter((m) => /^lic-/.test(logicalKey(m).split("|")[1] ?? ""));

    for (let round = 1; round <= ROUNDS; round++) {
      const batch = Array.from({ length: LICENSE_APPS_PER_ROUND }, (_, j) => ({
        app: `lic-${round}-${j + 1}`,
        days: random.pick(reminderDays),
      }));
      created.push(...batch);
      for (const { app, days } of batch) {
        for (const r of RECIPIENTS) {
          add(expected, `ContactAssigned|${app}|${r}`);
          if (days <= 90) add(expected, `LicenseReminder|${app}|${r}`);
        }
      }
      const trigger = random.chance(0.5) ? "mail" : "timed";
      if (trigger === "mail") kills.onMail++;
      else kills.timed++;
      await kubectl()(
        ["apply", "-f", "-"],
        batch
          .flatMap(({ app, days }) => [
            `apiVersion: v1\nkind: Secret\nmetadata: {name: ${app}-license, namespace: ${ns}}\nstringData: {LICENSE_ID: 3f1c2b8e-7d4a-4e2b-9c61-0a5d8e7f1b23, LICENSE_KEY: "${licenseKey}"}`,
            `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ${app}, namespace: ${ns}}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: ${app}}}\n  template:\n    metadata: {labels: {app: ${app}}}\n    spec: {containers: [{name: mendix, image: "mendix/runtime-base:latest"}]}`,
            `apiVersion: mxops.dev/v1alpha1\nkind: MendixApp\nmetadata: {name: ${app}, namespace: ${ns}}\nspec:\n  hosting: OnPremises\n  technicalContacts: [{name: alice}, {name: bob}]\n  workloadRef: {kind: Deployment, name: ${app}}\n  license: {secretRef: {name: ${app}-license}, expiresAt: "${dayFromNow(days)}"}`,
          ])
          .join("\n---\n"),
      );
      const batchMails = batch.reduce((n, b) => n + RECIPIENTS.length * (b.days <= 90 ? 2 : 1), 0);
      scheduleKill(trigger, random.int(0, 2000), random.int(1, batchMails));
      if ((await restartAfterKill(ns, 15_000)) === "late") kills.lateMailKills++;
      await eventually(
        async () => {
          const objs = await api.list<MxObject>(`${MX}/namespaces/${ns}/mendixapps`);
          const ready = batch.every(({ app }) => {
            const o = objs.find((x) => x.metadata.name === app);
            return condition(o, "Ready")?.status === "True";
          });
          const t = tally(licMails(), expected);
          return ready && t.lost.length === 0 && pendingRecords(objs).length === 0 ? true : undefined;
        },
        { what: `round ${round}: reminders delivered`, timeoutMs: 60_000, intervalMs: 300 },
      );
    }

    const beforeRestart = inbox.mails.length;
    await operator?.stop();
    await start(ns);
    await sleep(QUIET_MS);
    const sentAfterCleanRestart = inbox.mails.length - beforeRestart;
    const apps = await api.list<MxObject>(`${MX}/namespaces/${ns}/mendixapps`);
    const wrongBookkeeping: string[] = [];
    for (const { app, days } of created) {
      const o = apps.find((x) => x.metadata.name === app);
      const license = o?.status?.license as { remindersSent?: number[]; state?: string } | undefined;
      const want = [90, 30, 15, 7].filter((d) => days <= d);
      if (JSON.stringify(license?.remindersSent ?? []) !== JSON.stringify(want))
        wrongBookkeeping.push(
          `${app} (${days} days): remindersSent ${JSON.stringify(license?.remindersSent)}`,
        );
      const deploy = await api.get<{ spec: { template: { spec: { containers: { env?: unknown[] }[] } } } }>(
        `/apis/apps/v1/namespaces/${ns}/deployments/${app}`,
      );
      if (!JSON.stringify(deploy?.spec.template.spec.containers[0]?.env ?? []).includes("secretKeyRef"))
        wrongBookkeeping.push(`${app}: license env not injected`);
    }
    const t = tally(licMails(), expected);
    report("a-kill-storm", {
      licenseReminders: {
        kills: ROUNDS,
        appsCreated: created.length,
        appsWithReminderDue: created.filter((c) => c.days <= 90).length,
        killsTimed: kills.timed,
        killsOnMailBeforeAck: kills.onMail,
        mailKillsThatFiredLate: kills.lateMailKills,
        expectedDeliveries: t.expected,
        mailsReceived: t.mails,
        distinctIdempotencyKeys: t.distinct,
        duplicatesSameKey: t.duplicates,
        lost: t.lost.length,
        extraDistinctNotifications: t.extra.length,
        restartToControllersStartedMsMax: Math.max(...restartMs),
        sentAfterCleanRestart,
      },
    });
    expect(sentAfterCleanRestart, "mails after a clean restart").toBe(0);
    expect(t.lost, "notifications lost").toEqual([]);
    expect(t.extra, "notifications sent under more than one idempotency key").toEqual([]);
    expect(t.duplicateKeysMismatched, "duplicates with a different Message-ID").toEqual([]);
    expect(wrongBookkeeping).toEqual([]);
    expect(t.distinct).toBe(t.expected);
  });

  it("leaks no planted secret (license key, SMTP password) into logs, Events, statuses or mails", async () => {
    expect(inbox.mails.every((m) => m.user === "mxops")).toBe(true); // the planted password authenticated
    const scan = await scanForLeaks(
      api,
      inbox.mails.map((m) => ({ where: `mail to ${m.to.join(",")}: ${m.headers.subject}`, text: m.raw })),
    );
    report("g-leak-scan-kill", { ...scan, hits: scan.hits.length });
    expect(scan.hits).toEqual([]);
    expect(scan.logLines).toBeGreaterThan(100);
    expect(scan.notifications).toBeGreaterThan(0);
  });
});
