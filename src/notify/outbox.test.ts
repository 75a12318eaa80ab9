import { describe, expect, it } from "vitest";
import { NotificationRecord } from "../api/common.ts";
import type { TargetOutcome } from "./deliver.ts";
import { boundedId, fingerprint, type Notification, renderMail, webhookPayload } from "./message.ts";
import {
  boundedText,
  complete,
  isUrgent,
  markDelivered,
  outboxRoom,
  pendingRecords,
  recordIntents,
  releaseHeld,
  urgentRoom,
} from "./outbox.ts";

const now = new Date("2026-11-27T10:00:00.500Z");
const n = (id: string): Notification => ({
  id,
  kind: "LicenseReminder",
  severity: "Warning",
  app: { namespace: "apps", name: "crm", environment: "production" },
  title: "License of crm expires in 30 days",
  body: "The license expires on 2027-01-01.\n\nAsk your account executive to renew it.",
  occurredAt: "2026-11-27T10:00:00Z",
});
const outcome = (target: string, ok: boolean, extra: Partial<TargetOutcome> = {}): TargetOutcome => ({
  target,
  channel: "email",
  recipient: target.split("/").pop() ?? "",
  ok,
  attempts: ok ? 1 : 8,
  ...extra,
});

describe("the outbox", () => {
  it("records each notification once, as Pending, whatever is recorded again", () => {
    const once = recordIntents(undefined, [n("a"), n("b")], now);
    const twice = recordIntents(once, [n("a"), n("c")], now);
    expect(twice.map((r) => [r.id, r.state, r.createdAt])).toEqual([
      ["a", "Pending", "2026-11-27T10:00:00Z"],
      ["b", "Pending", "2026-11-27T10:00:00Z"],
      ["c", "Pending", "2026-11-27T10:00:00Z"],
    ]);
    expect(pendingRecords(twice)).toHaveLength(3);
  });

  it("says how many new records fit: pending ones stay, completed ones shrink to 16", () => {
    expect(outboxRoom(undefined)).toBe(64);
    const pending = recordIntents(
      undefined,
      Array.from({ length: 40 }, (_, i) => n(`p-${i}`)),
      now,
    );
    expect(outboxRoom(pending)).toBe(24);
    let done = recordIntents(pending, [n("d-0"), n("d-1")], now);
    for (const id of ["d-0", "d-1"]) done = complete(done, id, [outcome(`${id}/email/x`, true)], now);
    expect(outboxRoom(done)).toBe(22);
    const full = recordIntents(
      undefined,
      Array.from({ length: 64 }, (_, i) => n(`f-${i}`)),
      now,
    );
    expect(outboxRoom(full)).toBe(0);
    // Recording what fits never exceeds the limit the API server enforces.
    expect(
      recordIntents(
        pending,
        Array.from({ length: outboxRoom(pending) }, (_, i) => n(`x-${i}`)),
        now,
      ),
    ).toHaveLength(64);
  });

  it("makes room for urgent records (Critical, recoveries) from the completed ones the others must leave", () => {
    // 44 held Warnings pending and 16 completed: 4 left for anything, 20 for urgent ones.
    let records = recordIntents(
      undefined,
      Array.from({ length: 16 }, (_, i) => n(`d-${i}`)),
      now,
    );
    for (let i = 0; i < 16; i++)
      records = complete(records, `d-${i}`, [outcome(`d-${i}/email/x`, true)], now);
    records = recordIntents(
      records,
      Array.from({ length: 44 }, (_, i) => n(`held-${i}`)),
      now,
    );
    expect(outboxRoom(records)).toBe(4);
    expect(urgentRoom(records)).toBe(20);
    expect(isUrgent({ severity: "Critical" })).toBe(true);
    expect(isUrgent({ severity: "Warning" })).toBe(false);
    // Recorded: the oldest completed records make way, the total stays within the API server's limit.
    const more = recordIntents(
      records,
      Array.from({ length: 20 }, (_, i) => ({ ...n(`critical-${i}`), severity: "Critical" as const })),
      now,
    );
    expect(more).toHaveLength(64);
    expect(more.filter((r) => r.state === "Pending")).toHaveLength(64);
  });

  it("keeps every pending record but only the 16 most recent completed ones", () => {
    let records = recordIntents(
      undefined,
      Array.from({ length: 20 }, (_, i) => n(`done-${i}`)),
      now,
    );
    records = records.map((r, i) => ({
      ...r,
      state: "Sent" as const,
      completedAt: `2026-11-27T10:00:${String(i).padStart(2, "0")}Z`,
    }));
    records = recordIntents(records, [n("new")], now);
    expect(records).toHaveLength(17);
    expect(records.map((r) => r.id)).not.toContain("done-0");
    expect(records.map((r) => r.id)).toContain("new");
  });

  it("marks targets delivered one by one, then closes as Sent or Failed with the reasons", () => {
    let records = recordIntents(undefined, [n("a")], now);
    records = markDelivered(records, "a", "a/email/contact:alice");
    records = markDelivered(records, "a", "a/email/contact:alice");
    expect(records[0]?.delivered).toEqual(["a/email/contact:alice"]);
    const sent = complete(records, "a", [outcome("a/email/contact:alice", true)], now);
    expect(sent[0]).toMatchObject({ state: "Sent", completedAt: "2026-11-27T10:00:00Z" });
    const failed = complete(
      records,
      "a",
      [outcome("a/email/contact:bob", false, { error: "SMTP 550: no such user" })],
      now,
    );
    expect(failed[0]).toMatchObject({
      state: "Failed",
      failed: ["a/email/contact:bob"],
      message: "email to contact:bob after 8 attempt(s): SMTP 550: no such user",
    });
  });

  it("does not close as Sent when there was nobody left to send it to", () => {
    const records = recordIntents(undefined, [n("a")], now);
    expect(complete(records, "a", [], now)[0]).toMatchObject({
      state: "Failed",
      message: expect.stringMatching(/^nobody to send it to when it was sent/),
    });
    // Resumed after its last target was delivered (and recorded) by an earlier run: Sent.
    const done = markDelivered(records, "a", "a/email/contact:alice");
    expect(complete(done, "a", [], now)[0]).toMatchObject({ state: "Sent" });
  });

  it("keeps a record with held targets Pending until a digest releases the last of them", () => {
    let records = recordIntents(undefined, [n("a")], now);
    records = complete(
      records,
      "a",
      [
        outcome("a/email/contact:alice", true),
        outcome("a/email/contact:bob", false, { held: true, attempts: 0 }),
      ],
      now,
    );
    expect(records[0]).toMatchObject({ state: "Pending", held: ["a/email/contact:bob"] });
    records = releaseHeld(records, "a", "a/email/contact:bob", now);
    expect(records[0]?.state).toBe("Sent");
    expect(records[0]?.held).toBeUndefined();
    expect(records[0]?.delivered).toEqual(["a/email/contact:alice", "a/email/contact:bob"]);
    expect(records[0]?.body).toBeUndefined();
  });

  it("keeps a failed target failed while held ones keep the record Pending, and closes it Failed with its reason", () => {
    let records = recordIntents(undefined, [n("a")], now);
    records = complete(
      records,
      "a",
      [
        outcome("a/webhook/contact:alice", false, { error: "HTTP 400" }),
        outcome("a/email/contact:alice", false, { held: true, attempts: 0 }),
      ],
      now,
    );
    expect(records[0]).toMatchObject({ state: "Pending", failed: ["a/webhook/contact:alice"] });
    const reason = records[0]?.message;
    expect(reason).toMatch(/HTTP 400/);
    // A resume (the sender skips the failed target) finds the mail still held: nothing about the failure changes.
    records = complete(
      records,
      "a",
      [outcome("a/email/contact:alice", false, { held: true, attempts: 0 })],
      now,
    );
    expect(records[0]).toMatchObject({
      state: "Pending",
      failed: ["a/webhook/contact:alice"],
      message: reason,
    });
    // The digest carries the mail: closed as Failed, for the webhook, with its reason.
    records = releaseHeld(records, "a", "a/email/contact:alice", now);
    expect(records[0]).toMatchObject({
      state: "Failed",
      failed: ["a/webhook/contact:alice"],
      message: reason,
    });
  });

  it("keeps an earlier run's failure and its reason when a later run has nothing left to send or fails too", () => {
    const first = complete(
      recordIntents(undefined, [n("a")], now),
      "a",
      [
        outcome("a/webhook/contact:alice", false, { error: "HTTP 400" }),
        outcome("a/email/contact:alice", false, { held: true, attempts: 0 }),
      ],
      now,
    );
    // The held mail's channel was turned off: the resume has nothing to send (the failed webhook is skipped).
    const [closed] = complete(first, "a", [], now);
    expect(closed).toMatchObject({ state: "Failed", failed: ["a/webhook/contact:alice"] });
    expect(closed?.message).toMatch(/HTTP 400/);
    // Or the mail fails as well: both reasons are kept.
    const [both] = complete(
      first,
      "a",
      [outcome("a/email/contact:alice", false, { error: "550 no such user" })],
      now,
    );
    expect(both?.failed).toEqual(["a/webhook/contact:alice", "a/email/contact:alice"]);
    expect(both?.message).toMatch(/HTTP 400.*550 no such user/);
  });

  it("drops what an earlier run left that no longer holds: a failure delivered since, an empty held list", () => {
    let records = recordIntents(undefined, [n("a")], now);
    records = complete(
      records,
      "a",
      [
        outcome("a/webhook/contact:alice", false, { error: "HTTP 503" }),
        outcome("a/email/contact:alice", false, { held: true, attempts: 0 }),
      ],
      now,
    );
    // Both go out in a later run (the cap had room when the record was resumed).
    records = complete(
      records,
      "a",
      [outcome("a/webhook/contact:alice", true), outcome("a/email/contact:alice", true)],
      now,
    );
    expect(records[0]?.state).toBe("Sent");
    expect(records[0]?.failed).toBeUndefined();
    expect(records[0]?.message).toBeUndefined();
    expect(records[0]?.held).toBeUndefined();
  });

  it("keeps of a finished record what it was and how it went, not its text, labels or thread", () => {
    const pending = recordIntents(
      undefined,
      [{ ...n("a"), threadId: "a", labels: { rule: "cpu" } }, n("b")],
      now,
    );
    expect(pending[0]).toMatchObject({ body: n("a").body, threadId: "a", labels: { rule: "cpu" } });
    const [a, b] = complete(
      complete(pending, "a", [outcome("a/email/contact:alice", true)], now),
      "b",
      [],
      now,
    );
    expect(a).toEqual({
      id: "a",
      kind: "LicenseReminder",
      severity: "Warning",
      app: { namespace: "apps", name: "crm", environment: "production" },
      title: "License of crm expires in 30 days",
      occurredAt: "2026-11-27T10:00:00Z",
      state: "Sent",
      createdAt: "2026-11-27T10:00:00Z",
      completedAt: "2026-11-27T10:00:00Z",
      delivered: ["a/email/contact:alice"],
    });
    // Nothing to deliver to (no channel): Failed, saying so, and no empty list either.
    expect(b?.state).toBe("Failed");
    expect(b && "delivered" in b).toBe(false);
    // A record still pending keeps everything its delivery needs.
    expect(pendingRecords(complete(pending, "a", [], now))[0]?.body).toBe(n("b").body);
  });
});

