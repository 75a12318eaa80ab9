// Delivery channels: SMTP email, signed webhook, Alertmanager. Each send either succeeds or throws a DeliveryError
// that says whether trying again can help.

import { createHmac } from "node:crypto";
import { createTransport } from "nodemailer";
import { withoutCredentials } from "../runtime/url.ts";
import {
  alertLabels,
  type ChannelName,
  type Notification,
  type Recipient,
  renderMail,
  webhookPayload,
} from "./message.ts";

export class DeliveryError extends Error {
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  constructor(message: string, retryable: boolean, retryAfterMs?: number) {
    super(message);
    this.name = "DeliveryError";
    this.retryable = retryable;
    this.retryAfterMs = retryAfterMs;
  }
}

export interface Channel {
  readonly name: ChannelName;
  /** Whether this recipient can be reached on this channel at all. */
  reaches(recipient: Recipient): boolean;
  /** `deliveryId` is the target's idempotency key: the same on every retry and after restarts. */
  send(n: Notification, recipient: Recipient, deliveryId: string): Promise<void>;
  close?(): void;
}

// ---------------------------------------------------------------------------------------------- email

export type SmtpTlsMode = "none" | "starttls" | "tls";

export interface SmtpSettings {
  host: string;
  port: number;
  /** none: plain (relays on localhost); starttls: upgrade, required; tls: implicit TLS on any port. */
  tls: SmtpTlsMode;
  from: string;
  auth?: { user: string; pass: string };
  /** PEM of a private CA the server's certificate chains to. */
  ca?: string;
  timeoutMs?: number;
}

export class EmailChannel implements Channel {
  readonly name = "email" as const;
  private readonly settings: SmtpSettings;
  private readonly transport: ReturnType<typeof createTransport>;

  constructor(settings: SmtpSettings) {
    this.settings = settings;
    const timeout = settings.timeoutMs ?? 20_000;
    this.transport = createTransport({
      host: settings.host,
      port: settings.port,
      secure: settings.tls === "tls",
      requireTLS: settings.tls === "starttls",
      ignoreTLS: settings.tls === "none",
      auth: settings.auth,
      tls: settings.ca ? { ca: settings.ca } : undefined,
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: timeout,
    });
  }

  reaches(r: Recipient): boolean {
    return !!r.email;
  }

  async send(n: Notification, r: Recipient, deliveryId: string): Promise<void> {
    const mail = renderMail(n, r);
    try {
      await this.transport.sendMail({
        from: this.settings.from,
        to: r.email,
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
        messageId: mail.messageId,
        inReplyTo: mail.inReplyTo,
        references: mail.inReplyTo,
        headers: {
          "X-Mxops-Delivery-Id": deliveryId,
          "X-Mxops-Kind": n.kind,
          "X-Mxops-Severity": n.severity,
        },
      });
    } catch (err) {
      const e = err as { responseCode?: number; code?: string; message?: string };
      // SMTP 4xx: the server asks us to try later. 5xx: it will never accept this mail.
      if (e.responseCode !== undefined) {
        throw new DeliveryError(`SMTP ${e.responseCode}: ${e.message}`, e.responseCode < 500);
      }
      // Connection refused, timeouts, TLS failures: the server or the path may come back.
      const permanent = e.code === "EAUTH" || e.code === "EENVELOPE" || e.code === "EMESSAGE";
      throw new DeliveryError(`SMTP ${e.code ?? "error"}: ${e.message}`, !permanent);
    }
  }

  close(): void {
    this.transport.close();
  }
}

// -------------------------------------------------------------------------------------------- webhook

/** Standard Webhooks signing (what Mendix's webhooks use): base64 HMAC-SHA256 over "id.timestamp.payload". */
export function signWebhook(secret: string, id: string, timestampSeconds: number, payload: string): string {
  const key = secret.startsWith("whsec_")
    ? Buffer.from(secret.slice(6), "base64")
    : Buffer.from(secret, "utf8");
  return `v1,${createHmac("sha256", key).update(`${id}.${timestampSeconds}.${payload}`).digest("base64")}`;
}

function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header)) return Number(header) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * Classifies an HTTP answer: 2xx done; 429 and 5xx retry (honouring Retry-After); other 4xx are final, and so is a
 * redirect, which is not followed: fetch would repeat a 301/302/303 as a GET without the body, and that GET's 2xx
 * would count as delivered.
 */
function httpOutcome(status: number, retryAfter: string | null, what: string): void {
  if (status >= 200 && status < 300) return;
  if (status >= 300 && status < 400)
    throw new DeliveryError(
      `${what}: HTTP ${status}, a redirect (not followed: set the URL it points to)`,
      false,
    );
  const retryable = status === 429 || status >= 500 || status === 408;
  throw new DeliveryError(
    `${what}: HTTP ${status}`,
    retryable,
    retryable ? retryAfterMs(retryAfter) : undefined,
  );
}

