// Contact rules: every referenced TechnicalContact must exist; the first is primary; changes are announced.
import { isoSeconds } from "../runtime/clock.ts";

export interface ContactFacts {
  name: string;
  exists: boolean;
  mxid?: string;
}

export interface ContactResolution {
  count: number;
  primary?: string;
  missing: string[];
  withoutMxid: string[];
  condition: { status: "True" | "False"; reason: string; message: string };
}

export function resolveContacts(
  referenced: string[],
  found: (name: string) => { mxid?: string } | undefined,
): ContactResolution {
  const facts: ContactFacts[] = referenced.map((name) => {
    const c = found(name);
    return { name, exists: !!c, mxid: c?.mxid };
  });
  const missing = facts.filter((f) => !f.exists).map((f) => f.name);
  const withoutMxid = facts.filter((f) => f.exists && !f.mxid).map((f) => f.name);
  const condition = missing.length
    ? {
        status: "False" as const,
        reason: "ContactNotFound",
        message: `TechnicalContact(s) not found in this namespace: ${missing.join(", ")}. Create them or fix spec.technicalContacts.`,
      }
    : {
        status: "True" as const,
        reason: "ContactsFound",
        message: `technical contact(s): ${referenced.join(", ")}`,
      };
  return { count: referenced.length, primary: referenced[0], missing, withoutMxid, condition };
}

/** Who became a contact and who stopped being one, since the contacts last announced. */
export function contactChanges(
  announced: string[] | undefined,
  current: string[],
  referenced: string[] = current,
): { added: string[]; removed: string[]; announced: string[] } {
  const before = new Set(announced ?? []);
  const after = new Set(current);
  const named = new Set(referenced);
  return {
    added: current.filter((c) => !before.has(c)),
    // Removed from the app, not missing for a moment (deleted and created again, kubectl replace --force): a
    // contact the app still names keeps its place and is not told twice.
    removed: [...before].filter((c) => !named.has(c)),
    announced: referenced.filter((c) => before.has(c) || after.has(c)),
  };
}

/** How long an app may have no existing contact before the default contact is told (GitOps applies in any order); the default of --default-contact-after. */
export const DEFAULT_CONTACT_GRACE_MS = 5 * 60_000;

export interface NoContactDecision {
  /** Since when none of the app's contacts exists (ISO); undefined while one does. */
  noneSince?: string;
  /** Whether the default contact has been told about this period (recorded with the notice). */
  defaultContactNotified?: boolean;
  /** Tell the default contact now. */
  notify: boolean;
  /** When to look again (the grace period's end), if a notice may come due. */
  recheckAtMs?: number;
}

/**
 * Rule 1: an app none of whose technical contacts exists is marked, and the cluster's default contact (if
 * configured) is told once per such period, after a grace period that lets a contact applied a little later
 * arrive first.
 */
export function decideNoContact(
  existing: number,
  recorded: { noneSince?: string; defaultContactNotified?: boolean } | undefined,
  nowMs: number,
  defaultContactConfigured: boolean,
  graceMs = DEFAULT_CONTACT_GRACE_MS,
): NoContactDecision {
  if (existing > 0) return { notify: false };
  const recordedSince = recorded?.noneSince ? Date.parse(recorded.noneSince) : Number.NaN;
  const sinceMs = Number.isNaN(recordedSince) ? nowMs : recordedSince;
  const noneSince = isoSeconds(sinceMs);
  if (recorded?.noneSince && recorded.defaultContactNotified)
    return { noneSince, defaultContactNotified: true, notify: false };
  if (!defaultContactConfigured) return { noneSince, notify: false };
  if (nowMs - sinceMs >= graceMs) return { noneSince, defaultContactNotified: true, notify: true };
  return { noneSince, notify: false, recheckAtMs: sinceMs + graceMs };
}
