// Who may change what (rules 7-9): alert settings, node permissions and the technical contacts of an app.
import type { AlertPolicySpec } from "../api/alert-policy.ts";
import type { MendixAppSpec, NodePermission } from "../api/mendix-app.ts";
import type { TechnicalContactSpec } from "../api/technical-contact.ts";
import { deepEqual } from "../runtime/status.ts";

export interface Caller {
  username: string;
  groups: string[];
}

export interface ContactIdentity {
  name: string;
  identities?: TechnicalContactSpec["identities"];
}

export interface Verdict {
  allowed: boolean;
  message?: string;
  warnings: string[];
}

export function isAdmin(caller: Caller, adminGroups: string[]): boolean {
  return caller.groups.includes("system:masters") || caller.groups.some((g) => adminGroups.includes(g));
}

/** The contacts (by name) whose identities include the caller. */
export function contactsActingAs(caller: Caller, contacts: ContactIdentity[]): string[] {
  return contacts
    .filter(
      (c) =>
        (c.identities?.users ?? []).includes(caller.username) ||
        (c.identities?.groups ?? []).some((g) => caller.groups.includes(g)),
    )
    .map((c) => c.name);
}

/** Whether the caller is a cluster admin or acts as one of `contacts`. */
function mayActFor(caller: Caller, adminGroups: string[], contacts: ContactIdentity[]): boolean {
  return isAdmin(caller, adminGroups) || contactsActingAs(caller, contacts).length > 0;
}

/** "alice (user alice@example.com, group crm-owners)". */
function describeContact(c: ContactIdentity): string {
  const parts = [
    ...(c.identities?.users ?? []).map((u) => `user ${u}`),
    ...(c.identities?.groups ?? []).map((g) => `group ${g}`),
  ];
  return `${c.name}${parts.length ? ` (${parts.join(", ")})` : " (no identities set)"}`;
}

function who(app: string, contacts: ContactIdentity[]): string {
  return `the technical contacts of ${app}: ${contacts.map(describeContact).join("; ") || "none found"}`;
}

/**
 * Who deletes as Kubernetes itself: the namespace controller (a namespace being deleted) and the garbage
 * collector (an owner gone), as their service accounts or as kube-controller-manager's own user.
 */
export function isClusterCleanup(caller: Caller): boolean {
  return (
    caller.username === "system:serviceaccount:kube-system:namespace-controller" ||
    caller.username === "system:serviceaccount:kube-system:generic-garbage-collector" ||
    caller.username === "system:kube-controller-manager"
  );
}

/**
 * Changing an app's or a policy's ownerReferences: its contacts and cluster admins only (and Kubernetes' own
 * clean-up, which drops owners that are gone). An owner that does not exist makes the garbage collector delete
 * the object as itself, which the webhook lets through: whoever may patch the object (a node permission such
 * as Deploy, any app's contact on the namespace's policies) could otherwise have it deleted.
 */
export function reviewOwnerReferences(
  caller: Caller,
  adminGroups: string[],
  what: string,
  before: unknown,
  after: unknown,
  contacts: ContactIdentity[],
): Verdict | undefined {
  if (
    deepEqual(before ?? [], after ?? []) ||
    isClusterCleanup(caller) ||
    mayActFor(caller, adminGroups, contacts)
  )
    return undefined;
  return {
    allowed: false,
    message: `${caller.username} may not change the ownerReferences of ${what}: only ${contacts.length ? `its technical contacts (${contacts.map(describeContact).join("; ")})` : "its technical contacts"} and cluster admins may (an owner that does not exist has the garbage collector delete it)`,
    warnings: [],
  };
}

/**
 * Creating, changing or deleting an AlertPolicy: the contacts of every app it covers (`apps`, the existing ones
 * it covered before and covers after a change) and cluster admins only; one whose appRef names an app that does
 * not exist (not among `apps`), admins only.
 */
