import { describe, expect, it } from "vitest";
import type { MendixAppSpec } from "../api/mendix-app.ts";
import {
  contactDeletionWarnings,
  contactsActingAs,
  isClusterCleanup,
  reviewAlertPolicy,
  reviewAppLabels,
  reviewContactCreation,
  reviewMendixApp,
  reviewTechnicalContact,
} from "./authorization.ts";

const alice = { name: "alice", identities: { users: ["alice@example.com"], groups: ["crm-owners"] } };
const bob = { name: "bob", identities: { users: ["bob@example.com"] } };
const as = (username: string, groups: string[] = []) => ({
  username,
  groups: ["system:authenticated", ...groups],
});
const spec = (o: Partial<MendixAppSpec> = {}): MendixAppSpec => ({
  hosting: "OnPremises",
  environment: "production",
  state: "Running",
  technicalContacts: [{ name: "alice" }],
  ...o,
});
const policy = {
  appRef: { name: "crm" },
  rules: [{ name: "cpu", metric: "CPU" as const }],
  repeatInterval: "4h",
  sendResolved: true,
  suspend: false,
};

describe("who acts as a contact", () => {
  it("matches users and groups", () => {
    expect(contactsActingAs(as("alice@example.com"), [alice, bob])).toEqual(["alice"]);
    expect(contactsActingAs(as("carol", ["crm-owners"]), [alice, bob])).toEqual(["alice"]);
    expect(contactsActingAs(as("mallory"), [alice, bob])).toEqual([]);
  });
});

describe("alert settings", () => {
  const apps = [{ name: "crm", contacts: [alice] }];
  it.each([
    ["the contact", as("alice@example.com"), true],
    ["a member of the contact's group", as("x", ["crm-owners"]), true],
    ["a cluster admin", as("root", ["system:masters"]), true],
    ["a configured admin group", as("ops", ["platform-admins"]), true],
    ["anyone else", as("mallory"), false],
  ])("%s -> %s", (_n, caller, allowed) => {
    expect(reviewAlertPolicy(caller, ["platform-admins"], apps, policy).allowed).toBe(allowed);
  });
  it("refuses a policy for an app that does not exist to all but admins", () => {
    expect(reviewAlertPolicy(as("alice@example.com"), [], [], policy).message).toBe(
      "MendixApp crm does not exist: only cluster admins may set alerts for it",
    );
    expect(reviewAlertPolicy(as("root", ["system:masters"]), [], [], policy).allowed).toBe(true);
  });
  it("needs the contact of every app the policy covers", () => {
    const both = [...apps, { name: "hr", contacts: [bob] }];
    expect(reviewAlertPolicy(as("bob@example.com"), [], both, policy).message).toMatch(
      /^bob@example\.com may not change the alert settings of crm/,
    );
  });
  it("knows Kubernetes' own clean-up controllers", () => {
    expect(isClusterCleanup(as("system:serviceaccount:kube-system:namespace-controller"))).toBe(true);
    expect(isClusterCleanup(as("system:serviceaccount:kube-system:generic-garbage-collector"))).toBe(true);
    expect(isClusterCleanup(as("system:kube-controller-manager"))).toBe(true);
    expect(isClusterCleanup(as("system:serviceaccount:apps:namespace-controller"))).toBe(false);
  });
  it("says who may", () => {
    expect(reviewAlertPolicy(as("mallory"), [], apps, policy).message).toBe(
      "mallory may not change the alert settings of crm: only the technical contacts of crm: alice (user alice@example.com, group crm-owners), and cluster admins, may",
    );
  });
});

