// Who hears about an app: its technical contacts always; for alerts also team members with ReceiveAlerts.
import type { MendixAppSpec } from "../api/mendix-app.ts";
import type { Recipient } from "../notify/message.ts";

const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

/**
 * Team members granted ReceiveAlerts who can be mailed: User subjects whose name is an email address
 * (how most clusters name OIDC users). Groups have no address, so they are skipped.
 */
export function alertTeamMembers(permissions: MendixAppSpec["permissions"]): Recipient[] {
  return (permissions ?? [])
    .filter(
      (p) => p.rights.includes("ReceiveAlerts") && p.subject.kind === "User" && EMAIL.test(p.subject.name),
    )
    .map((p) => ({ key: `user:${p.subject.name}`, displayName: p.subject.name, email: p.subject.name }));
}

/** Contacts first, then team members not already reached as a contact (by email). */
export function mergeRecipients(contacts: Recipient[], members: Recipient[]): Recipient[] {
  const emails = new Set(contacts.map((c) => c.email?.toLowerCase()).filter(Boolean));
  return [...contacts, ...members.filter((m) => !emails.has(m.email?.toLowerCase()))];
}
