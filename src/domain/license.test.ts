import { describe, expect, it } from "vitest";
import { contactChanges, DEFAULT_CONTACT_GRACE_MS, decideNoContact, resolveContacts } from "./contacts.ts";
import {
  checkLicenseSecret,
  daysRemaining,
  decideLicense,
  type LicenseInput,
  nextUtcMidnight,
  remindersSentFor,
} from "./license.ts";
import { currentOrNextWindow, decideMaintenance } from "./maintenance.ts";

const NOW = Date.parse("2026-11-27T15:30:00Z");
const plusDays = (d: number) => new Date(NOW + d * 86_400_000).toISOString().slice(0, 10);
const ok = { ok: true } as const;
const base: LicenseInput = {
  hosting: "OnPremises",
  license: { secretRef: { name: "l" }, expiresAt: plusDays(200) },
  secret: ok,
  primaryContact: { name: "alice", mxid: "alice@example.com" },
  remindersSent: [],
  nowMs: NOW,
};

describe("license secret", () => {
  it.each([
    [undefined, "LicenseSecretNotFound"],
    [{ LICENSE_KEY: "k" }, "LicenseIdMissing"],
    [{ LICENSE_ID: "12345", LICENSE_KEY: "k" }, "LicenseIdNotUUID"],
    // A file with a trailing newline (--from-file): the workload would get the newline too.
    [{ LICENSE_ID: "3f1c2b8e-7d4a-4e2b-9c61-0a5d8e7f1b23\n", LICENSE_KEY: "k" }, "LicenseIdNotUUID"],
    [{ LICENSE_ID: "3f1c2b8e-7d4a-4e2b-9c61-0a5d8e7f1b23", LICENSE_KEY: " " }, "LicenseKeyMissing"],
  ])("%j -> %s", (data, reason) => {
    const r = checkLicenseSecret("l", data);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toBe(reason);
    if (!r.ok) expect(r.message).not.toContain(" k");
  });
  it("accepts a UUID and a key", () => {
    expect(
      checkLicenseSecret("l", { LICENSE_ID: "3F1C2B8E-7D4A-4E2B-9C61-0A5D8E7F1B23", LICENSE_KEY: "k" }),
    ).toEqual({ ok: true });
  });
});

