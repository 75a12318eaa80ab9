import { describe, expect, it } from "vitest";
import type { KubeObject } from "../runtime/client.ts";
import { FINALIZER, onlyFinalizerAdded } from "./mendix-app.ts";

const app = (meta: Partial<KubeObject["metadata"]>): KubeObject => ({
  metadata: { name: "a", namespace: "n", generation: 1, ...meta },
});

describe("onlyFinalizerAdded", () => {
  it("is true only when our finalizer arrived and nothing else that matters changed", () => {
    expect(onlyFinalizerAdded(app({}), app({ finalizers: [FINALIZER] }), FINALIZER)).toBe(true);
    expect(
      onlyFinalizerAdded(app({ finalizers: ["x"] }), app({ finalizers: ["x", FINALIZER] }), FINALIZER),
    ).toBe(true);
    // Removed (by someone else): reconcile, so it is added back.
    expect(onlyFinalizerAdded(app({ finalizers: [FINALIZER] }), app({}), FINALIZER)).toBe(false);
    // Arrived together with a spec change or a label change: reconcile.
    expect(onlyFinalizerAdded(app({}), app({ finalizers: [FINALIZER], generation: 2 }), FINALIZER)).toBe(
      false,
    );
    expect(onlyFinalizerAdded(app({}), app({ finalizers: [FINALIZER], labels: { a: "b" } }), FINALIZER)).toBe(
      false,
    );
    // Someone else's finalizer: not ours to ignore.
    expect(onlyFinalizerAdded(app({}), app({ finalizers: ["other"] }), FINALIZER)).toBe(false);
  });
});