async function post(
  url: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
  what: string,
) {
  let res: Awaited<ReturnType<typeof fetch>>;
  try {
    res = await fetch(url, {
      method: "POST",
      body,
      headers: { "content-type": "application/json", "user-agent": "mxops", ...headers },
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new DeliveryError(`${what}: ${(err as Error).message}`, true);
  }
  await res.body?.cancel();
  httpOutcome(res.status, res.headers.get("retry-after"), what);
}

export class WebhookChannel implements Channel {
  readonly name = "webhook" as const;
  private readonly timeoutMs: number;
  private readonly clock: () => number;
  private readonly consoleUrl: string | undefined;

  constructor(opts: { timeoutMs?: number; clock?: () => number; consoleUrl?: string } = {}) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.clock = opts.clock ?? Date.now;
    this.consoleUrl = opts.consoleUrl;
  }

  reaches(r: Recipient): boolean {
    return !!r.webhook;
  }

  async send(n: Notification, r: Recipient, deliveryId: string): Promise<void> {
    if (!r.webhook) throw new DeliveryError("recipient has no webhook", false);
    let secret = r.webhook.secret;
    if (r.webhook.readSecret) {
      try {
        secret = await r.webhook.readSecret();
      } catch (err) {
        // A 429 or a timeout reading the Secret: this attempt fails and is retried; email is not held up.
        throw new DeliveryError(
          `reading the webhook's signing Secret failed: ${(err as Error).message}`,
          true,
        );
      }
    }
    if (!secret) {
      throw new DeliveryError(
        "webhook has no signing key: set channels.webhook.secretRef to a Secret with key 'secret'",
        false,
      );
    }
    const payload = JSON.stringify(webhookPayload(n, deliveryId, this.consoleUrl));
    const timestamp = Math.floor(this.clock() / 1000);
    await post(
      r.webhook.url,
      payload,
      {
        "webhook-id": deliveryId,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": signWebhook(secret, deliveryId, timestamp, payload),
      },
      this.timeoutMs,
      `webhook ${new URL(r.webhook.url).host}`,
    );
  }
}

// ---------------------------------------------------------------------------------------- alertmanager

interface AmAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt?: string;
  generatorURL?: string;
}

/** The kinds that are an alert's state (firing, changed, resolved): kept active and re-sent until resolved. */
const ALERT_STATE_KINDS = new Set<Notification["kind"]>(["AlertFiring", "AlertEscalated", "AlertResolved"]);
/** How long a notice (anything else) stays firing in Alertmanager: long enough for its group_wait. */
const NOTICE_LIFETIME_MS = 3_600_000;

/** Which alert a label set (without severity) is, for the channel's memory of the alerts it posted. */
const alertKey = (labels: Record<string, string>) => JSON.stringify(Object.entries(labels).sort());

/** An alert that is firing now, as an AlertPolicy evaluation found it. */
export interface FiringAlert {
  /** Its identity: the labels of its notifications (alertname, namespace, app, environment, rule, policy, volume). */
  labels: Record<string, string>;
  severity: "warning" | "critical";
  startsAt: string;
  summary: string;
  /**
   * For a held one (its app muted): it was announced while firing (a notification of it went out), so Alertmanager
   * had it. After a restart, which forgets what was posted, it is posted again to keep it, not left to lapse and
   * be announced anew when the mute ends.
   */
  announced?: boolean;
}

/**
 * Posts alerts to Alertmanager's /api/v2/alerts. Firing alerts are re-sent every `resendIntervalMs` with an
 * endsAt four of those ahead (as Prometheus does), so that Alertmanager resolves them by itself when nobody
 * re-sends them (the operator stopped); each policy evaluation says which of its alerts fire (setFiring), so
 * one that ended without a notification (a muted recovery, sendResolved false, a rule, app or policy removed)
 * is ended, and after a restart the firing ones are posted again.
 */
export class AlertmanagerChannel implements Channel {
  readonly name = "alertmanager" as const;
  private readonly url: string;
  private readonly timeoutMs: number;
  private readonly active = new Map<string, AmAlert>();
  private readonly timer: NodeJS.Timeout | undefined;

  /** Basic auth from credentials in --alertmanager-url, sent as a header: the URL itself never carries them. */
  private readonly auth: Record<string, string>;

  /** How far ahead a firing alert's endsAt is set when it is posted (0: none, Alertmanager's resolve_timeout). */
  private readonly leaseMs: number;

  constructor(opts: { url: string; timeoutMs?: number; resendIntervalMs?: number }) {
    const { url, headers } = withoutCredentials(opts.url);
    this.url = `${url.replace(/\/$/, "")}/api/v2/alerts`;
    this.auth = headers;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    const every = opts.resendIntervalMs ?? 60_000;
    this.leaseMs = 4 * every;
    if (every > 0) {
      this.timer = setInterval(() => {
        void this.resendActive().catch(() => {
          // The next round tries again; a missed round only matters after resolve_timeout (5m by default).
        });
      }, every);
      this.timer.unref();
    }
  }

