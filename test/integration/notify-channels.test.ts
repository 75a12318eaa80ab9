// Notification channels against real servers in the test process: SMTP in each TLS mode, webhook receivers
// that fail, throttle and hang, and an Alertmanager-API-compatible receiver.
import { createHmac } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { TECHNICAL_CONTACTS } from "../../src/controllers/resources.ts";
import { RecipientCap } from "../../src/notify/cap.ts";
import {
  AlertmanagerChannel,
  type Channel,
  EmailChannel,
  signWebhook,
  WebhookChannel,
} from "../../src/notify/channels.ts";
import { Deliverer, type RetryPolicy } from "../../src/notify/deliver.ts";
import type { Notification, Recipient } from "../../src/notify/message.ts";
import { NotificationSender, type Owner, type OwnerObject } from "../../src/notify/sender.ts";
import { KubeClient, type KubeObject, type PatchType, type ResourceType } from "../../src/runtime/client.ts";
import { EventRecorder } from "../../src/runtime/events.ts";
import { newRegistry } from "../../src/runtime/metrics.ts";
import { createCertificateAuthority } from "../../src/runtime/pki.ts";
import { startHttpReceiver } from "../support/http-receiver.ts";
import { type SmtpSink, startSmtpSink } from "../support/smtp.ts";
import { adminKubeconfig, kubectl, newNamespace } from "./helpers.ts";
import { installCrds } from "./operator.ts";
import { counterSum, loadKubeConfig, testLog } from "./runtime-support.ts";

const alert: Notification = {
  id: "policy-uid/crm/cpu/3",
  kind: "AlertEscalated",
  severity: "Critical",
  app: { namespace: "mendix-apps", name: "crm", environment: "production" },
  title: "CPU of crm is critical (91%)",
  body: "CPU usage of crm is 91% of its limit (critical threshold 85%) for 5m.",
  threadId: "policy-uid/crm/cpu/1",
  occurredAt: "2026-11-27T10:00:00Z",
  labels: { alertname: "MendixAppCPU", rule: "cpu" },
};
const alice: Recipient = { key: "contact:alice", displayName: "Alice de Vries", email: "alice@example.com" };

const fast: RetryPolicy = { maxAttempts: 4, initialBackoffMs: 20, maxBackoffMs: 100 };
const ca = createCertificateAuthority("test-smtp-ca");
const serverCert = ca.issueServing("smtp.test", ["localhost"], ["127.0.0.1"]);