describe("license lifecycle", () => {
  it("counts whole UTC days to the last valid day", () => {
    expect(daysRemaining(plusDays(0), NOW)).toBe(0);
    expect(daysRemaining(plusDays(30), NOW)).toBe(30);
    expect(daysRemaining(plusDays(-1), NOW)).toBe(-1);
    expect(nextUtcMidnight(NOW)).toBe(Date.parse("2026-11-28T00:00:00Z"));
  });

  it.each([
    [200, "Active"],
    [31, "Active"],
    [30, "Expiring"],
    [0, "Expiring"],
    [-1, "Expired"],
  ])("%d days left -> %s", (days, state) => {
    const d = decideLicense({
      ...base,
      license: { secretRef: { name: "l" }, expiresAt: plusDays(days) },
      remindersSent: [90, 30, 15, 7],
    });
    expect(d.state).toBe(state);
    expect(d.activate).toBe(true);
    expect(d.daysRemaining).toBe(days);
  });

  it("holds activation until the primary contact has an MxID, saying what to do", () => {
    const d = decideLicense({ ...base, primaryContact: { name: "bob" } });
    expect(d).toMatchObject({ state: "PendingMxID", activate: false });
    expect(d.message).toMatch(/TechnicalContact "bob" has no MxID. Set spec.mxid/);
    expect(decideLicense({ ...base, primaryContact: undefined }).state).toBe("PendingMxID");
  });

  it("keeps a license activated before when the primary contact loses its MxID or is missing for a while", () => {
    const kept = decideLicense({ ...base, primaryContact: { name: "bob" }, alreadyActive: true });
    expect(kept).toMatchObject({ state: "Active", activate: true, warning: "LicensePendingMxID" });
    expect(kept.notLicensed).toBeUndefined();
    expect(kept.message).toMatch(
      /^TechnicalContact "bob" has no MxID \(or does not exist\): the license activated before stays/,
    );
    expect(decideLicense({ ...base, primaryContact: undefined, alreadyActive: true }).activate).toBe(true);
    // A reminder due while no contact exists waits for one (it would reach nobody and count as sent).
    const soon = {
      ...base,
      license: { secretRef: { name: "l" }, expiresAt: plusDays(20) },
      alreadyActive: true,
    };
    expect(decideLicense({ ...soon, primaryContact: { name: "bob" } }).reminder).toBe(30);
    const missing = decideLicense({ ...soon, primaryContact: undefined });
    expect(missing.reminder).toBeUndefined();
    expect(missing.remindersSent).toEqual([]);
    expect(
      decideLicense({ ...soon, primaryContact: undefined, contactsExist: false }).reminder,
    ).toBeUndefined();
    // The primary gone, another contact there: the reminder goes to them (rule 4: every technical contact).
    expect(decideLicense({ ...soon, primaryContact: undefined, contactsExist: true }).reminder).toBe(30);
    // A bad Secret is not kept for that reason: it is what the license is.
    const broken = decideLicense({
      ...base,
      primaryContact: { name: "bob" },
      alreadyActive: true,
      secret: { ok: false, reason: "LicenseSecretNotFound", message: "Secret l not found" },
    });
    expect(broken.activate).toBe(false);
  });

  it("is Unlicensed without a license or with a bad Secret, naming the problem and trial mode", () => {
    expect(decideLicense({ ...base, license: undefined })).toMatchObject({
      state: "Unlicensed",
      reason: "NoLicense",
    });
    const bad = decideLicense({
      ...base,
      secret: { ok: false, reason: "LicenseIdNotUUID", message: "not a UUID" },
    });
    expect(bad).toMatchObject({ state: "Unlicensed", reason: "LicenseIdNotUUID", activate: false });
    expect(bad.message).toMatch(/trial mode: at most 6 concurrent users/);
  });

  it("names who renews and who to ask for more users", () => {
    expect(decideLicense(base)).toMatchObject({ renewal: "TechnicalContact", expandVia: "AccountExecutive" });
    expect(decideLicense({ ...base, hosting: "MendixCloud" })).toMatchObject({
      renewal: "Mendix",
      expandVia: "CustomerSuccessManager",
    });
  });
});

describe("renewal reminders (on-premises)", () => {
  const at = (days: number, sent: number[] = []) =>
    decideLicense({
      ...base,
      license: { secretRef: { name: "l" }, expiresAt: plusDays(days) },
      remindersSent: sent,
    });

  it.each([
    [91, [], undefined, []],
    [90, [], 90, [90]],
    [45, [90], undefined, [90]],
    [30, [90], 30, [90, 30]],
    [15, [90, 30], 15, [90, 30, 15]],
    [7, [90, 30, 15], 7, [90, 30, 15, 7]],
    [3, [90, 30, 15, 7], undefined, [90, 30, 15, 7]],
  ])("%d days left, %j sent -> remind at %s, record %j", (days, sent, reminder, recorded) => {
    const d = at(days, sent);
    expect(d.reminder).toBe(reminder);
    expect(d.remindersSent).toEqual(recorded);
  });

  it("counts reminders per expiry date: a renewed license is reminded again", () => {
    const old = plusDays(-400);
    const renewed = plusDays(90);
    const sent = remindersSentFor({ expiresAt: old, remindersSent: [90, 30, 15, 7] }, renewed);
    expect(sent).toEqual([]);
    expect(
      decideLicense({
        ...base,
        license: { secretRef: { name: "l" }, expiresAt: renewed },
        remindersSent: sent,
      }),
    ).toMatchObject({ reminder: 90, remindersSent: [90] });
    // The same date: what was recorded stands.
    expect(remindersSentFor({ expiresAt: renewed, remindersSent: [90] }, renewed)).toEqual([90]);
    expect(remindersSentFor(undefined, renewed)).toEqual([]);
  });

  it("sends one reminder (the most urgent) when several boundaries are passed at once", () => {
    expect(at(20)).toMatchObject({ reminder: 30, remindersSent: [90, 30] });
    expect(at(10)).toMatchObject({ reminder: 15, remindersSent: [90, 30, 15] });
  });

  it("never reminds for Mendix Cloud apps (Mendix renews)", () => {
    const d = decideLicense({
      ...base,
      hosting: "MendixCloud",
      license: { secretRef: { name: "l" }, expiresAt: plusDays(7) },
    });
    expect(d.reminder).toBeUndefined();
    expect(d.state).toBe("Expiring");
  });
});

