import { describe, expect, it } from "vitest";
import { appLabelValue } from "./rbac.ts";

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