function deliverer(channels: Channel[], policy = fast) {
  const registry = newRegistry();
  return { registry, d: new Deliverer({ channels, policy, registry, log: testLog }) };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function sink(opts: Parameters<typeof startSmtpSink>[0]): Promise<SmtpSink> {
  const s = await startSmtpSink(opts);
  cleanups.push(() => s.close());
  return s;
}

describe("email over SMTP", () => {
  it.each([
    ["plain, no AUTH (a relay)", "plain", "none", false],
    ["STARTTLS with AUTH", "starttls", "starttls", true],
    ["implicit TLS on a custom port with AUTH", "tls", "tls", true],
  ] as const)(
    "delivers %s, with a stable Message-ID, threading and both text and HTML",
    async (_name, mode, tls, withAuth) => {
      const server = await sink({
        mode,
        cert: serverCert.certPem,
        key: serverCert.keyPem,
        users: withAuth ? { mxops: "s3cret" } : undefined,
      });
      const email = new EmailChannel({
        host: "127.0.0.1",
        port: server.port,
        tls,
        from: "mxops@example.com",
        auth: withAuth ? { user: "mxops", pass: "s3cret" } : undefined,
        ca: ca.certPem,
      });
      cleanups.push(() => email.close());
      const { d } = deliverer([email]);
      const outcomes = await d.deliver(alert, [alice], new Set(), async () => {});
      expect(outcomes).toEqual([expect.objectContaining({ ok: true, attempts: 1, channel: "email" })]);
      const [mail] = server.mails;
      expect(mail?.to).toEqual(["alice@example.com"]);
      expect(mail?.user).toBe(withAuth ? "mxops" : undefined);
      expect(mail?.headers.subject).toBe("[Critical] CPU of crm is critical (91%)");
      expect(mail?.headers["message-id"]).toMatch(/^<[0-9a-f]{32}@mxops\.dev>$/);
      expect(mail?.headers["in-reply-to"]).toMatch(/^<[0-9a-f]{32}@mxops\.dev>$/);
      expect(mail?.headers["x-mxops-delivery-id"]).toBe("policy-uid/crm/cpu/3/email/contact:alice");
      expect(mail?.decoded).toContain("CPU usage of crm is 91% of its limit");
      expect(mail?.headers["content-type"]).toMatch(/multipart\/alternative/);
      expect(mail?.decoded).toContain("text/html");
    },
  );

  it("refuses to send without STARTTLS when the server does not offer it", async () => {
    const server = await sink({ mode: "plain" });
    const email = new EmailChannel({
      host: "127.0.0.1",
      port: server.port,
      tls: "starttls",
      from: "mxops@example.com",
    });
    cleanups.push(() => email.close());
    const { d } = deliverer([email], { ...fast, maxAttempts: 1 });
    const [outcome] = await d.deliver(alert, [alice], new Set(), async () => {});
    expect(outcome?.ok).toBe(false);
    expect(server.mails).toEqual([]);
  });

  it("retries an SMTP 4xx with backoff and fails fast on a 5xx", async () => {
    const tempfail = await sink({ mode: "plain", reply: (_m, i) => (i < 2 ? 451 : undefined) });
    const e1 = new EmailChannel({
      host: "127.0.0.1",
      port: tempfail.port,
      tls: "none",
      from: "mxops@example.com",
    });
    const permfail = await sink({ mode: "plain", reply: () => 550 });
    const e2 = new EmailChannel({
      host: "127.0.0.1",
      port: permfail.port,
      tls: "none",
      from: "mxops@example.com",
    });
    cleanups.push(
      () => e1.close(),
      () => e2.close(),
    );

    const a = deliverer([e1]);
    const [retried] = await a.d.deliver(alert, [alice], new Set(), async () => {});
    expect(retried).toMatchObject({ ok: true, attempts: 3 });
    expect(tempfail.mails).toHaveLength(1);
    expect(
      await counterSum(a.registry, "mxops_notification_attempts_total", (l) => l.result === "retry"),
    ).toBe(2);

    const b = deliverer([e2]);
    const [failed] = await b.d.deliver(alert, [alice], new Set(), async () => {});
    expect(failed).toMatchObject({ ok: false, attempts: 1 });
    expect(failed?.error).toMatch(/SMTP 550/);
    expect(await counterSum(b.registry, "mxops_notifications_total", (l) => l.result === "failed")).toBe(1);
  });

  it("never puts a license key in a mail: the templates only see the notification's text", async () => {
    const server = await sink({ mode: "plain" });
    const email = new EmailChannel({
      host: "127.0.0.1",
      port: server.port,
      tls: "none",
      from: "mxops@example.com",
    });
    cleanups.push(() => email.close());
    const reminder: Notification = {
      ...alert,
      id: "r1",
      kind: "LicenseReminder",
      severity: "Warning",
      threadId: undefined,
    };
    const { d } = deliverer([email]);
    await d.deliver(reminder, [alice], new Set(), async () => {});
    expect(server.mails[0]?.raw).not.toMatch(/LICENSE_KEY|licenseKey/i);
  });
});

describe("signed webhooks", () => {
  const hook = (url: string): Recipient => ({
    key: "contact:carol",
    displayName: "Carol",
    webhook: { url, secret: "whsec_c2VjcmV0LWtleQ==" },
  });

  it("posts Mendix's alert fields with Alertmanager-style labels, signed over id.timestamp.payload", async () => {
    const receiver = await startHttpReceiver();
    cleanups.push(() => receiver.close());
    const { d } = deliverer([new WebhookChannel()]);
    const [outcome] = await d.deliver(
      alert,
      [hook(`${receiver.url}/hooks/mendix`)],
      new Set(),
      async () => {},
    );
    expect(outcome?.ok).toBe(true);
    const [req] = receiver.received;
    const id = String(req?.headers["webhook-id"]);
    const ts = String(req?.headers["webhook-timestamp"]);
    expect(id).toBe("policy-uid/crm/cpu/3/webhook/contact:carol");
    const expected = createHmac("sha256", Buffer.from("secret-key"))
      .update(`${id}.${ts}.${req?.body}`)
      .digest("base64");
    expect(req?.headers["webhook-signature"]).toBe(`v1,${expected}`);
    expect(signWebhook("whsec_c2VjcmV0LWtleQ==", id, Number(ts), req?.body ?? "")).toBe(`v1,${expected}`);
    const body = JSON.parse(req?.body ?? "{}");
    expect(body).toMatchObject({
      app_name: "crm",
      environment: "production",
      id,
      severity: "Critical",
      service: "mxops",
      timestamp: "2026-11-27T10:00:00Z",
      message: alert.body,
      labels: { alertname: "MendixAppCPU", namespace: "mendix-apps", app: "crm", rule: "cpu" },
      annotations: { summary: alert.title },
    });
    expect(body.fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });

  it("retries 500s, honours 429 Retry-After, retries a timeout, and fails fast on a 400", async () => {
    const flaky = await startHttpReceiver((_r, i) =>
      i === 0
        ? { status: 500 }
        : i === 1
          ? { status: 429, headers: { "retry-after": "1" } }
          : { status: 204 },
    );
    const hanging = await startHttpReceiver((_r, i) =>
      i === 0 ? { status: 200, delayMs: 5000 } : { status: 200 },
    );
    const refusing = await startHttpReceiver(() => ({ status: 400 }));
    cleanups.push(
      () => flaky.close(),
      () => hanging.close(),
      () => refusing.close(),
    );

    // A timeout well above what a loaded machine takes to answer on loopback (at 500 ms, a first attempt
    // at the refusing endpoint once timed out during the whole suite, and its 400 came on the retry).
    const { d } = deliverer([new WebhookChannel({ timeoutMs: 2000 })]);
    const [a, b, c] = await Promise.all([
      d.deliver(alert, [hook(flaky.url)], new Set(), async () => {}),
      d.deliver(alert, [hook(hanging.url)], new Set(), async () => {}),
      d.deliver(alert, [hook(refusing.url)], new Set(), async () => {}),
    ]);
    expect(a?.[0]).toMatchObject({ ok: true, attempts: 3 });
    const gap = (flaky.received[2]?.at ?? 0) - (flaky.received[1]?.at ?? 0);
    expect(gap).toBeGreaterThanOrEqual(950); // Retry-After: 1 beats the 20-100 ms backoff
    expect(new Set(flaky.received.map((r) => r.headers["webhook-id"])).size).toBe(1); // one idempotency key
    expect(b?.[0]).toMatchObject({ ok: true, attempts: 2 });
    expect(c?.[0]).toMatchObject({ ok: false, attempts: 1 });
    expect(c?.[0]?.error).toMatch(/HTTP 400/);
  });

  it("does not follow a redirect: a POST turned into a GET is not a delivery", async () => {
    const landing = await startHttpReceiver(() => ({ status: 200 }));
    const redirecting = await startHttpReceiver(() => ({
      status: 302,
      headers: { location: `${landing.url}/login` },
    }));
    cleanups.push(
      () => landing.close(),
      () => redirecting.close(),
    );
    const { d } = deliverer([new WebhookChannel({ timeoutMs: 2000 })]);
    const [outcome] = await d.deliver(alert, [hook(redirecting.url)], new Set(), async () => {});
    expect(outcome).toMatchObject({ ok: false, attempts: 1 });
    expect(outcome?.error).toMatch(/HTTP 302, a redirect \(not followed/);
    expect(redirecting.received).toHaveLength(1);
    expect(landing.received).toHaveLength(0);
  });

  it("delivers to one recipient while another's endpoint keeps failing, and skips targets already delivered", async () => {
    const good = await startHttpReceiver();
    const bad = await startHttpReceiver(() => ({ status: 503 }));
    cleanups.push(
      () => good.close(),
      () => bad.close(),
    );
    const { d } = deliverer([new WebhookChannel()]);
    const recorded: string[] = [];
    const outcomes = await d.deliver(
      alert,
      [hook(good.url), { ...hook(bad.url), key: "contact:dave" }, { ...hook(good.url), key: "contact:erin" }],
      new Set(["policy-uid/crm/cpu/3/webhook/contact:erin"]),
      async (t) => {
        recorded.push(t);
      },
    );
    expect(outcomes.map((o) => [o.recipient, o.ok])).toEqual([
      ["contact:carol", true],
      ["contact:dave", false],
    ]);
    expect(good.received).toHaveLength(1); // erin was done before: not sent again
    expect(bad.received).toHaveLength(fast.maxAttempts);
    expect(recorded).toEqual(["policy-uid/crm/cpu/3/webhook/contact:carol"]);
  });

  it("reads the signing Secret at each attempt: a failed read is retried, and other targets do not wait", async () => {
    const receiver = await startHttpReceiver();
    cleanups.push(() => receiver.close());
    const { d } = deliverer([new WebhookChannel()]);
    let reads = 0;
    const flaky: Recipient = {
      ...hook(receiver.url),
      webhook: {
        url: receiver.url,
        secret: "",
        readSecret: async () => {
          if (++reads < 3) throw new Error("GET secrets/carol-hook: 429 Too Many Requests");
          return "whsec_c2VjcmV0";
        },
      },
    };
    const outcomes = await d.deliver(
      alert,
      [flaky, { ...hook(receiver.url), key: "contact:erin" }],
      new Set(),
      async () => {},
    );
    expect(outcomes.map((o) => [o.recipient, o.ok, o.attempts])).toEqual([
      ["contact:carol", true, 3],
      ["contact:erin", true, 1],
    ]);
    expect(receiver.received).toHaveLength(2);
    expect(receiver.received.every((r) => String(r.headers["webhook-signature"]).startsWith("v1,"))).toBe(
      true,
    );
  });
});

describe("Alertmanager", () => {
  const r: Recipient = { key: "contact:alice", displayName: "Alice", alertmanager: true };
  /** An Alertmanager (an HTTP receiver), the channel posting to it (`url` maps its address), a deliverer on it. */
  const alertmanagerOn = async (resendIntervalMs: number, url = (u: string) => u) => {
    const am = await startHttpReceiver();
    cleanups.push(() => am.close());
    const channel = new AlertmanagerChannel({ url: url(am.url), resendIntervalMs });
    cleanups.push(() => channel.close());
    return { am, channel, d: deliverer([channel]).d };
  };

  it("posts to /api/v2/alerts, re-sends active alerts, resolves the old severity on escalation and sets endsAt on resolve", async () => {
    const { am, channel, d } = await alertmanagerOn(300);
    const warning: Notification = { ...alert, id: "w", kind: "AlertFiring", severity: "Warning" };
    await d.deliver(warning, [r], new Set(), async () => {});
    await d.deliver(alert, [r], new Set(), async () => {}); // escalates to Critical
    await new Promise((res) => setTimeout(res, 700)); // at least one periodic re-send
    await d.deliver(
      { ...alert, id: "ok", kind: "AlertResolved", severity: "Recovery", occurredAt: "2026-11-27T10:30:00Z" },
      [r],
      new Set(),
      async () => {},
    );

    const posts = am.received.map((p) => ({
      path: p.path,
      alerts: JSON.parse(p.body) as { labels: Record<string, string>; endsAt?: string; startsAt: string }[],
    }));
    expect(posts.every((p) => p.path === "/api/v2/alerts")).toBe(true);
    expect(posts[0]?.alerts).toEqual([
      expect.objectContaining({ labels: expect.objectContaining({ severity: "warning", app: "crm" }) }),
    ]);
    const escalation = posts[1]?.alerts ?? [];
    // The firing one carries an endsAt four re-send intervals (4 x 300 ms) ahead: Alertmanager resolves it by
    // itself if nobody re-sends it.
    const [ended, firing] = escalation;
    expect([ended?.labels.severity, ended?.endsAt]).toEqual(["warning", "2026-11-27T10:00:00Z"]);
    expect(firing?.labels.severity).toBe("critical");
    const ahead = Date.parse(firing?.endsAt ?? "") - (am.received[1]?.at ?? 0);
    expect(ahead).toBeGreaterThan(1000);
    expect(ahead).toBeLessThanOrEqual(1200);
    const resends = posts.slice(2, -1);
    expect(resends.length).toBeGreaterThanOrEqual(1);
    expect(resends[0]?.alerts.map((a) => a.labels.severity)).toEqual(["critical"]);
    expect(Date.parse(resends[0]?.alerts[0]?.endsAt ?? "")).toBeGreaterThan(Date.parse(firing?.endsAt ?? ""));
    const resolve = posts.at(-1)?.alerts ?? [];
    expect(resolve).toEqual([
      expect.objectContaining({
        endsAt: "2026-11-27T10:30:00Z",
        labels: expect.objectContaining({ severity: "critical" }),
      }),
    ]);
    expect(channel.activeCount()).toBe(0);
  });

  it("keeps exactly the alerts a policy evaluation says fire: ends the others, posts missing ones, leaves muted apps", async () => {
    const { am, channel } = await alertmanagerOn(0);
    const labels = (app: string, rule = "cpu") => ({
      alertname: "MendixCPU",
      namespace: "apps",
      app,
      rule,
      policy: "team",
    });
    const alertOf = (app: string, severity: "warning" | "critical") => ({
      labels: labels(app),
      severity,
      startsAt: "2026-11-27T10:00:00Z",
      summary: `${app}: cpu`,
    });
    const posted = () =>
      am.received.map((p) =>
        (JSON.parse(p.body) as { labels: Record<string, string>; endsAt?: string }[]).map(
          (a) =>
            `${a.labels.app}/${a.labels.severity}${a.endsAt?.startsWith("2026-11-27T11") ? " ended" : ""}`,
        ),
      );
    const at = new Date("2026-11-27T11:00:00Z");
    // After a restart: what fires is posted again.
    await channel.setFiring("apps", "team", [alertOf("crm", "warning"), alertOf("hr", "critical")], [], at);
    // Nothing changed: nothing posted.
    await channel.setFiring("apps", "team", [alertOf("crm", "warning"), alertOf("hr", "critical")], [], at);
    // crm escalated without a notification of its own yet, hr recovered silently (sendResolved false).
    await channel.setFiring("apps", "team", [alertOf("crm", "critical")], [], at);
    // Another policy's evaluation does not touch this one's alerts.
    await channel.setFiring("apps", "other", [], [], at);
    expect(posted()).toEqual([
      ["crm/warning", "hr/critical"],
      ["crm/warning ended", "hr/critical ended", "crm/critical"],
    ]);
    expect(channel.activeCount()).toBe(1);
    // crm muted (its app stopped) while still firing: kept as it is, not ended; billing, muted and firing but
    // never announced, is not posted either.
    await channel.setFiring(
      "apps",
      "team",
      [],
      [alertOf("crm", "critical"), alertOf("billing", "warning")],
      at,
    );
    expect(posted()).toHaveLength(2);
    // crm recovered while muted: no longer among the held ones, so it is ended.
    await channel.setFiring("apps", "team", [], [], at);
    expect(posted().at(-1)).toEqual(["crm/critical ended"]);
    expect(channel.activeCount()).toBe(0);
  });

  it("after a restart keeps a muted app's alert that was announced, and still announces none that was not", async () => {
    const { am, channel } = await alertmanagerOn(0); // a fresh channel: what a restarted operator has
    const held = (app: string, announced: boolean) => ({
      labels: { alertname: "MendixCPU", namespace: "apps", app, rule: "cpu", policy: "team" },
      severity: "warning" as const,
      startsAt: "2026-11-27T10:00:00Z",
      summary: `${app}: cpu`,
      announced,
    });
    const at = new Date("2026-11-27T11:00:00Z");
    await channel.setFiring("apps", "team", [], [held("crm", true), held("billing", false)], at);
    const posts = am.received.map((p) =>
      (JSON.parse(p.body) as { labels: Record<string, string> }[]).map((a) => a.labels.app),
    );
    expect(posts).toEqual([["crm"]]);
    // Kept from now on as before the restart: re-sent, not posted again, ended when it stops firing.
    await channel.setFiring("apps", "team", [], [held("crm", true), held("billing", false)], at);
    expect(am.received).toHaveLength(1);
    expect(channel.activeCount()).toBe(1);
  });

  it("sends credentials in --alertmanager-url as basic auth, and no failure message repeats them", async () => {
    const { am, d } = await alertmanagerOn(0, (u) => u.replace("http://", "http://ops:pa%3Ass@"));
    const [sent] = await d.deliver({ ...alert, id: "auth" }, [r], new Set(), async () => {});
    expect(sent?.ok).toBe(true);
    expect(am.received[0]?.path).toBe("/api/v2/alerts");
    expect(am.received[0]?.headers.authorization).toBe(
      `Basic ${Buffer.from("ops:pa:ss").toString("base64")}`,
    );
    const down = new AlertmanagerChannel({ url: "http://ops:pa%3Ass@127.0.0.1:1", resendIntervalMs: 0 });
    cleanups.push(() => down.close());
    const failed = await deliverer([down]).d.deliver(
      { ...alert, id: "down" },
      [r],
      new Set(),
      async () => {},
    );
    expect(failed[0]?.ok).toBe(false);
    expect(failed[0]?.error).not.toMatch(/pa%3Ass|pa:ss/);
  });

  it("posts notices (reminders, NoData, tests) as alerts that fire once and end by themselves", async () => {
    const { am, channel, d } = await alertmanagerOn(0);
    const notice = (kind: Notification["kind"], severity: Notification["severity"], id: string) =>
      d.deliver({ ...alert, id, kind, severity, threadId: undefined }, [r], new Set(), async () => {});
    await notice("LicenseReminder", "Warning", "reminder");
    await notice("AlertNoData", "Warning", "nodata");
    await notice("Test", "Ok", "test");
    const alerts = am.received.map(
      (p) =>
        (JSON.parse(p.body) as { labels: Record<string, string>; startsAt: string; endsAt?: string }[])[0],
    );
    expect(alerts.map((a) => [a?.labels.alertname, a?.labels.severity, a?.startsAt, a?.endsAt])).toEqual([
      ["MendixAppCPU", "warning", "2026-11-27T10:00:00Z", "2026-11-27T11:00:00.000Z"],
      ["MendixAppCPUNoData", "warning", "2026-11-27T10:00:00Z", "2026-11-27T11:00:00.000Z"],
      ["MendixAppCPU", "info", "2026-11-27T10:00:00Z", "2026-11-27T11:00:00.000Z"],
    ]);
    expect(channel.activeCount()).toBe(0); // nothing kept to re-send or resolve
  });
});

describe("the outbox on a real API server", () => {
  /** A namespace with TechnicalContact carol, the outbox's owner; `stored()` reads her back as kubectl does. */
  const carolIn = async (prefix: string) => {
    await installCrds();
    const ns = await newNamespace(prefix);
    await kubectl(
      adminKubeconfig(),
      ["apply", "-f", "-"],
      `apiVersion: mxops.dev/v1alpha1
kind: TechnicalContact
metadata: {name: carol, namespace: ${ns}}
spec: {displayName: Carol, email: carol@example.com}
`,
    );
    const owner: Owner = { rt: TECHNICAL_CONTACTS, namespace: ns, name: "carol" };
    const stored = async () =>
      JSON.parse(
        await kubectl(adminKubeconfig(), ["get", "technicalcontact", "carol", "-n", ns, "-o", "json"]),
      ) as OwnerObject;
    return { ns, owner, stored };
  };
  const senderOn = (client: KubeClient, deliverer: Deliverer, registry = newRegistry()) =>
    new NotificationSender({
      client,
      deliverer,
      events: new EventRecorder({ client, controller: "mxops.dev/operator", instance: "test", log: testLog }),
      log: testLog,
      registry,
    });

  it("retries the write that closes a record instead of sending the message again", async () => {
    const { ns, owner, stored } = await carolIn("closing");
    // The API server is briefly unavailable for the one status write that closes the record as Sent.
    let refused = 0;
    class RefusesFirstClose extends KubeClient {
      override async patch<T extends KubeObject>(
        rt: ResourceType,
        namespace: string | undefined,
        name: string,
        patch: unknown,
        type: PatchType,
        opts: { subresource?: string; fieldManager?: string; force?: boolean } = {},
      ): Promise<T> {
        if (opts.subresource === "status" && !refused && JSON.stringify(patch).includes('"Sent"')) {
          refused++;
          throw new Error("the server is currently unable to handle the request (503)");
        }
        return await super.patch<T>(rt, namespace, name, patch, type, opts);
      }
    }
    const client = new RefusesFirstClose(loadKubeConfig(adminKubeconfig()));
    const receiver = await startHttpReceiver();
    cleanups.push(() => receiver.close());
    const registry = newRegistry();
    const sender = senderOn(
      client,
      new Deliverer({ channels: [new WebhookChannel()], policy: fast, registry, log: testLog }),
      registry,
    );
    const carol: Recipient = {
      key: "contact:carol",
      displayName: "Carol",
      webhook: { url: receiver.url, secret: "whsec_c2VjcmV0LWtleQ==" },
    };
    const opts = () => ({ recipients: async () => [carol] });
    const written = await sender.record(owner, [{ ...alert, id: `closing/${ns}` }]);
    const record = written?.status?.notifications?.[0];
    if (!written || !record) throw new Error("the record was not written");
    sender.submit(owner, record, opts(), written);
    await sender.idle();
    // As the next reconcile would: resume whatever is still Pending.
    sender.resume(owner, await stored(), opts);
    await sender.idle();
    expect(refused).toBe(1);
    expect(receiver.received).toHaveLength(1);
    expect((await stored()).status?.notifications?.[0]).toMatchObject({ state: "Sent" });
  });

  it("does not send or count again a target that failed while another one is held for the digest", async () => {
    const { ns, owner, stored } = await carolIn("held-failed");
    const client = new KubeClient(loadKubeConfig(adminKubeconfig()));
    const refusing = await startHttpReceiver(() => ({ status: 400 }));
    const fine = await startHttpReceiver();
    cleanups.push(
      () => refusing.close(),
      () => fine.close(),
    );
    // Two messages per hour: dave had his two, carol has room for another (a retry would not be held).
    const cap = new RecipientCap(2, 3_600_000);
    for (let i = 0; i < 2; i++) cap.admit("webhook:contact:dave", "Warning", Date.now());
    const registry = newRegistry();
    const sender = senderOn(
      client,
      new Deliverer({ channels: [new WebhookChannel()], policy: fast, registry, log: testLog, cap }),
      registry,
    );
    const hookTo = (key: string, url: string): Recipient => ({
      key,
      displayName: key,
      webhook: { url, secret: "whsec_c2VjcmV0LWtleQ==" },
    });
    const opts = () => ({
      recipients: async () => [hookTo("contact:carol", refusing.url), hookTo("contact:dave", fine.url)],
    });
    const warning: Notification = {
      ...alert,
      id: `held-failed/${ns}`,
      kind: "AlertFiring",
      severity: "Warning",
    };
    const written = await sender.record(owner, [warning]);
    const record = written?.status?.notifications?.[0];
    if (!written || !record) throw new Error("the record was not written");
    sender.submit(owner, record, opts(), written);
    await sender.idle();
    expect((await stored()).status?.notifications?.[0]).toMatchObject({
      state: "Pending",
      failed: [`held-failed/${ns}/webhook/contact:carol`],
      held: [`held-failed/${ns}/webhook/contact:dave`],
    });
    // The next two reconciles resume it: carol's refused webhook is not tried again, nor counted again.
    for (let i = 0; i < 2; i++) {
      sender.resume(owner, await stored(), opts);
      await sender.idle();
    }
    expect(refusing.received).toHaveLength(1);
    expect(fine.received).toHaveLength(0);
    expect(
      await counterSum(
        registry,
        "mxops_notifications_total",
        (l) => l.channel === "webhook" && l.result === "failed",
      ),
    ).toBe(1);
  });
});