describe("node permissions and contacts", () => {
  const perms = [{ subject: { kind: "User" as const, name: "dave" }, rights: ["Deploy" as const] }];
  const review = (caller: ReturnType<typeof as>, oldSpec: MendixAppSpec, newSpec: MendixAppSpec) =>
    reviewMendixApp(caller, [], "crm", oldSpec, newSpec, [alice], []);

  it("lets contacts and admins change permissions, nobody else", () => {
    const changed = spec({ permissions: perms });
    expect(review(as("alice@example.com"), spec(), changed).allowed).toBe(true);
    expect(review(as("root", ["system:masters"]), spec(), changed).allowed).toBe(true);
    const denied = review(as("dave"), spec(), changed);
    expect(denied.allowed).toBe(false);
    expect(denied.message).toMatch(
      /dave may not change the node permissions of crm: only the technical contacts of crm: alice/,
    );
  });
  it("lets only a technical contact grant ManagePermissions", () => {
    const grant = spec({
      permissions: [{ subject: { kind: "User", name: "dave" }, rights: ["ManagePermissions"] }],
    });
    expect(review(as("alice@example.com"), spec(), grant).allowed).toBe(true);
    expect(review(as("root", ["system:masters"]), spec(), grant).message).toMatch(
      /may not grant ManagePermissions \(to User:dave\)/,
    );
  });
  it("lets a contact or an admin create an app granting ManagePermissions, nobody else", () => {
    const grant = spec({
      permissions: [{ subject: { kind: "User", name: "mallory" }, rights: ["ManagePermissions"] }],
    });
    const create = (caller: ReturnType<typeof as>, s: MendixAppSpec) =>
      reviewMendixApp(caller, [], "crm", undefined, s, [alice], []);
    expect(create(as("mallory"), grant).message).toBe(
      "mallory may not grant ManagePermissions (to User:mallory) of crm: only the technical contacts of crm: alice (user alice@example.com, group crm-owners), and cluster admins, may",
    );
    expect(create(as("alice@example.com"), grant).allowed).toBe(true);
    expect(create(as("root", ["system:masters"]), grant).allowed).toBe(true);
    expect(create(as("mallory"), spec({ permissions: perms })).allowed).toBe(true);
  });
  it("lets the current contacts and admins change the contacts", () => {
    const handover = spec({ technicalContacts: [{ name: "bob" }] });
    expect(review(as("alice@example.com"), spec(), handover).allowed).toBe(true);
    expect(review(as("bob@example.com"), spec(), handover).allowed).toBe(false);
    expect(review(as("root", ["system:masters"]), spec(), handover).allowed).toBe(true);
  });
  it("lets only contacts and admins point the app at another workload or license Secret", () => {
    const before = spec({
      workloadRef: { kind: "Deployment", name: "crm" },
      license: { secretRef: { name: "crm-license" } },
    });
    const retarget = { ...before, workloadRef: { kind: "StatefulSet" as const, name: "portal" } };
    expect(review(as("dave"), before, retarget).message).toMatch(
      /^dave may not change the workload \(spec.workloadRef\) of crm: only the technical contacts of crm: alice/,
    );
    expect(review(as("dave"), before, { ...before, workloadRef: undefined }).allowed).toBe(false);
    const otherLicense = { ...before, license: { secretRef: { name: "portal-license" } } };
    expect(review(as("dave"), before, otherLicense).message).toMatch(
      /may not change the license Secret \(spec.license.secretRef\) of crm/,
    );
    expect(review(as("alice@example.com"), before, retarget).allowed).toBe(true);
    expect(review(as("root", ["system:masters"]), before, otherLicense).allowed).toBe(true);
    // The license's other fields (its expiry date after a renewal) are RBAC's business.
    const renewed = { ...before, license: { secretRef: { name: "crm-license" }, expiresAt: "2031-01-01" } };
    expect(review(as("dave"), before, renewed).allowed).toBe(true);
  });
  it("leaves other changes alone and warns about contacts that do not exist yet", () => {
    expect(review(as("anyone"), spec(), spec({ state: "Stopped" })).allowed).toBe(true);
    const v = reviewMendixApp(as("ci-bot"), [], "crm", undefined, spec(), [], ["alice"]);
    expect(v).toEqual({
      allowed: true,
      warnings: [
        "TechnicalContact alice does not exist (yet); the app stays ContactAssigned=False until it does",
      ],
    });
  });
});

