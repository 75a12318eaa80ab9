// The resource types the controllers read and write, and the cache indexes they share.
import { GROUP, VERSION } from "../api/common.ts";
import type { ResourceType } from "../runtime/client.ts";

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

/** MendixApps indexed by "namespace/Kind/name" of the workload they run on. */
export const APPS_BY_WORKLOAD = "workload";
