// License rules: the Secret's shape, the MxID gate, the lifecycle (Active/Expiring/Expired) and renewal reminders.
import type { Hosting, LicenseState } from "../api/mendix-app.ts";

export const REMINDER_DAYS = [90, 30, 15, 7] as const;
export const EXPIRING_DAYS = 30;
const DAY_MS = 86_400_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type SecretProblem =
  | "LicenseSecretNotFound"
  | "LicenseIdMissing"
  | "LicenseIdNotUUID"
  | "LicenseKeyMissing";

/** Checks a license Secret's data (decoded). Never returns or logs the key itself. */
export function checkLicenseSecret(
  secretName: string,
  data: Record<string, string> | undefined,
): { ok: true } | { ok: false; reason: SecretProblem; message: string } {
  if (!data) {
    return {
      ok: false,
      reason: "LicenseSecretNotFound",
      message: `license Secret "${secretName}" does not exist in the app's namespace`,
    };
  }
  const id = data.LICENSE_ID?.trim();
  if (!id)
    return {
      ok: false,
      reason: "LicenseIdMissing",
      message: `license Secret "${secretName}" has no LICENSE_ID`,
    };
  // The workload reads the value as stored (a secretKeyRef): a UUID with a newline is not a UUID to the runtime.
  if (id !== data.LICENSE_ID)
    return {
      ok: false,
      reason: "LicenseIdNotUUID",
      message: `LICENSE_ID in Secret "${secretName}" has whitespace around the UUID (a trailing newline from --from-file?), which the app would get as stored`,
    };
  if (!UUID.test(id)) {
    return {
      ok: false,
      reason: "LicenseIdNotUUID",
      message: `LICENSE_ID in Secret "${secretName}" is not a UUID (e.g. 3f1c2b8e-7d4a-4e2b-9c61-0a5d8e7f1b23)`,
    };
  }
  if (!data.LICENSE_KEY?.trim()) {
    return {
      ok: false,
      reason: "LicenseKeyMissing",
      message: `license Secret "${secretName}" has an empty or missing LICENSE_KEY`,
    };
  }
  return { ok: true };
}

/** Whole days from today (UTC) to the last valid day: 0 on that day, negative after it. */
export function daysRemaining(expiresAt: string, nowMs: number): number {
  const today = Math.floor(nowMs / DAY_MS);
  const last = Math.floor(Date.parse(`${expiresAt}T00:00:00Z`) / DAY_MS);
  return last - today;
}

/** The next UTC midnight after `nowMs`: when daysRemaining (and maybe the state) changes next. */
export function nextUtcMidnight(nowMs: number): number {
  return (Math.floor(nowMs / DAY_MS) + 1) * DAY_MS;
}

/**
 * The reminders already sent for the license that expires at `expiresAt`: the ones recorded in the status if
 * they were for that date. A renewed license (a new expiry date) starts with none, so its reminders go out too.
 */
export function remindersSentFor(
  recorded: { expiresAt?: string; remindersSent?: number[] } | undefined,
  expiresAt: string | undefined,
): number[] {
  if (!recorded?.remindersSent?.length) return [];
  return recorded.expiresAt === expiresAt ? recorded.remindersSent : [];
}

export interface LicenseInput {
  hosting: Hosting;
  /** spec.license; undefined when the app has none. */
  license?: { secretRef: { name: string }; expiresAt?: string };
  secret: ReturnType<typeof checkLicenseSecret>;
  primaryContact?: { name: string; mxid?: string };
  remindersSent: number[];
  nowMs: number;
  /** This Secret's license is already injected into the workload (activated before). */
  alreadyActive?: boolean;
  /** Some technical contact of the app exists (not only the primary): reminders reach them. Default: a primary. */
  contactsExist?: boolean;
}

export interface LicenseDecision {
  state: LicenseState;
  /** Inject LICENSE_ID/LICENSE_KEY into the workload. */
  activate: boolean;
  /**
   * Why the app is not licensed (the reason of its Ready=False; trial mode), undefined while it is. An expired
   * license stays injected (taking it out would restart the pods, and a renewed Secret applies in place) but is
   * not licensed.
   */
  notLicensed?: string;
  /** The reason of the Warning Event told once when the app enters this state, if it is one to warn about. */
  warning?: string;
  daysRemaining?: number;
  reason: string;
  message: string;
  renewal: "Mendix" | "TechnicalContact";
  expandVia: "AccountExecutive" | "CustomerSuccessManager";
  /** A reminder to send now (days before expiry), if one is due. */
  reminder?: number;
  /** Reminder boundaries to record as done (the one sent and any passed with it). */
  remindersSent: number[];
}

/** What the license messages say of a primary contact without an MxID (a kept license's Warning is told once). */
export const NO_MXID = "has no MxID";

