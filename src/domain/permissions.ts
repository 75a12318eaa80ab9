// Node permissions as RBAC: one Role per granted right with exactly the verbs that right needs on this app's
// objects, a RoleBinding to its holders, and one for the technical contacts (who get every right).
import type { MendixAppSpec, NodePermission } from "../api/mendix-app.ts";
import type { ContactIdentity } from "./authorization.ts";

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  resourceNames?: string[];
  verbs: string[];
}

export interface Subject {
  kind: "User" | "Group";
  apiGroup: "rbac.authorization.k8s.io";
  name: string;
}

export interface RoleGrant {
  /** Role and RoleBinding name. */
  name: string;
  right: NodePermission | "TechnicalContact";
  rules: PolicyRule[];
  subjects: Subject[];
}

type Workload = MendixAppSpec["workloadRef"];

export function rulesFor(right: NodePermission, app: string, workload: Workload): PolicyRule[] {
  const self = (verbs: string[], sub = ""): PolicyRule => ({
    apiGroups: ["mxops.dev"],
    resources: [`mendixapps${sub}`],
    resourceNames: [app],
    verbs,
  });
  const plural = workload?.kind === "StatefulSet" ? "statefulsets" : "deployments";
  const onWorkload = (verbs: string[]): PolicyRule[] =>
    workload
      ? [
          { apiGroups: ["apps"], resources: [plural], resourceNames: [workload.name], verbs },
          { apiGroups: ["apps"], resources: [`${plural}/scale`], resourceNames: [workload.name], verbs },
        ]
      : [];
  switch (right) {
    case "Deploy": // transport rights: deploy (image), start/stop (spec.state), scale
      return [self(["get", "patch", "update"]), ...onWorkload(["get", "patch", "update"])];
    case "Monitoring":
      return [
        self(["get"]),
        self(["get"], "/status"),
        { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
        { apiGroups: ["metrics.k8s.io"], resources: ["pods"], verbs: ["get", "list"] },
        { apiGroups: ["mxops.dev"], resources: ["alertpolicies"], verbs: ["get", "list"] },
      ];
    case "Backups":
      return [
        self(["get"]),
        { apiGroups: [""], resources: ["persistentvolumeclaims"], verbs: ["get", "list"] },
        {
          apiGroups: ["snapshot.storage.k8s.io"],
          resources: ["volumesnapshots"],
          verbs: ["get", "list", "create", "delete"],
        },
      ];
    case "API":
      return [
        self(["get"]),
        { apiGroups: [""], resources: ["services", "endpoints"], verbs: ["get", "list"] },
      ];
    case "ManagePermissions":
      // Recorded with Mendix's name, but by rule 7 only the contacts and admins change node permissions (the
      // webhook refuses everyone else): the right reads the app. Patch would let its holders change what else
      // RBAC alone guards, such as spec.state, which is Deploy's right.
      return [self(["get"])];
    case "ReceiveAlerts": // recipients only: no RBAC
      return [];
  }
}

const subject = (kind: "User" | "Group", name: string): Subject => ({
  kind,
  apiGroup: "rbac.authorization.k8s.io",
  name,
});

export function desiredGrants(app: string, spec: MendixAppSpec, contacts: ContactIdentity[]): RoleGrant[] {
  const grants: RoleGrant[] = [];
  const rights: NodePermission[] = ["ManagePermissions", "Deploy", "Monitoring", "Backups", "API"];
  for (const right of rights) {
    const holders = (spec.permissions ?? [])
      .filter((p) => p.rights.includes(right))
      .map((p) => subject(p.subject.kind, p.subject.name));
    if (holders.length)
      grants.push({
        name: `mxops-${app}-${right.toLowerCase()}`,
        right,
        rules: rulesFor(right, app, spec.workloadRef),
        subjects: holders,
      });
  }
  const contactSubjects = contacts.flatMap((c) => [
    ...(c.identities?.users ?? []).map((u) => subject("User", u)),
    ...(c.identities?.groups ?? []).map((g) => subject("Group", g)),
  ]);
  if (contactSubjects.length) {
    const all = rights.flatMap((r) => rulesFor(r, app, spec.workloadRef));
    all.push({
      apiGroups: ["mxops.dev"],
      resources: ["alertpolicies"],
      verbs: ["get", "list", "watch", "create", "update", "patch", "delete"],
    });
    grants.push({
      name: `mxops-${app}-technical-contact`,
      right: "TechnicalContact",
      rules: all,
      subjects: contactSubjects,
    });
  }
  return grants;
}
