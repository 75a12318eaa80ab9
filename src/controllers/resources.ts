// The resource types the controllers read and write, and the cache indexes they share.
import { GROUP, VERSION } from "../api/common.ts";
import type { KubeObject, ResourceType } from "../runtime/client.ts";
import type { Informer } from "../runtime/informer.ts";

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
export function appsByContact(app: KubeObject & { spec?: unknown }): string[] {
  const contacts = (app.spec as { technicalContacts?: { name?: unknown }[] } | undefined)?.technicalContacts;
  return (Array.isArray(contacts) ? contacts : [])
    .filter((c) => typeof c?.name === "string")
    .map((c) => `${app.metadata.namespace}/${c.name}`);
}

/** Indexes apps by the contacts they name (once per informer; the controllers and the webhook share one). */
export function indexAppsByContact<T extends KubeObject & { spec?: unknown }>(apps: Informer<T>): void {
  if (!apps.hasIndex(APPS_BY_CONTACT)) apps.addIndex(APPS_BY_CONTACT, appsByContact);
}

/** The apps that name contact `name` in `namespace`, from the index (no scan of the namespace). */
export function appsNamingContact<T extends KubeObject & { spec?: unknown }>(
  apps: Informer<T>,
  namespace: string,
  name: string,
): T[] {
  indexAppsByContact(apps);
  return apps.byIndex(APPS_BY_CONTACT, `${namespace}/${name}`);
}

/** MendixApps indexed by "namespace/Kind/name" of the workload they run on. */
export const APPS_BY_WORKLOAD = "workload";

type WorkloadNaming = KubeObject & { spec?: unknown };

/** Indexes apps by their workload (once per informer; the app controller and the webhook share one). */
export function indexAppsByWorkload<T extends WorkloadNaming>(apps: Informer<T>): void {
  if (apps.hasIndex(APPS_BY_WORKLOAD)) return;
  apps.addIndex(APPS_BY_WORKLOAD, (a) => {
    const ref = (a.spec as { workloadRef?: { kind?: unknown; name?: unknown } } | undefined)?.workloadRef;
    return typeof ref?.kind === "string" && typeof ref.name === "string"
      ? [`${a.metadata.namespace}/${ref.kind}/${ref.name}`]
      : [];
  });
}

/** The apps that name workload `kind/name` in `namespace`, from the index (no scan of the namespace). */
export function appsOnWorkload<T extends WorkloadNaming>(
  apps: Informer<T>,
  namespace: string,
  ref: { kind: string; name: string },
): T[] {
  indexAppsByWorkload(apps);
  return apps.byIndex(APPS_BY_WORKLOAD, `${namespace}/${ref.kind}/${ref.name}`);
}