describe("changing who acts as a contact", () => {
  const takeover = { users: ["mallory"] };
  it("is changed by that person and admins only", () => {
    expect(reviewTechnicalContact(as("mallory"), [], alice, takeover).message).toBe(
      "mallory may not change who acts as TechnicalContact alice (user alice@example.com, group crm-owners): only that person, and cluster admins, may",
    );
    expect(
      reviewTechnicalContact(as("alice@example.com"), [], alice, { users: ["alice@corp.example"] }).allowed,
    ).toBe(true);
    expect(reviewTechnicalContact(as("x", ["crm-owners"]), [], alice, takeover).allowed).toBe(true);
    expect(
      reviewTechnicalContact(as("ops", ["platform-admins"]), ["platform-admins"], alice, takeover).allowed,
    ).toBe(true);
  });
  it("leaves every other change alone, and gives a contact without identities its first from an admin", () => {
    expect(reviewTechnicalContact(as("mallory"), [], alice, alice.identities).allowed).toBe(true);
    const none = { name: "carol" };
    expect(reviewTechnicalContact(as("mallory"), [], none, undefined).allowed).toBe(true);
    expect(reviewTechnicalContact(as("mallory"), [], none, takeover).allowed).toBe(false);
    expect(reviewTechnicalContact(as("root", ["system:masters"]), [], none, takeover).allowed).toBe(true);
  });
});

describe("an app's labels", () => {
  it("move it in or out of selector policies only by its contacts and admins", () => {
    expect(reviewAppLabels(as("dave"), [], "crm", [alice], ["by-team"]).message).toBe(
      "dave may not change the labels of crm that AlertPolicies select it by (by-team): only the technical contacts of crm: alice (user alice@example.com, group crm-owners), and cluster admins, may",
    );
    expect(reviewAppLabels(as("alice@example.com"), [], "crm", [alice], ["by-team"]).allowed).toBe(true);
    expect(reviewAppLabels(as("root", ["system:masters"]), [], "crm", [alice], ["by-team"]).allowed).toBe(
      true,
    );
    expect(reviewAppLabels(as("dave"), [], "crm", [alice], []).allowed).toBe(true);
  });
});

describe("deleting and creating a contact", () => {
  it("warns when it is some app's last contact, and never refuses", () => {
    expect(contactDeletionWarnings("alice", ["crm", "hr"])).toEqual([
      "TechnicalContact alice is the only technical contact of crm, hr, which now have none: assign another contact",
    ]);
    expect(contactDeletionWarnings("alice", [])).toEqual([]);
    expect(contactDeletionWarnings("a", ["1", "2", "3", "4", "5", "6", "7"])[0]).toContain(
      "of 1, 2, 3, 4, 5 and 2 more,",
    );
  });
  it("lets only an app's other contacts and admins create, with identities, a contact it names", () => {
    const takeover = { users: ["mallory"] };
    // crm names alice and bob; alice was deleted, and mallory creates "alice" as herself.
    const naming = [{ name: "crm", contacts: [bob] }];
    expect(reviewContactCreation(as("mallory"), [], "alice", takeover, naming).message).toBe(
      "mallory may not create TechnicalContact alice with identities: crm names it as technical contact, so they would act for crm; only the technical contacts of crm: bob (user bob@example.com), and cluster admins, may (or create it without identities)",
    );
    expect(reviewContactCreation(as("bob@example.com"), [], "alice", takeover, naming).allowed).toBe(true);
    expect(reviewContactCreation(as("root", ["system:masters"]), [], "alice", takeover, naming).allowed).toBe(
      true,
    );
    // The contact an app waits for, with no other contact: admins only.
    expect(
      reviewContactCreation(as("mallory"), [], "ghost", takeover, [{ name: "hr", contacts: [] }]).message,
    ).toMatch(/only cluster admins may \(or create it without identities\)$/);
    // Without identities, or named by no app: anyone RBAC lets.
    expect(reviewContactCreation(as("mallory"), [], "alice", { users: [] }, naming).allowed).toBe(true);
    expect(reviewContactCreation(as("mallory"), [], "carol", takeover, []).allowed).toBe(true);
  });
  it("compares identities as sets", () => {
    const both = { name: "x", identities: { users: ["a", "b"], groups: [] } };
    expect(reviewTechnicalContact(as("mallory"), [], both, { users: ["b", "a", "a"] }).allowed).toBe(true);
  });
});