export function reviewAlertPolicy(
  caller: Caller,
  adminGroups: string[],
  apps: { name: string; contacts: ContactIdentity[] }[],
  spec: Pick<AlertPolicySpec, "appRef"> | undefined,
): Verdict {
  if (isAdmin(caller, adminGroups)) return { allowed: true, warnings: [] };
  const appRef = spec?.appRef;
  if (appRef && !apps.some((a) => a.name === appRef.name)) {
    return {
      allowed: false,
      message: `MendixApp ${appRef.name} does not exist: only cluster admins may set alerts for it`,
      warnings: [],
    };
  }
  const notContactOf = apps.filter((a) => contactsActingAs(caller, a.contacts).length === 0);
  if (notContactOf.length === 0 && apps.length > 0) return { allowed: true, warnings: [] };
  const app = notContactOf[0] ?? { name: "the selected apps", contacts: [] };
  return {
    allowed: false,
    message: `${caller.username} may not change the alert settings of ${app.name}: only ${who(app.name, app.contacts)}, and cluster admins, may`,
    warnings: [],
  };
}

const grantsOf = (perms: MendixAppSpec["permissions"], right: NodePermission) =>
  new Set(
    (perms ?? []).filter((p) => p.rights.includes(right)).map((p) => `${p.subject.kind}:${p.subject.name}`),
  );

/**
 * Changing a MendixApp's technical contacts, node permissions, workload or license Secret: the current contacts
 * and cluster admins only.
 */
export function reviewMendixApp(
  caller: Caller,
  adminGroups: string[],
  app: string,
  oldSpec: MendixAppSpec | undefined,
  newSpec: MendixAppSpec | undefined,
  currentContacts: ContactIdentity[],
  missingContacts: string[],
): Verdict {
  const warnings = missingContacts.map(
    (c) => `TechnicalContact ${c} does not exist (yet); the app stays ContactAssigned=False until it does`,
  );
  if (!newSpec) return { allowed: true, warnings };
  const actingAs = contactsActingAs(caller, currentContacts).length > 0;
  const mayAct = mayActFor(caller, adminGroups, currentContacts);
  const contactsAndAdmins = `${who(app, currentContacts)}, and cluster admins,`;
  const deny = (what: string, allowedTo = contactsAndAdmins) => ({
    allowed: false,
    message: `${caller.username} may not ${what} of ${app}: only ${allowedTo} may`,
    warnings,
  });
  if (!oldSpec) {
    // Created with ManagePermissions granted: by one of its contacts, or by an admin setting the app up (a
    // GitOps tool, say); anyone else could hand themselves the right to manage its permissions.
    const granted = [...grantsOf(newSpec.permissions, "ManagePermissions")];
    if (granted.length && !mayAct) return deny(`grant ManagePermissions (to ${granted.join(", ")})`);
    return { allowed: true, warnings };
  }
  // The workload (which gets the license and is scaled) and the license Secret are guarded like the contacts:
  // node permissions such as Deploy let their holders patch the app (to start and stop it), and the Roles they
  // get name that workload, so retargeting it would hand them another workload (and its pod template) or
  // another app's license.
  const guarded: [unknown, unknown, string][] = [
    [oldSpec.technicalContacts, newSpec.technicalContacts, "change the technical contacts"],
    [oldSpec.workloadRef, newSpec.workloadRef, "change the workload (spec.workloadRef)"],
    [
      oldSpec.license?.secretRef,
      newSpec.license?.secretRef,
      "change the license Secret (spec.license.secretRef)",
    ],
  ];
  for (const [before, after, what] of guarded) if (!mayAct && !deepEqual(before, after)) return deny(what);
  if (!deepEqual(oldSpec.permissions ?? [], newSpec.permissions ?? [])) {
    const before = grantsOf(oldSpec.permissions, "ManagePermissions");
    const newlyManaging = [...grantsOf(newSpec.permissions, "ManagePermissions")].filter(
      (s) => !before.has(s),
    );
    if (newlyManaging.length && !actingAs)
      return deny(`grant ManagePermissions (to ${newlyManaging.join(", ")})`, who(app, currentContacts));
    if (!mayAct) return deny("change the node permissions");
  }
  return { allowed: true, warnings };
}

