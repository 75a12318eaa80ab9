// The outbox kept in an owner's status: pure operations on notification records.
import { MAX_NOTIFICATION_RECORDS, type NotificationRecord } from "../api/common.ts";
import { isoSeconds as iso } from "../runtime/clock.ts";
import type { TargetOutcome } from "./deliver.ts";
import type { Notification, NotificationKind } from "./message.ts";

const KEEP_COMPLETED = 16;
/** The status schema's limits of a record's title and body (NotificationRecord). */
const MAX_TITLE = 256;
const MAX_BODY = 4096;

/**
 * How many new records fit in the outbox now: what is pending stays until delivered, completed records are
 * pruned down to KEEP_COMPLETED. A caller with more intents than this defers the rest (see the AlertPolicy
 * controller), so a storm is delayed, never written past the limit (the API server would refuse the write).
 */
export function outboxRoom(records: NotificationRecord[] | undefined): number {
  const completed = (records ?? []).filter((r) => r.state !== "Pending").length;
  return Math.max(0, urgentRoom(records) - Math.min(completed, KEEP_COMPLETED));
}

/** `text` cut to `max` characters, the cut marked with an ellipsis (never half a surrogate pair). */
export function boundedText(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = text.slice(0, max - 1);
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/**
 * Adds Pending records for notifications not recorded yet (same id = same notification); prunes old completed ones.
 * Titles and bodies are cut to what the status schema takes (256 and 4,096 characters): a long app name in a
 * title must not make every status write of its owner fail.
 */
export function recordIntents(
  records: NotificationRecord[] | undefined,
  notifications: Notification[],
  now: Date,
): NotificationRecord[] {
  const list = [...(records ?? [])];
  const known = new Set(list.map((r) => r.id));
  for (const n of notifications) {
    if (known.has(n.id)) continue;
    known.add(n.id);
    list.push({
      ...n,
      title: boundedText(n.title, MAX_TITLE),
      body: boundedText(n.body, MAX_BODY),
      state: "Pending",
      createdAt: iso(now),
    });
  }
  return prune(list);
}

function prune(list: NotificationRecord[]): NotificationRecord[] {
  const completed = list.filter((r) => r.state !== "Pending");
  // Completed records make room for pending ones beyond KEEP_COMPLETED (urgent ones, see urgentRoom).
  const keep = Math.max(
    0,
    Math.min(KEEP_COMPLETED, MAX_NOTIFICATION_RECORDS - (list.length - completed.length)),
  );
  if (completed.length <= keep) return list;
  const drop = new Set(
    completed
      .sort((a, b) => (a.completedAt ?? a.createdAt).localeCompare(b.completedAt ?? b.createdAt))
      .slice(0, completed.length - keep)
      .map((r) => r.id),
  );
  return list.filter((r) => !drop.has(r.id));
}

/**
 * Room for urgent records (a Critical alert, a recovery): every completed record may go for them, so a storm's
 * pending and held Warnings delay them only once the outbox is all pending.
 */
export function urgentRoom(records: NotificationRecord[] | undefined): number {
  return Math.max(0, MAX_NOTIFICATION_RECORDS - (records ?? []).filter((r) => r.state === "Pending").length);
}

/** Critical alerts and recoveries go first when the outbox is short of room. */
export const isUrgent = (n: Pick<Notification, "severity">) =>
  n.severity === "Critical" || n.severity === "Recovery";

export function markDelivered(
  records: NotificationRecord[],
  id: string,
  target: string,
): NotificationRecord[] {
  return records.map((r) =>
    r.id === id && !r.delivered?.includes(target) ? { ...r, delivered: [...(r.delivered ?? []), target] } : r,
  );
}

/**
 * Closes a delivery run: Sent when no target failed, Failed otherwise (with the reasons). Targets held by the
 * recipient cap keep the record Pending until the digest carrying them is delivered (see releaseHeld).
 */
export function complete(
  records: NotificationRecord[],
  id: string,
  outcomes: TargetOutcome[],
  now: Date,
): NotificationRecord[] {
  const failed = outcomes.filter((o) => !o.ok && !o.held);
  const held = outcomes.filter((o) => o.held).map((o) => o.target);
  return records.map((r) => {
    if (r.id !== id) return r;
    const delivered = [
      ...new Set([...(r.delivered ?? []), ...outcomes.filter((o) => o.ok).map((o) => o.target)]),
    ];
    const next: NotificationRecord = { ...r, delivered };
    // A run that resumes a record kept Pending by held targets does not retry the ones that failed before (see
    // the sender): they stay failed, with their reasons, unless delivered since.
    const failedTargets = [
      ...new Set([...(r.failed ?? []).filter((t) => !delivered.includes(t)), ...failed.map((o) => o.target)]),
    ];
    const earlierStillFailed = (r.failed ?? []).some((t) => failedTargets.includes(t));
    if (failed.length) {
      // This run's reasons, after those of targets that failed in an earlier run and still count.
      next.message = [
        ...(earlierStillFailed && r.message ? [r.message] : []),
        ...failed.map(
          (o) => `${o.channel} to ${o.recipient} after ${o.attempts} attempt(s): ${o.error ?? "failed"}`,
        ),
      ]
        .join("; ")
        .slice(0, 1024);
    } else if (!failedTargets.length) delete next.message;
    if (failedTargets.length) next.failed = failedTargets;
    else delete next.failed;
    // Each run decides anew for every target not yet delivered, so its held list replaces the old one.
    if (held.length) return { ...next, held };
    delete next.held;
    // Nothing to send to any more (the contact or app went away between recording and sending, or its channels
    // were turned off): not Sent, which would claim someone was told.
    if (!outcomes.length && !delivered.length && !failedTargets.length)
      return settle({
        ...next,
        state: "Failed",
        message:
          "nobody to send it to when it was sent: its recipients were removed or none of their channels is on",
        completedAt: iso(now),
      });
    return settle({ ...next, state: failedTargets.length ? "Failed" : "Sent", completedAt: iso(now) });
  });
}

/** A digest carried `target`: it counts as delivered; the record closes when nothing is held any more. */
export function releaseHeld(
  records: NotificationRecord[],
  id: string,
  target: string,
  now: Date,
): NotificationRecord[] {
  return records.map((r) => {
    if (r.id !== id || !r.held?.includes(target)) return r;
    const held = r.held.filter((t) => t !== target);
    const next: NotificationRecord = {
      ...r,
      held,
      delivered: [...new Set([...(r.delivered ?? []), target])],
    };
    if (held.length === 0) {
      delete next.held;
      return settle({ ...next, state: r.failed?.length ? "Failed" : "Sent", completedAt: iso(now) });
    }
    return next;
  });
}

/**
 * A record whose delivery finished keeps what it was and how it went, not what only a delivery needs (the
 * text, the receivers' labels, the mail thread): every app carries its records in its status, where each
 * byte is stored, watched and cached once per app, and rewritten with each status write.
 */
function settle(r: NotificationRecord): NotificationRecord {
  const { body: _body, labels: _labels, threadId: _threadId, ...kept } = r;
  if (kept.delivered?.length === 0) delete kept.delivered;
  return kept;
}

export function pendingRecords(records: NotificationRecord[] | undefined): NotificationRecord[] {
  return (records ?? []).filter((r) => r.state === "Pending");
}

export function toNotification(r: NotificationRecord): Notification {
  return {
    id: r.id,
    kind: r.kind as NotificationKind,
    severity: r.severity,
    app: r.app,
    title: r.title,
    body: r.body ?? "",
    threadId: r.threadId,
    occurredAt: r.occurredAt,
    labels: r.labels,
  };
}
