// Applies the Roles and RoleBindings that carry an app's node permissions, owned by the app (garbage-collected
// with it), and removes the ones no longer granted. Compares with the cache first: no write when nothing changed.
import { createHash } from "node:crypto";
import type { RoleGrant } from "../domain/permissions.ts";
import type { KubeObject, ResourceType } from "../runtime/client.ts";
import type { Manager } from "../runtime/manager.ts";
import { deepEqual } from "../runtime/status.ts";

export const ROLES: ResourceType = {
  group: "rbac.authorization.k8s.io",
  version: "v1",
  plural: "roles",
  kind: "Role",
  namespaced: true,
};
export const ROLE_BINDINGS: ResourceType = {
  group: "rbac.authorization.k8s.io",
  version: "v1",
  plural: "rolebindings",
  kind: "RoleBinding",
  namespaced: true,
};
export const MANAGED_BY = "app.kubernetes.io/managed-by";
export const APP_LABEL = "mxops.dev/app";
const FIELD_MANAGER = "mxops-permissions";

/**
 * The app label's value: the app's name, or for a name longer than a label value may be (63 characters; app
 * names may have 253) its first 52 characters, a dash and 10 hex digits of its hash.
 */
export function appLabelValue(app: string): string {
  if (app.length <= 63) return app;
  const hash = createHash("sha256").update(app).digest("hex").slice(0, 10);
  return `${app.slice(0, 52).replace(/[-.]+$/, "")}-${hash}`;
}

type Rbac = KubeObject & { rules?: unknown; subjects?: unknown; roleRef?: unknown };

/**
 * A Role or RoleBinding this app made that it no longer wants: its app label and owned by the app itself. The
 * owner is checked too: a label value is cut and hashed for long names, and an app named exactly like another's
 * cut value must not delete that app's grants.
 */
export function isStaleGrant(o: KubeObject, label: string, ownerUid: string, wanted: Set<string>): boolean {
  return (
    o.metadata.labels?.[APP_LABEL] === label &&
    !!o.metadata.ownerReferences?.some((r) => r.uid === ownerUid) &&
    !wanted.has(o.metadata.name)
  );
}

export function rbacInformers(manager: Manager) {
  const selector = `${MANAGED_BY}=mxops`;
  return {
    roles: manager.informers.informerFor<Rbac>(ROLES, { labelSelector: selector }),
    bindings: manager.informers.informerFor<Rbac>(ROLE_BINDINGS, { labelSelector: selector }),
  };
}

export async function syncGrants(
  manager: Manager,
  app: KubeObject,
  grants: RoleGrant[],
  caches: ReturnType<typeof rbacInformers>,
): Promise<number> {
  const namespace = app.metadata.namespace ?? "";
  const owner = {
    apiVersion: "mxops.dev/v1alpha1",
    kind: "MendixApp",
    name: app.metadata.name,
    uid: app.metadata.uid ?? "",
    controller: true,
  };
  const labels = { [MANAGED_BY]: "mxops", [APP_LABEL]: appLabelValue(app.metadata.name) };
  const meta = (name: string) => ({ name, namespace, labels, ownerReferences: [owner] });
  const sameMeta = (o: Rbac | undefined) =>
    deepEqual(
      o?.metadata.ownerReferences?.map((r) => r.uid),
      [owner.uid],
    );
  let writes = 0;
  for (const g of grants) {
    const role = caches.roles.get(namespace, g.name);
    if (!role || !sameMeta(role) || !deepEqual(role.rules, g.rules)) {
      await manager.client.patch(
        ROLES,
        namespace,
        g.name,
        { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: meta(g.name), rules: g.rules },
        "apply",
        { fieldManager: FIELD_MANAGER, force: true },
      );
      writes++;
    }
    const roleRef = { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: g.name };
    const binding = caches.bindings.get(namespace, g.name);
    if (
      !binding ||
      !sameMeta(binding) ||
      !deepEqual(binding.subjects, g.subjects) ||
      !deepEqual(binding.roleRef, roleRef)
    ) {
      if (binding && !deepEqual(binding.roleRef, roleRef))
        await manager.client.delete(ROLE_BINDINGS, namespace, g.name); // roleRef is immutable
      await manager.client.patch(
        ROLE_BINDINGS,
        namespace,
        g.name,
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "RoleBinding",
          metadata: meta(g.name),
          roleRef,
          subjects: g.subjects,
        },
        "apply",
        { fieldManager: FIELD_MANAGER, force: true },
      );
      writes++;
    }
  }
  const wanted = new Set(grants.map((g) => g.name));
  for (const [rt, cache] of [
    [ROLE_BINDINGS, caches.bindings],
    [ROLES, caches.roles],
  ] as const) {
    for (const o of cache.list(namespace)) {
      if (isStaleGrant(o, labels[APP_LABEL], owner.uid, wanted)) {
        await manager.client.delete(rt, namespace, o.metadata.name);
        writes++;
      }
    }
  }
  return writes;
}