/** Identities as sets: order, duplicates and empty lists do not change who acts as a contact. */
function normalized(ids: TechnicalContactSpec["identities"]): { users: string[]; groups: string[] } {
  return {
    users: [...new Set(ids?.users ?? [])].sort(),
    groups: [...new Set(ids?.groups ?? [])].sort(),
  };
}

function isEmpty(ids: TechnicalContactSpec["identities"]): boolean {
  return !ids?.users?.length && !ids?.groups?.length;
}

/**
 * Changing who acts as a technical contact (its spec.identities): the person, as the identities say now, and
 * cluster admins only (rules 7 and 9). Anyone else could make themselves that contact of every app naming it;
 * a contact with no identities yet gets its first ones from an admin.
 */
export function reviewTechnicalContact(
  caller: Caller,
  adminGroups: string[],
  contact: ContactIdentity,
  newIdentities: TechnicalContactSpec["identities"],
): Verdict {
  if (deepEqual(normalized(contact.identities), normalized(newIdentities)))
    return { allowed: true, warnings: [] };
  if (mayActFor(caller, adminGroups, [contact])) return { allowed: true, warnings: [] };
  return {
    allowed: false,
    message: `${caller.username} may not change who acts as TechnicalContact ${describeContact(contact)}: only that person, and cluster admins, may`,
    warnings: [],
  };
}

/**
 * Changing an app's labels so that AlertPolicies pick it up or let it go (`policies`, by selector) changes its
 * alert settings (rule 7): its current contacts and cluster admins only. Other label changes are RBAC's business.
 */
export function reviewAppLabels(
  caller: Caller,
  adminGroups: string[],
  app: string,
  currentContacts: ContactIdentity[],
  policies: string[],
): Verdict {
  if (!policies.length || mayActFor(caller, adminGroups, currentContacts))
    return { allowed: true, warnings: [] };
  return {
    allowed: false,
    message: `${caller.username} may not change the labels of ${app} that AlertPolicies select it by (${policies.join(", ")}): only ${who(app, currentContacts)}, and cluster admins, may`,
    warnings: [],
  };
}

/**
 * Deleting a TechnicalContact that is the last existing contact of some apps (`orphaned`) leaves them without
 * one. Refusing it would block kubectl delete -f of a directory, handovers and GitOps prunes, which delete in
 * any order; so it is said (rule 1), and the default contact is told if the apps stay without one.
 */
export function contactDeletionWarnings(contact: string, orphaned: string[]): string[] {
  if (!orphaned.length) return [];
  const apps =
    orphaned.length > 5
      ? `${orphaned.slice(0, 5).join(", ")} and ${orphaned.length - 5} more`
      : orphaned.join(", ");
  return [
    `TechnicalContact ${contact} is the only technical contact of ${apps}, which now have none: assign another contact`,
  ];
}

/**
 * Creating a TechnicalContact with identities that apps already name as their contact makes those identities act
 * for those apps at once (rules 7 and 9): the apps' other existing contacts or cluster admins only. Otherwise
 * anyone could delete a contact and create it again as themselves, or create the contact an app waits for.
 */
export function reviewContactCreation(
  caller: Caller,
  adminGroups: string[],
  contact: string,
  identities: TechnicalContactSpec["identities"],
  naming: { name: string; contacts: ContactIdentity[] }[],
): Verdict {
  if (isEmpty(identities) || !naming.length || isAdmin(caller, adminGroups))
    return { allowed: true, warnings: [] };
  const app = naming.find((a) => contactsActingAs(caller, a.contacts).length === 0);
  if (!app) return { allowed: true, warnings: [] };
  return {
    allowed: false,
    message: `${caller.username} may not create TechnicalContact ${contact} with identities: ${app.name} names it as technical contact, so they would act for ${app.name}; only ${app.contacts.length ? `${who(app.name, app.contacts)}, and cluster admins,` : "cluster admins"} may (or create it without identities)`,
    warnings: [],
  };
}