  reaches(r: Recipient): boolean {
    return !!r.alertmanager;
  }

  /**
   * One alert per subject (app, rule...), whoever the recipients are. Alertmanager identifies an alert by its
   * whole label set, so a change of severity resolves the old alert and fires the new one in the same post.
   */
  async send(n: Notification, _r: Recipient, _deliveryId: string): Promise<void> {
    const annotations = { summary: n.title, description: n.body };
    const identity = alertLabels(n);
    if (!ALERT_STATE_KINDS.has(n.kind)) {
      // A notice, not an alert's state (a reminder, a maintenance notice, a NoData notice, a test): one alert
      // that fires now and ends by itself, so Alertmanager notifies once and nothing is kept to resolve later.
      // Posted resolved, as Ok notices were, Alertmanager would never have told anyone.
      const labels = {
        ...identity,
        ...(n.kind === "AlertNoData" ? { alertname: `${identity.alertname}NoData` } : {}),
        severity: n.severity === "Ok" || n.severity === "Recovery" ? "info" : n.severity.toLowerCase(),
      };
      const endsAt = new Date(Date.parse(n.occurredAt) + NOTICE_LIFETIME_MS).toISOString();
      await this.postAlerts([{ labels, annotations, startsAt: n.occurredAt, endsAt }]);
      return;
    }
    const key = alertKey(identity);
    const previous = this.active.get(key);
    const resolved = n.severity === "Recovery" || n.severity === "Ok";
    const batch: AmAlert[] = [];
    if (resolved) {
      this.active.delete(key);
      // After a restart the firing severity is unknown: resolving an alert Alertmanager does not have is harmless.
      const severities = previous ? [previous.labels.severity ?? "warning"] : ["warning", "critical"];
      for (const severity of severities) {
        batch.push({
          labels: { ...identity, severity },
          annotations,
          startsAt: previous?.startsAt ?? n.occurredAt,
          endsAt: n.occurredAt,
        });
      }
    } else {
      const severity = n.severity.toLowerCase();
      if (previous && previous.labels.severity !== severity)
        batch.push({ ...previous, endsAt: n.occurredAt });
      const alert: AmAlert = {
        labels: { ...identity, severity },
        annotations,
        startsAt: previous && previous.labels.severity === severity ? previous.startsAt : n.occurredAt,
      };
      this.active.set(key, alert);
      batch.push(alert);
    }
    await this.postAlerts(batch);
  }

  /**
   * The alerts of policy `namespace/policy` that fire now: those Alertmanager lacks (or has at another severity)
   * are posted, those no longer firing are ended. `held` ones (a muted app's firing alerts) are kept as they are
   * if Alertmanager has them, and neither announced nor changed; after a restart, the announced ones are posted
   * again (Alertmanager had them).
   */
  async setFiring(
    namespace: string,
    policy: string,
    firing: FiringAlert[],
    held: FiringAlert[] = [],
    now = new Date(),
  ): Promise<void> {
    const wanted = new Map(firing.map((f) => [alertKey(f.labels), f]));
    const keep = new Set(held.map((f) => alertKey(f.labels)));
    const endsAt = now.toISOString();
    const batch: AmAlert[] = [];
    for (const [key, alert] of this.active) {
      const l = alert.labels;
      if (l.namespace !== namespace || l.policy !== policy || keep.has(key)) continue;
      const f = wanted.get(key);
      if (f && f.severity === l.severity) continue;
      this.active.delete(key);
      batch.push({ ...alert, endsAt });
    }
    // Posted (and kept from now on): what fires and Alertmanager lacks, and after a restart the held ones it had.
    const post = (key: string, f: FiringAlert) => {
      if (this.active.has(key)) return;
      const alert: AmAlert = {
        labels: { ...f.labels, severity: f.severity },
        annotations: { summary: f.summary },
        startsAt: f.startsAt,
      };
      this.active.set(key, alert);
      batch.push(alert);
    };
    for (const f of held) if (f.announced) post(alertKey(f.labels), f);
    for (const [key, f] of wanted) post(key, f);
    if (batch.length) await this.postAlerts(batch);
  }

  activeCount(): number {
    return this.active.size;
  }

  async resendActive(): Promise<void> {
    if (this.active.size === 0) return;
    await this.postAlerts([...this.active.values()]);
  }

  /** Firing ones (no endsAt) go out with one `leaseMs` ahead: re-sent in time, they never lapse. */
  private async postAlerts(alerts: AmAlert[]): Promise<void> {
    const lease = this.leaseMs ? new Date(Date.now() + this.leaseMs).toISOString() : undefined;
    const body = alerts.map((a) => (a.endsAt || !lease ? a : { ...a, endsAt: lease }));
    await post(this.url, JSON.stringify(body), this.auth, this.timeoutMs, "alertmanager");
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