export function decideLicense(input: LicenseInput): LicenseDecision {
  const cloud = input.hosting === "MendixCloud";
  const base = {
    renewal: cloud ? ("Mendix" as const) : ("TechnicalContact" as const),
    expandVia: cloud ? ("CustomerSuccessManager" as const) : ("AccountExecutive" as const),
    remindersSent: input.remindersSent,
  };
  const trial =
    "Without a license the app runs in trial mode: at most 6 concurrent users, stopped after 2-4 hours.";
  if (!input.license) {
    return {
      ...base,
      state: "Unlicensed",
      activate: false,
      notLicensed: "NoLicense",
      warning: "NoLicense",
      reason: "NoLicense",
      message: `spec.license is not set. ${trial}`,
    };
  }
  if (!input.secret.ok) {
    return {
      ...base,
      state: "Unlicensed",
      activate: false,
      notLicensed: input.secret.reason,
      warning: input.secret.reason,
      reason: input.secret.reason,
      message: `${input.secret.message}. ${trial}`,
    };
  }
  const primary = input.primaryContact;
  const who = primary ? `TechnicalContact "${primary.name}"` : "the primary technical contact";
  if (!primary?.mxid && input.alreadyActive) {
    // Activated before, with a contact that had an MxID: a handover to a contact without one, or the contact
    // deleted and created again, must not take the license out of a running app (its pods would restart into
    // trial mode). It stays, and the status says what to fix.
    const kept = activeDecision(input, input.license, base, trial);
    // With no contact at all, a reminder due now would reach nobody and still count as sent: it waits. With the
    // primary missing but others there, it goes to them (rule 4: every technical contact).
    const reachable = input.contactsExist ?? !!primary;
    const reminders = reachable ? {} : { reminder: undefined, remindersSent: input.remindersSent };
    return {
      ...kept,
      ...reminders,
      warning: kept.warning ?? "LicensePendingMxID",
      message: `${who} ${NO_MXID} (or does not exist): the license activated before stays, but set spec.mxid on the contact. ${kept.message}`,
    };
  }
  if (!primary?.mxid) {
    return {
      ...base,
      state: "PendingMxID",
      activate: false,
      notLicensed: "PendingMxID",
      warning: "LicensePendingMxID",
      reason: "PendingMxID",
      message:
        `The license is not activated: ${who} ${NO_MXID}. Set spec.mxid on it (the person's Mendix account id); ` +
        `activation then happens by itself. ${trial}`,
    };
  }
  return activeDecision(input, input.license, base, trial);
}

/** The decision for a license that is (or stays) activated: Active, Expiring or Expired, and reminders due. */
function activeDecision(
  input: LicenseInput,
  license: NonNullable<LicenseInput["license"]>,
  base: Pick<LicenseDecision, "renewal" | "expandVia" | "remindersSent">,
  trial: string,
): LicenseDecision {
  const cloud = input.hosting === "MendixCloud";
  if (!license.expiresAt) {
    return {
      ...base,
      state: "Active",
      activate: true,
      reason: "Activated",
      message: "License activated (no expiry date given).",
    };
  }
  const days = daysRemaining(license.expiresAt, input.nowMs);
  const renew = cloud
    ? "Mendix renews Mendix Cloud licenses."
    : "Renew it with Mendix; for more users ask your account executive.";
  if (days < 0) {
    return {
      ...base,
      state: "Expired",
      activate: true,
      notLicensed: "LicenseExpired",
      warning: "LicenseExpired",
      daysRemaining: days,
      reason: "Expired",
      message: `The license expired on ${license.expiresAt}. ${renew} ${trial}`,
    };
  }
  const state: LicenseState = days <= EXPIRING_DAYS ? "Expiring" : "Active";
  const decision: LicenseDecision = {
    ...base,
    state,
    activate: true,
    daysRemaining: days,
    reason: state,
    message: `License active until ${license.expiresAt} (${days} day(s) left). ${renew}`,
  };
  if (cloud) return decision;
  // On-premises: remind at 90, 30, 15 and 7 days, each once. Boundaries passed together (an app created with
  // 20 days left) produce one reminder, the most urgent, and are all recorded.
  const due = REMINDER_DAYS.filter((d) => days <= d && !input.remindersSent.includes(d));
  if (due.length) {
    decision.reminder = Math.min(...due);
    decision.remindersSent = [...input.remindersSent, ...due].sort((a, b) => b - a);
  }
  return decision;
}

export function reminderText(
  app: string,
  expiresAt: string,
  days: number,
  contactName: string,
): { title: string; body: string } {
  return {
    title: `License of ${app} expires in ${days} day(s)`,
    body:
      `The Mendix license of ${app} expires on ${expiresAt} (${days} day(s) from today). As its technical contact ` +
      `(${contactName}) please renew it with Mendix in time; without a license the app falls back to trial mode ` +
      `(at most 6 concurrent users, stopped after 2-4 hours).\n\nTo license more users, contact your Mendix account executive.`,
  };
}
