// Case d: the receivers fail. The SMTP server stopped for a while and started again on the same port; webhooks
// answering 500, 429 with Retry-After, and not answering at all. Within the retry budget everything arrives once
// (per idempotency key) after recovery; beyond it the contact's condition, a Warning Event and the metric say so.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signWebhook } from "../../src/notify/channels.ts";
import { freePort } from "../controlplane/controlplane.ts";
import { type HttpReceiver, type Received, type Reply, startHttpReceiver } from "../support/http-receiver.ts";
import { SmtpInbox } from "./inbox.ts";
import {
  ApiReader,
  type Cluster,
  canary,
  condition,
  eventually,
  k,
  killAllOperators,
  MX,
  type MxObject,
  metricSum,
  type OperatorProcess,
  report,
  scanForLeaks,
  scrape,
  sharedCluster,
  sleep,
  startOperator,
} from "./support.ts";

const NS = "delivery";
const MAX_ATTEMPTS = 6;
const INITIAL_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 4000;
/** The longest a target can keep retrying: every backoff step at its unjittered maximum. */
const BUDGET_MS = Array.from({ length: MAX_ATTEMPTS - 1 }, (_, i) =>
  Math.min(MAX_BACKOFF_MS, INITIAL_BACKOFF_MS * 2 ** i),
).reduce((a, b) => a + b, 0);
const WEBHOOK_TIMEOUT_MS = 10_000; // WebhookChannel's default

interface ContactStatus {
  lastTest?: { nonce: string; result: string };
  notifications?: { id: string; state: string; delivered?: string[]; failed?: string[]; message?: string }[];
  conditions?: { type: string; status: string; reason: string; message: string }[];
}

