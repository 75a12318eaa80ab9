// The webhook's decisions on whole admission requests, over caches held in memory (no API server needed: the
// integration tests send the same requests through a real kube-apiserver).
import { describe, expect, it } from "vitest";
import type { KubeObject } from "../runtime/client.ts";
import type { Informer } from "../runtime/informer.ts";
import { review } from "./server.ts";

type Obj = KubeObject & { spec: unknown };

/** The methods of an Informer the webhook reads (lookups, lists, indexes), over a fixed list of objects. */
function cache(objects: Obj[]): Informer<Obj> {
  const indexes = new Map<string, (o: Obj) => string[]>();
  return {
    get: (namespace: string, name: string) =>
      objects.find((o) => o.metadata.namespace === namespace && o.metadata.name === name),
    list: (namespace?: string) => objects.filter((o) => !namespace || o.metadata.namespace === namespace),
    hasIndex: (name: string) => indexes.has(name),
    addIndex: (name: string, fn: (o: Obj) => string[]) => indexes.set(name, fn),
    byIndex: (name: string, value: string) => objects.filter((o) => indexes.get(name)?.(o).includes(value)),
  } as unknown as Informer<Obj>;
}

const NS = "apps";
const obj = (name: string, spec: unknown, labels?: Record<string, string>): Obj => ({
  metadata: { name, namespace: NS, ...(labels ? { labels } : {}) },
  spec,
});
const opts = {
  adminGroups: [],
  apps: cache([obj("crm", { hosting: "OnPremises", technicalContacts: [{ name: "alice" }] })]),
  contacts: cache([
    obj("alice", { displayName: "Alice", email: "alice@example.com", identities: { users: ["alice"] } }),
  ]),
  policies: cache([]),
};
const as = (username: string, groups: string[] = []) => ({ username, groups });
const request = (
  kind: string,
  operation: "CREATE" | "UPDATE" | "DELETE",
  userInfo: { username: string; groups: string[] },
  object?: Obj,
  oldObject?: Obj,
) => ({
  uid: "1",
  kind: { kind },
  namespace: NS,
  name: (object ?? oldObject)?.metadata.name,
  operation,
  userInfo,
  object,
  oldObject,
});

describe("the webhook on AlertPolicies", () => {
  const policy = { appRef: { name: "crm" }, rules: [{ name: "cpu", metric: "CPU" }] };
  // Stored before the operator refused it: a silencedUntil the operator cannot read.
  const unreadable = obj("p", { ...policy, silencedUntil: "soon" });

  it("lets the app's contact fix a stored spec the operator cannot read, and nobody else", () => {
    const fixed = obj("p", policy);
    expect(review(request("AlertPolicy", "UPDATE", as("alice"), fixed, unreadable), opts)).toMatchObject({
      allowed: true,
    });
    expect(review(request("AlertPolicy", "UPDATE", as("mallory"), fixed, unreadable), opts).message).toMatch(
      /^mallory may not change the alert settings of crm/,
    );
  });

  it("lets labels change and Kubernetes' clean-up delete, whoever asks", () => {
    const labelled = { ...unreadable, metadata: { ...unreadable.metadata, labels: { tracked: "yes" } } };
    expect(review(request("AlertPolicy", "UPDATE", as("mallory"), labelled, unreadable), opts).allowed).toBe(
      true,
    );
    const controller = as("system:serviceaccount:kube-system:namespace-controller");
    expect(review(request("AlertPolicy", "DELETE", controller, undefined, unreadable), opts).allowed).toBe(
      true,
    );
    expect(
      review(request("AlertPolicy", "DELETE", as("mallory"), undefined, obj("p", policy)), opts).allowed,
    ).toBe(false);
  });
});

describe("the webhook on owners", () => {
  const policy = obj("p", { appRef: { name: "crm" }, rules: [{ name: "cpu", metric: "CPU" }] });
  const app = obj("crm", { hosting: "OnPremises", technicalContacts: [{ name: "alice" }] });
  const owned = (o: Obj): Obj => ({
    ...o,
    metadata: {
      ...o.metadata,
      ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "x", uid: "gone" }],
    },
  });

  it("lets only the contacts and admins add an owner, which would have the garbage collector delete it", () => {
    // A node permission (Deploy) lets mallory patch the app; another app's contact may patch any policy.
    for (const [kind, o] of [
      ["AlertPolicy", policy],
      ["MendixApp", app],
    ] as const) {
      const verdict = review(request(kind, "UPDATE", as("mallory"), owned(o), o), opts);
      expect(verdict.allowed).toBe(false);
      expect(verdict.message).toMatch(/may not change the ownerReferences|only/);
      expect(review(request(kind, "UPDATE", as("alice"), owned(o), o), opts).allowed).toBe(true);
      // The garbage collector dropping an owner that is gone.
      const gc = as("system:serviceaccount:kube-system:generic-garbage-collector");
      expect(review(request(kind, "UPDATE", gc, o, owned(o)), opts).allowed).toBe(true);
    }
  });
});

describe("the webhook on TechnicalContacts", () => {
  // An email the CRD's format accepts and the operator does not: not the webhook's business.
  const stored = obj("alice", {
    displayName: "Alice",
    email: "ops@mailhost",
    identities: { users: ["alice"] },
  });

  it("looks only at the identities, so any other fix is RBAC's business", () => {
    const fixed = obj("alice", {
      displayName: "Alice",
      email: "ops@example.com",
      identities: { users: ["alice"] },
    });
    expect(review(request("TechnicalContact", "UPDATE", as("mallory"), fixed, stored), opts).allowed).toBe(
      true,
    );
    const takeover = obj("alice", {
      displayName: "Alice",
      email: "ops@mailhost",
      identities: { users: ["mallory"] },
    });
    expect(
      review(request("TechnicalContact", "UPDATE", as("mallory"), takeover, stored), opts).message,
    ).toMatch(/^mallory may not change who acts as TechnicalContact alice/);
    const bad = obj("alice", { displayName: "Alice", email: "ops@mailhost", identities: { users: [""] } });
    expect(review(request("TechnicalContact", "UPDATE", as("alice"), bad, stored), opts).message).toMatch(
      /^invalid TechnicalContact spec\.identities\.users\.0: /,
    );
  });

  it("counts a contact whose email the operator rejects as the person it is", () => {
    const withBob = {
      ...opts,
      apps: cache([
        obj("crm", { hosting: "OnPremises", technicalContacts: [{ name: "alice" }, { name: "bob" }] }),
      ]),
      contacts: cache([
        obj("bob", { displayName: "Bob", email: "ops@mailhost", identities: { users: ["bob"] } }),
      ]),
    };
    const alice = obj("alice", {
      displayName: "Alice",
      email: "a@example.com",
      identities: { users: ["x"] },
    });
    expect(review(request("TechnicalContact", "CREATE", as("bob"), alice), withBob).allowed).toBe(true);
    expect(review(request("TechnicalContact", "CREATE", as("mallory"), alice), withBob).message).toMatch(
      /only the technical contacts of crm: bob \(user bob\)/,
    );
  });

  it("warns, and does not refuse, when the last contact of an app is deleted", () => {
    const verdict = review(request("TechnicalContact", "DELETE", as("alice"), undefined, stored), opts);
    expect(verdict).toEqual({
      allowed: true,
      warnings: [
        "TechnicalContact alice is the only technical contact of crm, which now have none: assign another contact",
      ],
    });
  });
});
