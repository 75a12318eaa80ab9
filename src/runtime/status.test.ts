import { describe, expect, it } from "vitest";
import { specOrLabelsChanged, specOrMetadataChanged } from "./controller.ts";
import { deepEqual, mergePatch, setCondition } from "./status.ts";

const t0 = new Date("2026-11-27T10:00:00.123Z");
const t1 = new Date("2026-11-27T11:00:00Z");

describe("setCondition", () => {
  it("adds a condition with the transition time in whole seconds", () => {
    const c = setCondition(undefined, { type: "Ready", status: "True", reason: "Ok", message: "fine" }, t0);
    expect(c).toEqual([
      {
        type: "Ready",
        status: "True",
        reason: "Ok",
        message: "fine",
        lastTransitionTime: "2026-11-27T10:00:00Z",
      },
    ]);
  });

  it("keeps lastTransitionTime when only reason or message change", () => {
    const a = setCondition(undefined, { type: "Ready", status: "False", reason: "A", message: "x" }, t0);
    const b = setCondition(
      a,
      { type: "Ready", status: "False", reason: "B", message: "y", observedGeneration: 2 },
      t1,
    );
    expect(b[0]?.lastTransitionTime).toBe("2026-11-27T10:00:00Z");
    expect(b[0]?.reason).toBe("B");
    expect(b[0]?.observedGeneration).toBe(2);
  });

  it("moves lastTransitionTime when the status changes, leaving other conditions alone", () => {
    let c = setCondition(undefined, { type: "Ready", status: "False", reason: "A", message: "" }, t0);
    c = setCondition(c, { type: "Licensed", status: "True", reason: "L", message: "" }, t0);
    c = setCondition(c, { type: "Ready", status: "True", reason: "A", message: "" }, t1);
    expect(c.map((x) => [x.type, x.lastTransitionTime])).toEqual([
      ["Ready", "2026-11-27T11:00:00Z"],
      ["Licensed", "2026-11-27T10:00:00Z"],
    ]);
  });
});

describe("deepEqual", () => {
  it.each([
    [{ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 }, true],
    [{ a: 1, b: undefined }, { a: 1 }, true],
    [{ a: [1, 2] }, { a: [2, 1] }, false],
    [{ a: null }, { a: {} }, false],
    [[], {}, false],
    [1, "1", false],
  ])("%j vs %j -> %s", (a, b, eq) => {
    expect(deepEqual(a, b)).toBe(eq);
  });
});

describe("mergePatch", () => {
  it("sends only changed members and nulls removed ones", () => {
    const from = { a: 1, b: { c: 2, d: 3 }, list: [1, 2], gone: "x" };
    const to = { a: 1, b: { c: 2, d: 4 }, list: [1, 2, 3] };
    expect(mergePatch(from, to)).toEqual({ b: { d: 4 }, list: [1, 2, 3], gone: null });
  });

  it("is empty when nothing changed", () => {
    expect(mergePatch({ a: { b: [1] } }, { a: { b: [1] } })).toEqual({});
  });
});

/** An object with a generation, for the change predicates. */
const base = {
  apiVersion: "v1",
  kind: "X",
  metadata: { name: "a", generation: 1, labels: { x: "1" } },
  spec: { n: 1 },
};

describe("specOrMetadataChanged", () => {
  it("ignores status-only writes", () => {
    expect(
      specOrMetadataChanged(base, {
        ...base,
        status: { ok: true },
        metadata: { ...base.metadata, resourceVersion: "9" },
      }),
    ).toBe(false);
  });
  it("sees generation, label, annotation, finalizer and deletion changes", () => {
    expect(specOrMetadataChanged(base, { ...base, metadata: { ...base.metadata, generation: 2 } })).toBe(
      true,
    );
    expect(specOrMetadataChanged(base, { ...base, metadata: { ...base.metadata, labels: { x: "2" } } })).toBe(
      true,
    );
    expect(
      specOrMetadataChanged(base, { ...base, metadata: { ...base.metadata, annotations: { y: "1" } } }),
    ).toBe(true);
    expect(specOrMetadataChanged(base, { ...base, metadata: { ...base.metadata, finalizers: ["f"] } })).toBe(
      true,
    );
    expect(
      specOrMetadataChanged(base, { ...base, metadata: { ...base.metadata, deletionTimestamp: "t" } }),
    ).toBe(true);
  });
  it("compares the whole object for kinds without a generation", () => {
    const cm = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, data: { a: "1" } };
    expect(specOrMetadataChanged(cm, { ...cm, data: { a: "2" } })).toBe(true);
    expect(specOrMetadataChanged(cm, { ...cm, metadata: { name: "c", resourceVersion: "2" } })).toBe(false);
  });
});

describe("specOrLabelsChanged", () => {
  const changed = (metadata: Record<string, unknown>, status?: unknown) =>
    specOrLabelsChanged(base, { ...base, metadata: { ...base.metadata, ...metadata }, status });
  it("sees generation, label and deletion changes", () => {
    expect(changed({ generation: 2 })).toBe(true);
    expect(changed({ labels: { x: "2" } })).toBe(true);
    expect(changed({ deletionTimestamp: "t" })).toBe(true);
  });
  it("sees an object deleted and created again under its name (another uid, the same generation)", () => {
    expect(changed({ uid: "u2" })).toBe(true);
    expect(
      specOrMetadataChanged(
        { ...base, metadata: { ...base.metadata, uid: "u1" } },
        { ...base, metadata: { ...base.metadata, uid: "u2" } },
      ),
    ).toBe(true);
  });
  it("ignores status, finalizer and annotation changes", () => {
    expect(changed({ resourceVersion: "9" }, { ok: true })).toBe(false);
    expect(changed({ finalizers: ["f"] })).toBe(false);
    expect(changed({ annotations: { y: "1" } })).toBe(false);
  });
});