describe("rendering", () => {
  const alice = { key: "contact:alice", displayName: "Alice <admin>", email: "alice@example.com" };

  it("gives a stable Message-ID per notification and recipient, and escapes HTML", () => {
    const a = renderMail(n("x"), alice);
    expect(renderMail(n("x"), alice).messageId).toBe(a.messageId);
    expect(renderMail(n("y"), alice).messageId).not.toBe(a.messageId);
    expect(a.subject).toBe("[Warning] License of crm expires in 30 days");
    expect(a.html).toContain("Alice &lt;admin&gt;");
    expect(a.text).toContain("Ask your account executive");
  });

  it("falls back to plain text when the HTML template fails", () => {
    const mail = renderMail(n("x"), alice, () => {
      throw new Error("template bug");
    });
    expect(mail.html).toBeUndefined();
    expect(mail.text).toContain("The license expires on 2027-01-01.");
  });

  it("threads alert mails to the first notification of the alert", () => {
    const first = renderMail({ ...n("alert-1"), threadId: "alert-1" }, alice);
    const later = renderMail({ ...n("alert-2"), threadId: "alert-1" }, alice);
    expect(first.inReplyTo).toBeUndefined();
    expect(later.inReplyTo).toBe(first.messageId);
  });

  it("keeps ids within a status' 253 characters, stable and distinct, however long the names in them", () => {
    const short = "contact-added/uid/alice/1";
    expect(boundedId(short)).toBe(short);
    const long = (c: string) => `contact-added/0f8d6c2e-uid/${c.repeat(250)}/1`;
    expect(boundedId(long("a"))).toHaveLength(253);
    expect(boundedId(long("a"))).toBe(boundedId(long("a")));
    expect(boundedId(long("a"))).not.toBe(boundedId(long("b")));
    expect(boundedId(`alert/${"x".repeat(300)}`, 240)).toHaveLength(240);
  });

  it("fingerprints labels independently of their order", () => {
    expect(fingerprint({ a: "1", b: "2" })).toBe(fingerprint({ b: "2", a: "1" }));
    expect(fingerprint({ a: "1" })).not.toBe(fingerprint({ a: "2" }));
    expect(webhookPayload(n("x"), "x/webhook/contact:alice").status).toBe("firing");
  });
});

describe("recordIntents with long texts", () => {
  it("cuts a title and a body to the status schema's limits, so the owner's status write is not refused", () => {
    const longName = "a".repeat(253); // a valid object name
    const [record] = recordIntents(
      [],
      [
        {
          ...n("contact-added/uid/c/1"),
          title: `You are now the technical contact of ${longName}`,
          body: `contacts: ${"c".repeat(5000)}`,
        },
      ],
      now,
    );
    expect(record?.title).toHaveLength(256);
    expect(record?.title.endsWith("…")).toBe(true);
    expect(record?.body).toHaveLength(4096);
    expect(NotificationRecord.safeParse(record).success).toBe(true);
    // Short texts are kept as they are.
    const [short] = recordIntents([], [n("x")], now);
    expect(short?.title).toBe("License of crm expires in 30 days");
    expect(short?.body).toBe(n("x").body);
  });

  it("never leaves half a surrogate pair at the cut", () => {
    expect(boundedText(`${"a".repeat(254)}😀😀`, 256)).toBe(`${"a".repeat(254)}…`);
    expect(boundedText("short", 256)).toBe("short");
  });
});
