// What the operator tells people: notification kinds, recipients, and their rendering as mail and webhook JSON.
import { createHash } from "node:crypto";

export const NOTIFICATION_KINDS = [
  "LicenseReminder",
  "MaintenanceNotice",
  "ContactAssigned",
  "ContactRemoved",
  "NoTechnicalContact",
  "AlertFiring",
  "AlertEscalated",
  "AlertResolved",
  "AlertNoData",
  "Test",
  "Digest",
] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

export type Severity = "Ok" | "Warning" | "Critical" | "Recovery";

/** One message, as recorded in the owner's status before sending: everything needed to render it again. */
export interface Notification {
  /** Idempotency key, stable across restarts (derived from the cause, never random). */
  id: string;
  kind: NotificationKind;
  severity: Severity;
  /** The app it concerns (absent for a contact's test message). */
  app?: { namespace: string; name: string; environment?: string };
  /** Short subject line. */
  title: string;
  /** The plain-text body. */
  body: string;
  /** For alerts: the id of the first notification of the alert, so mail clients thread them. */
  threadId?: string;
  /** RFC 3339 time of the event the notification reports. */
  occurredAt: string;
  /** Extra labels for webhook and Alertmanager receivers (bounded, non-secret). */
  labels?: Record<string, string>;
}

/** A person (or team member) and the channels to reach them, resolved at send time. */
export interface Recipient {
  /** Stable key, e.g. "contact:alice" or "user:dave@example.com". */
  key: string;
  displayName: string;
  email?: string;
  /**
   * `readSecret`, when set, reads the signing key at each attempt (a failed read fails that attempt, to be
   * retried, not the whole delivery); else `secret` is the key.
   */
  webhook?: { url: string; secret: string; readSecret?: () => Promise<string> };
  alertmanager?: boolean;
}

export type ChannelName = "email" | "webhook" | "alertmanager";

/**
 * An id of at most `max` characters (a status keeps 253): a longer one (long app, volume or contact names) keeps
 * its first part and a hash of the whole, so it stays stable and distinct.
 */
export function boundedId(id: string, max = 253): string {
  if (id.length <= max) return id;
  return `${id.slice(0, max - 41)}~${createHash("sha256").update(id).digest("hex").slice(0, 40)}`;
}

/** Per recipient and channel: the unit that is delivered, retried and marked done on its own. */
export function targetKey(notificationId: string, channel: ChannelName, recipientKey: string): string {
  return `${notificationId}/${channel}/${recipientKey}`;
}

const escapeHtml = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c,
  );

export interface RenderedMail {
  subject: string;
  text: string;
  html?: string;
  messageId: string;
  inReplyTo?: string;
}

/** A fixed-width id for mail headers from any string (ids may contain '/' or be long). */
function mailId(s: string): string {
  return `<${createHash("sha256").update(s).digest("hex").slice(0, 32)}@mxops.dev>`;
}

export function renderMail(
  n: Notification,
  recipient: Recipient,
  html: (n: Notification, r: Recipient) => string = htmlTemplate,
): RenderedMail {
  const prefix = n.severity === "Critical" || n.severity === "Warning" ? `[${n.severity}] ` : "";
  const where = n.app
    ? ` (${n.app.namespace}/${n.app.name}${n.app.environment ? `, ${n.app.environment}` : ""})`
    : "";
  const text = `Hello ${recipient.displayName},\n\n${n.body}\n\n-- \nmxops, on behalf of your Kubernetes platform team${where}\nReference: ${n.id}\n`;
  let renderedHtml: string | undefined;
  try {
    renderedHtml = html(n, recipient);
  } catch {
    // A broken HTML template must not cost the message: the plain text alone is sent.
    renderedHtml = undefined;
  }
  return {
    subject: `${prefix}${n.title}`,
    text,
    html: renderedHtml,
    messageId: mailId(`${n.id}|${recipient.key}`),
    inReplyTo: n.threadId && n.threadId !== n.id ? mailId(`${n.threadId}|${recipient.key}`) : undefined,
  };
}

export function htmlTemplate(n: Notification, r: Recipient): string {
  const colour = { Ok: "#2e7d32", Recovery: "#2e7d32", Warning: "#ef6c00", Critical: "#c62828" }[n.severity];
  const paragraphs = n.body
    .split("\n\n")
    .map((p) => `<p>${escapeHtml(p).replaceAll("\n", "<br>")}</p>`)
    .join("\n");
  return `<!doctype html><html><body style="font-family:sans-serif">
<p>Hello ${escapeHtml(r.displayName)},</p>
<h2 style="color:${colour}">${escapeHtml(n.title)}</h2>
${paragraphs}
<p style="color:#777;font-size:small">mxops &middot; reference ${escapeHtml(n.id)}</p>
</body></html>`;
}

/** Alertmanager-style fingerprint: a stable hash of the sorted labels. */
export function fingerprint(labels: Record<string, string>): string {
  const sorted = Object.keys(labels)
    .sort()
    .map((k) => `${k}\u0000${labels[k]}`)
    .join("\u0001");
  return createHash("sha256").update(sorted).digest("hex").slice(0, 16);
}

export function alertLabels(n: Pick<Notification, "kind" | "app" | "labels">): Record<string, string> {
  return {
    alertname: n.labels?.alertname ?? `Mendix${n.kind}`,
    ...(n.app ? { namespace: n.app.namespace, app: n.app.name } : {}),
    ...(n.app?.environment ? { environment: n.app.environment } : {}),
    ...n.labels,
  };
}

/** The webhook body: Mendix's alert-webhook fields plus Alertmanager-v4-style labels, annotations and fingerprint. */
export function webhookPayload(n: Notification, deliveryId: string, baseUrl?: string) {
  const labels = alertLabels(n);
  return {
    id: deliveryId,
    app_name: n.app?.name ?? "",
    environment: n.app?.environment ?? "",
    message: n.body,
    service: "mxops",
    severity: n.severity,
    timestamp: n.occurredAt,
    url:
      baseUrl && n.app
        ? `${baseUrl.replace(/\/$/, "")}/namespaces/${n.app.namespace}/mendixapps/${n.app.name}`
        : "",
    kind: n.kind,
    labels,
    annotations: { summary: n.title, description: n.body },
    fingerprint: fingerprint(labels),
    status: n.severity === "Recovery" || n.severity === "Ok" ? "resolved" : "firing",
  };
}