describe("contacts", () => {
  const known: Record<string, { mxid?: string }> = { alice: { mxid: "a@x.io" }, bob: {} };
  it("finds the missing and those without MxID; the first is primary", () => {
    const r = resolveContacts(["alice", "bob", "carol"], (n) => known[n]);
    expect(r).toMatchObject({ count: 3, primary: "alice", missing: ["carol"], withoutMxid: ["bob"] });
    expect(r.condition).toMatchObject({ status: "False", reason: "ContactNotFound" });
    expect(r.condition.message).toContain("carol");
    expect(resolveContacts(["alice"], (n) => known[n]).condition.status).toBe("True");
  });
  it("announces additions and removals", () => {
    expect(contactChanges(undefined, ["alice"])).toEqual({
      added: ["alice"],
      removed: [],
      announced: ["alice"],
    });
    expect(contactChanges(["alice", "bob"], ["bob", "carol"])).toEqual({
      added: ["carol"],
      removed: ["alice"],
      announced: ["bob", "carol"],
    });
  });
  it("does not take a contact that is missing for a moment (deleted and created again) for a removed one", () => {
    // alice is still named but does not exist right now: not removed, kept as announced, not told again.
    const gone = contactChanges(["alice", "bob"], ["bob"], ["alice", "bob"]);
    expect(gone).toEqual({ added: [], removed: [], announced: ["alice", "bob"] });
    expect(contactChanges(gone.announced, ["alice", "bob"], ["alice", "bob"])).toEqual({
      added: [],
      removed: [],
      announced: ["alice", "bob"],
    });
  });
});

describe("an app without a contact (rule 1)", () => {
  const since = "2026-11-27T15:30:00Z";
  it("is marked from the first look, and clears once a contact exists", () => {
    expect(decideNoContact(0, undefined, NOW, true)).toEqual({
      noneSince: since,
      notify: false,
      recheckAtMs: NOW + DEFAULT_CONTACT_GRACE_MS,
    });
    expect(decideNoContact(1, { noneSince: since, defaultContactNotified: true }, NOW, true)).toEqual({
      notify: false,
    });
  });
  it("tells the default contact once, after the grace period", () => {
    expect(decideNoContact(0, { noneSince: since }, NOW + DEFAULT_CONTACT_GRACE_MS - 1, true).notify).toBe(
      false,
    );
    expect(decideNoContact(0, { noneSince: since }, NOW + DEFAULT_CONTACT_GRACE_MS, true)).toEqual({
      noneSince: since,
      defaultContactNotified: true,
      notify: true,
    });
    expect(
      decideNoContact(
        0,
        { noneSince: since, defaultContactNotified: true },
        NOW + DEFAULT_CONTACT_GRACE_MS * 9,
        true,
      ),
    ).toEqual({ noneSince: since, defaultContactNotified: true, notify: false });
  });
  it("only marks when no default contact is configured", () => {
    expect(decideNoContact(0, { noneSince: since }, NOW + DEFAULT_CONTACT_GRACE_MS * 2, false)).toEqual({
      noneSince: since,
      notify: false,
    });
  });
});

