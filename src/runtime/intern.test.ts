import { describe, expect, it } from "vitest";
import { StringPool } from "./intern.ts";

describe("StringPool", () => {
  const app = () =>
    JSON.parse(
      JSON.stringify({
        metadata: {
          name: "shop",
          namespace: "prod",
          uid: "u-1",
          resourceVersion: "42",
          labels: { tier: "web" },
        },
        spec: { hosting: "OnPremises", technicalContacts: [{ name: "alice" }], tags: ["web", "shop"] },
        status: { conditions: [{ type: "Ready", status: "True", reason: "Reconciled" }] },
      }),
    );

  it("leaves the object equal to what it was, at any depth", () => {
    const pool = new StringPool();
    const obj = app();
    expect(pool.internStrings(obj)).toEqual(app());
  });

  it("pools each distinct value once and leaves uid and resourceVersion out", () => {
    const pool = new StringPool();
    pool.internStrings(app());
    // shop, prod, web, OnPremises, alice, Ready, True, Reconciled: not u-1, not 42.
    expect(pool.size).toBe(8);
    pool.internStrings(app());
    expect(pool.size).toBe(8);
    expect(pool.intern("u-1")).toBe("u-1");
    expect(pool.size).toBe(9);
  });

  it("leaves long strings alone and starts over when full", () => {
    const pool = new StringPool({ maxEntries: 3, maxLength: 5 });
    pool.intern("a-long-message");
    expect(pool.size).toBe(0);
    for (const s of ["a", "b", "c"]) pool.intern(s);
    expect(pool.size).toBe(3);
    pool.intern("d");
    expect(pool.size).toBe(1);
  });
});
