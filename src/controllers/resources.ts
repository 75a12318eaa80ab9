// The resource types the controllers read and write, and the cache indexes they share.
import { GROUP, VERSION } from "../api/common.ts";
import type { KubeObject, ResourceType } from "../runtime/client.ts";

export const MENDIX_APPS: ResourceType = {
  group: GROUP,
  version: VERSION,
  plural: "mendixapps",
  kind: "MendixApp",
  namespaced: true,
};
export const TECHNICAL_CONTACTS: ResourceType = {
  group: GROUP,
  version: VERSION,
  plural: "technicalcontacts",
  kind: "TechnicalContact",
  namespaced: true,
};
export const ALERT_POLICIES: ResourceType = {
  group: GROUP,
  version: VERSION,
  plural: "alertpolicies",
  kind: "AlertPolicy",
  namespaced: true,
};

/** MendixApps indexed by "namespace/contact" for each technical contact they name. */
export const APPS_BY_CONTACT = "contact";

/** The "namespace/contact" keys of the technical contacts an app names (the APPS_BY_CONTACT index). */
export function appsByContact(
  app: KubeObject & { spec?: { technicalContacts?: { name: string }[] } },
): string[] {
  return (app.spec?.technicalContacts ?? []).map((c) => `${app.metadata.namespace}/${c.name}`);
}

/** MendixApps indexed by "namespace/Kind/name" of the workload they run on. */
export const APPS_BY_WORKLOAD = "workload";