describe("maintenance window", () => {
  // 2026-11-27 is a Friday.
  const w = { dayOfWeek: "Sunday" as const, startTime: "02:00", duration: "3h", noticeHours: 48 };
  it("finds the next window, or the one in progress", () => {
    expect(new Date(currentOrNextWindow(w, NOW).start).toISOString()).toBe("2026-11-29T02:00:00.000Z");
    const during = Date.parse("2026-11-29T03:00:00Z");
    expect(new Date(currentOrNextWindow(w, during).start).toISOString()).toBe("2026-11-29T02:00:00.000Z");
    const after = Date.parse("2026-11-29T05:00:00Z");
    expect(new Date(currentOrNextWindow(w, after).start).toISOString()).toBe("2026-12-06T02:00:00.000Z");
  });

  it("is due noticeHours before the window, once", () => {
    const start = Date.parse("2026-11-29T02:00:00Z");
    const early = decideMaintenance(w, undefined, start - 49 * 3_600_000);
    expect(early).toMatchObject({ noticeDue: false, recheckAt: start - 48 * 3_600_000 });
    expect(decideMaintenance(w, undefined, NOW)).toMatchObject({ noticeDue: true, nextWindowStart: start });
    expect(decideMaintenance(w, start, NOW).noticeDue).toBe(false);
    expect(decideMaintenance(w, undefined, start + 3_600_000).noticeDue).toBe(false); // already running
  });

  it("is due on time when the notice reaches beyond the next window (up to two weeks)", () => {
    const long = { ...w, noticeHours: 336 };
    const start = Date.parse("2026-11-29T02:00:00Z"); // the window in progress at 03:00
    const inWindow = start + 3_600_000;
    // Two weeks before the window of 12-13 is 11-29 02:00, inside this window: due now, not at its end.
    const twoWeeksOn = start + 14 * 24 * 3_600_000;
    expect(decideMaintenance(long, start + 7 * 24 * 3_600_000, inWindow)).toMatchObject({
      noticeDue: true,
      noticeFor: twoWeeksOn,
      nextWindowStart: start,
    });
    // Once sent, the nearer window (whose notice went out a week earlier) is not told again.
    expect(decideMaintenance(long, twoWeeksOn, inWindow + 24 * 3_600_000).noticeDue).toBe(false);
    // 200 hours: the window after next is due once its time comes, during this week.
    const mid = { ...w, noticeHours: 200 };
    const nextWeek = start + 7 * 24 * 3_600_000;
    // (This week's window was told already.)
    expect(decideMaintenance(mid, start, nextWeek - 201 * 3_600_000)).toMatchObject({
      noticeDue: false,
      recheckAt: nextWeek - 200 * 3_600_000,
    });
    expect(decideMaintenance(mid, start, nextWeek - 200 * 3_600_000)).toMatchObject({
      noticeDue: true,
      noticeFor: nextWeek,
    });
  });

  it("tells every window whose notice time has come, nearest first, when several are due at once", () => {
    const long = { ...w, noticeHours: 336 };
    const start = Date.parse("2026-11-29T02:00:00Z");
    const nextWeek = start + 7 * 24 * 3_600_000;
    const now = start - 24 * 3_600_000; // a new app, a day before the window: it and next week's are both due
    const first = decideMaintenance(long, undefined, now);
    expect(first).toMatchObject({ noticeDue: true, noticeFor: start, recheckAt: now });
    const second = decideMaintenance(long, start, now + 1000);
    expect(second).toMatchObject({ noticeDue: true, noticeFor: nextWeek });
    expect(second.recheckAt).toBeGreaterThan(now + 1000);
    expect(decideMaintenance(long, nextWeek, now + 2000).noticeDue).toBe(false);
    // A window that moved: the time last told is none of the new windows, so the nearest new one is told.
    expect(decideMaintenance(long, start + 3_600_000, now)).toMatchObject({
      noticeDue: true,
      noticeFor: start,
    });
  });
});
