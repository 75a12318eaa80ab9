import { describe, expect, it } from "vitest";
import { appLabelValue, isStaleGrant } from "./rbac.ts";

describe("appLabelValue", () => {
  it("is the app's name while it fits a label value, and a distinct 63-character value when it does not", () => {
    expect(appLabelValue("crm")).toBe("crm");
    const long = `${"a".repeat(60)}-production-eu-west`;
    const other = `${"a".repeat(60)}-production-eu-east`;
    expect(appLabelValue(long)).toHaveLength(63);
    expect(appLabelValue(long)).toMatch(/^a{52}-[0-9a-f]{10}$/);
    expect(appLabelValue(other)).not.toBe(appLabelValue(long));
    expect(appLabelValue(`${"b".repeat(51)}.-x${"c".repeat(20)}`)).toMatch(/^b{51}-[0-9a-f]{10}$/);
  });
});

describe("isStaleGrant", () => {
  it("takes only the app's own grants it no longer wants, even where two apps share a label value", () => {
    const long = "a".repeat(70);
    const twin = appLabelValue(long); // an app named exactly like the long one's cut value
    const grant = (name: string, uid: string) => ({
      metadata: {
        name,
        namespace: "apps",
        labels: { "mxops.dev/app": twin },
        ownerReferences: [{ apiVersion: "mxops.dev/v1alpha1", kind: "MendixApp", name: "x", uid }],
      },
    });
    const wanted = new Set<string>();
    expect(isStaleGrant(grant("mxops-twin-deploy", "twin-uid"), twin, "twin-uid", wanted)).toBe(true);
    expect(isStaleGrant(grant("mxops-long-deploy", "long-uid"), twin, "twin-uid", wanted)).toBe(false);
    expect(
      isStaleGrant(grant("mxops-twin-deploy", "twin-uid"), twin, "twin-uid", new Set(["mxops-twin-deploy"])),
    ).toBe(false);
  });
});
