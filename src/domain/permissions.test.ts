import { describe, expect, it } from "vitest";
import { desiredGrants, rulesFor } from "./permissions.ts";

const w = { kind: "Deployment" as const, name: "crm" };

describe("node permissions as RBAC", () => {
  it("gives Deploy the app and its workload (and its scale), by name only", () => {
    expect(rulesFor("Deploy", "crm", w)).toEqual([
      {
        apiGroups: ["mxops.dev"],
        resources: ["mendixapps"],
        resourceNames: ["crm"],
        verbs: ["get", "patch", "update"],
      },
      {
        apiGroups: ["apps"],
        resources: ["deployments"],
        resourceNames: ["crm"],
        verbs: ["get", "patch", "update"],
      },
      {
        apiGroups: ["apps"],
        resources: ["deployments/scale"],
        resourceNames: ["crm"],
        verbs: ["get", "patch", "update"],
      },
    ]);
  });
  it("gives ReceiveAlerts no RBAC and never a wildcard", () => {
    expect(rulesFor("ReceiveAlerts", "crm", w)).toEqual([]);
    for (const right of ["ManagePermissions", "Deploy", "Monitoring", "Backups", "API"] as const) {
      for (const r of rulesFor(right, "crm", w)) {
        expect(r.verbs).not.toContain("*");
        expect(r.resources).not.toContain("*");
      }
    }
  });
  it("binds one Role per granted right to its holders, and one to the contacts' identities", () => {
    const grants = desiredGrants(
      "crm",
      {
        hosting: "OnPremises",
        environment: "production",
        state: "Running",
        technicalContacts: [{ name: "alice" }],
        workloadRef: w,
        permissions: [
          { subject: { kind: "Group", name: "crm-devs" }, rights: ["Deploy", "Monitoring", "ReceiveAlerts"] },
          { subject: { kind: "User", name: "dave" }, rights: ["Monitoring"] },
        ],
      },
      [{ name: "alice", identities: { users: ["alice@example.com"], groups: ["crm-owners"] } }],
    );
    expect(grants.map((g) => [g.name, g.subjects.map((s) => `${s.kind}:${s.name}`)])).toEqual([
      ["mxops-crm-deploy", ["Group:crm-devs"]],
      ["mxops-crm-monitoring", ["Group:crm-devs", "User:dave"]],
      ["mxops-crm-technical-contact", ["User:alice@example.com", "Group:crm-owners"]],
    ]);
  });
});