describe("SMTP down and webhooks failing", () => {
  let cp: Cluster;
  let api: ApiReader;
  let inbox: SmtpInbox;
  let op: OperatorProcess;
  let metricsPort: number;
  const smtpPassword = canary("smtp-password");
  const webhookKey = canary("webhook-key");
  const hooks: Record<string, HttpReceiver> = {};
  const kubectl = () => k(cp.kubeconfig);

  /** A receiver answering the n-th request with `script[n]` (the last entry from then on). */
  const scripted = async (script: Reply[]) =>
    await startHttpReceiver((_r: Received, i: number) => script[Math.min(i, script.length - 1)] as Reply);

  const contact = (name: string, opts: { email?: boolean; hook?: string }) =>
    [
      `apiVersion: v1\nkind: Secret\nmetadata: {name: ${name}-webhook, namespace: ${NS}}\nstringData: {secret: "${webhookKey}"}`,
      `apiVersion: mxops.dev/v1alpha1\nkind: TechnicalContact\nmetadata: {name: ${name}, namespace: ${NS}}\nspec:\n  displayName: ${name}\n  email: ${name}@example.com\n  mxid: ${name}@example.com\n  channels:\n    email: {enabled: ${opts.email !== false}}${opts.hook ? `\n    webhook: {url: "${opts.hook}/hooks/${name}", secretRef: {name: ${name}-webhook}}` : ""}`,
    ].join("\n---\n");
  const status = async (name: string) =>
    (await api.get<MxObject>(`${MX}/namespaces/${NS}/technicalcontacts/${name}`))?.status as ContactStatus;
  const sendTest = async (name: string, nonce: string) =>
    await kubectl()(["annotate", "tc", name, "-n", NS, "--overwrite", `mxops.dev/send-test=${nonce}`]);
  const answered = (name: string, nonce: string, timeoutMs: number) =>
    eventually(
      async () => {
        const s = await status(name);
        return s?.lastTest?.nonce === nonce ? s : undefined;
      },
      { what: `${name}: the result of test message ${nonce}`, timeoutMs, intervalMs: 200 },
    );
  const record = (s: ContactStatus, nonce: string) =>
    s.notifications?.find((r) => r.id.endsWith(`/${nonce}`));

  beforeAll(async () => {
    cp = sharedCluster();
    api = new ApiReader(cp.kubeconfig);
    inbox = new SmtpInbox({ users: { mxops: smtpPassword } });
    await inbox.start();
    hooks.h500 = await scripted([{ status: 500 }, { status: 500 }, { status: 200 }]);
    hooks.h429 = await scripted([{ status: 429, headers: { "retry-after": "2" } }, { status: 200 }]);
    hooks.hang = await scripted([{ status: 200, delayMs: WEBHOOK_TIMEOUT_MS + 2000 }, { status: 200 }]);
    hooks.dead = await scripted([{ status: 503 }]);
    await kubectl()(
      ["apply", "-f", "-"],
      [
        `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}}`,
        `apiVersion: v1\nkind: Secret\nmetadata: {name: smtp-credentials, namespace: ${NS}}\nstringData: {username: mxops, password: "${smtpPassword}"}`,
        contact("mailonly", {}),
        contact("h500", { hook: hooks.h500.url }),
        contact("h429", { email: false, hook: hooks.h429.url }),
        contact("hang", { email: false, hook: hooks.hang.url }),
        contact("dead", { email: false, hook: hooks.dead.url }),
      ].join("\n---\n"),
    );
    metricsPort = await freePort();
    op = startOperator("delivery", cp.kubeconfig, [`--namespaces=${NS}`], {
      MXOPS_SMTP_HOST: "127.0.0.1",
      MXOPS_SMTP_PORT: String(inbox.port),
      MXOPS_SMTP_TLS: "none",
      MXOPS_SMTP_CREDENTIALS_SECRET: `${NS}/smtp-credentials`,
      MXOPS_NOTIFY_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      MXOPS_NOTIFY_INITIAL_BACKOFF: `${INITIAL_BACKOFF_MS}ms`,
      MXOPS_NOTIFY_MAX_BACKOFF: `${MAX_BACKOFF_MS}ms`,
      MXOPS_NOTIFY_HOURLY_CAP: "0",
      MXOPS_METRICS_BIND_ADDRESS: `127.0.0.1:${metricsPort}`,
    });
    await op.waitForLog("controllers started", (l) => l.msg === "controllers started");
  });

  afterAll(async () => {
    await killAllOperators();
    await inbox?.stop();
    for (const h of Object.values(hooks)) await h.close();
    api?.close();
  });

  it("delivers everything once the SMTP server and the webhooks recover within the retry budget", async () => {
    const downMs = Math.round(BUDGET_MS / 3);
    await inbox.stop();
    const attemptsBefore = metricSum(await scrape(metricsPort), "mxops_notification_attempts_total", {
      result: "retry",
    });
    const started = Date.now();
    for (const name of ["mailonly", "h500", "h429", "hang"]) await sendTest(name, "recover");
    await sleep(downMs);
    await inbox.start(); // the same port
    const smtpBackAt = Date.now();

    const done: Record<string, ContactStatus> = {};
    for (const name of ["mailonly", "h500", "h429", "hang"])
      done[name] = await answered(name, "recover", BUDGET_MS + WEBHOOK_TIMEOUT_MS + 30_000);
    const elapsedMs = Date.now() - started;

    expect(done.mailonly?.lastTest?.result).toBe("email: delivered");
    expect(done.h500?.lastTest?.result).toBe("email: delivered; webhook: delivered");
    expect(done.h429?.lastTest?.result).toBe("webhook: delivered");
    expect(done.hang?.lastTest?.result).toBe("webhook: delivered");
    for (const [name, s] of Object.entries(done)) {
      expect(record(s, "recover")?.state, name).toBe("Sent");
      expect(condition({ status: s } as MxObject, "NotificationFailed")?.status ?? "False", name).toBe(
        "False",
      );
    }
    // Each mail arrived once, sent after the server came back; each webhook retry carried the same key.
    const mails = inbox.mails.filter((m) => m.headers["x-mxops-delivery-id"]?.includes("/recover/email/"));
    expect(mails.map((m) => m.to[0]).sort()).toEqual(["h500@example.com", "mailonly@example.com"]);
    for (const m of mails) expect(m.at).toBeGreaterThanOrEqual(smtpBackAt);
    const posts = (h: HttpReceiver) =>
      h.received.filter((r) => String(r.headers["webhook-id"]).includes("/recover/"));
    const hooksOf = { h500: hooks.h500, h429: hooks.h429, hang: hooks.hang } as Record<string, HttpReceiver>;
    for (const [name, h] of Object.entries(hooksOf)) {
      const ps = posts(h);
      expect(new Set(ps.map((p) => p.headers["webhook-id"])).size, name).toBe(1);
      for (const p of ps) {
        const id = String(p.headers["webhook-id"]);
        expect(p.headers["webhook-signature"]).toBe(
          signWebhook(webhookKey, id, Number(p.headers["webhook-timestamp"]), p.body),
        );
      }
    }
    expect(posts(hooks.h500 as HttpReceiver)).toHaveLength(3);
    const [first429, second429] = posts(hooks.h429 as HttpReceiver);
    expect((second429?.at ?? 0) - (first429?.at ?? 0)).toBeGreaterThanOrEqual(1900); // Retry-After: 2
    const [hung, retried] = posts(hooks.hang as HttpReceiver);
    expect((retried?.at ?? 0) - (hung?.at ?? 0)).toBeGreaterThanOrEqual(WEBHOOK_TIMEOUT_MS);
    // One failing target never held up another: the 500s were overcome while SMTP was still down.
    expect(posts(hooks.h500 as HttpReceiver)[2]?.at ?? Number.POSITIVE_INFINITY).toBeLessThan(smtpBackAt);

    const metrics = await scrape(metricsPort);
    report("d-delivery-faults", {
      withinBudget: {
        retryBudget: {
          maxAttempts: MAX_ATTEMPTS,
          initialBackoffMs: INITIAL_BACKOFF_MS,
          maxBackoffMs: MAX_BACKOFF_MS,
          worstCaseWaitMs: BUDGET_MS,
        },
        smtpDownMs: smtpBackAt - started,
        targets: Object.values(done).reduce(
          (n, st) =>
            n +
            (record(st, "recover")?.delivered?.length ?? 0) +
            (record(st, "recover")?.failed?.length ?? 0),
          0,
        ),
        delivered: Object.values(done).reduce(
          (n, st) => n + (record(st, "recover")?.delivered?.length ?? 0),
          0,
        ),
        failed: Object.values(done).reduce((n, st) => n + (record(st, "recover")?.failed?.length ?? 0), 0),
        mails: mails.length,
        webhookPosts: {
          status500Then200: posts(hooks.h500 as HttpReceiver).length,
          status429RetryAfter2Then200: posts(hooks.h429 as HttpReceiver).length,
          timeoutThen200: posts(hooks.hang as HttpReceiver).length,
        },
        retryAfterGapMs: (second429?.at ?? 0) - (first429?.at ?? 0),
        retriesCounted:
          metricSum(metrics, "mxops_notification_attempts_total", { result: "retry" }) - attemptsBefore,
        allDoneMs: elapsedMs,
      },
    });
  });

  it("past the retry budget says so: condition NotificationFailed, a Warning Event and mxops_notifications_total{result=failed}", async () => {
    const before = await scrape(metricsPort);
    const failedBefore = (channel: string) =>
      metricSum(before, "mxops_notifications_total", { channel, kind: "Test", result: "failed" });
    await inbox.stop(); // longer than the whole budget this time
    const started = Date.now();
    await sendTest("mailonly", "beyond");
    await sendTest("dead", "beyond");
    const mail = await answered("mailonly", "beyond", BUDGET_MS + 60_000);
    const hook = await answered("dead", "beyond", BUDGET_MS + 60_000);
    const gaveUpMs = Date.now() - started;
    await inbox.start();

    expect(mail.lastTest?.result).toMatch(/^email: failed \(SMTP /);
    expect(hook.lastTest?.result).toMatch(/^webhook: failed \(webhook .*HTTP 503\)$/);
    for (const [name, s] of [
      ["mailonly", mail],
      ["dead", hook],
    ] as const) {
      expect(record(s, "beyond")?.state, name).toBe("Failed");
      expect(record(s, "beyond")?.message, name).toContain(`after ${MAX_ATTEMPTS} attempt(s)`);
      expect(condition({ status: s } as MxObject, "NotificationFailed"), name).toMatchObject({
        status: "True",
        reason: "DeliveryFailed",
      });
    }
    expect(
      hooks.dead?.received.filter((r) => String(r.headers["webhook-id"]).includes("/beyond/")),
    ).toHaveLength(MAX_ATTEMPTS);
    const events = await api.list<{
      type: string;
      reason: string;
      note: string;
      regarding: { name: string };
    }>(`/apis/events.k8s.io/v1/namespaces/${NS}/events`);
    const warnings = events.filter((e) => e.type === "Warning" && e.reason === "NotificationFailed");
    expect(warnings.map((e) => e.regarding.name).sort()).toEqual(["dead", "mailonly"]);
    const after = await eventually(
      async () => {
        const text = await scrape(metricsPort);
        return metricSum(text, "mxops_notifications_total", {
          channel: "email",
          kind: "Test",
          result: "failed",
        }) > failedBefore("email")
          ? text
          : undefined;
      },
      { what: "the failed counter" },
    );
    const failedNow = (channel: string) =>
      metricSum(after, "mxops_notifications_total", { channel, kind: "Test", result: "failed" });
    expect(failedNow("email") - failedBefore("email")).toBe(1);
    expect(failedNow("webhook") - failedBefore("webhook")).toBe(1);

    // Once the server is back, the next message goes through and the condition clears.
    await sendTest("mailonly", "after");
    const recovered = await answered("mailonly", "after", 30_000);
    expect(recovered.lastTest?.result).toBe("email: delivered");
    expect(condition({ status: recovered } as MxObject, "NotificationFailed")).toMatchObject({
      status: "False",
      reason: "Delivered",
    });
    report("d-delivery-faults", {
      beyondBudget: {
        targets: 2,
        failed: (record(mail, "beyond")?.failed?.length ?? 0) + (record(hook, "beyond")?.failed?.length ?? 0),
        attemptsPerTarget: MAX_ATTEMPTS,
        gaveUpAfterMs: gaveUpMs,
        conditionNotificationFailed: "True/DeliveryFailed",
        warningEvents: warnings.length,
        failedCounterIncrease: {
          email: failedNow("email") - failedBefore("email"),
          webhook: failedNow("webhook") - failedBefore("webhook"),
        },
        conditionClearedByNextDelivery: true,
      },
    });
  });

  it("leaks no planted secret (SMTP password, webhook signing key) into logs, Events, statuses or messages", async () => {
    expect(op.alive()).toBe(true);
    const scan = await scanForLeaks(api, [
      ...inbox.mails.map((m) => ({ where: `mail ${m.headers.subject}`, text: m.raw })),
      ...Object.entries(hooks).flatMap(([name, h]) =>
        h.received.map((r) => ({
          where: `webhook ${name}`,
          text: `${JSON.stringify(r.headers)}\n${r.body}`,
        })),
      ),
    ]);
    report("g-leak-scan-delivery", { ...scan, hits: scan.hits.length });
    expect(scan.hits).toEqual([]);
    expect(scan.notifications).toBeGreaterThan(5);
  });
});
