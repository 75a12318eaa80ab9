import { describe, expect, it } from "vitest";
import { parseWithoutManagedFields, withoutManagedFields } from "./json.ts";

const managedFields = [
  {
    manager: "kubectl",
    operation: "Update",
    fieldsType: "FieldsV1",
    fieldsV1: { "f:metadata": { "f:labels": { ".": {} } }, 'k:{"name":"c0"}': { ".": {} } },
  },
];

/** An object as the API server writes it, with awkward strings where a naive scan would trip. */
function object(name: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: "mxops.dev/v1alpha1",
    kind: "MendixApp",
    metadata: {
      annotations: {
        note: 'a "quoted" }] value with \\ and \\" and "managedFields":[1]',
        "kubectl.kubernetes.io/last-applied-configuration": JSON.stringify({
          metadata: { managedFields: [] },
        }),
      },
      generation: 3,
      labels: { managedFields: "[not-an-array]" },
      managedFields,
      name,
      namespace: "ns",
      resourceVersion: "42",
      ...extra,
    },
    spec: { managedFields: [{ kept: true }], nested: { metadata: { managedFields: ["kept"] } }, n: -1.5e3 },
    status: { ok: true, empty: {}, none: null, list: [] },
  };
}

function withoutTopManagedFields<T extends { metadata: Record<string, unknown> }>(o: T): T {
  const { managedFields: _m, ...metadata } = o.metadata;
  return { ...o, metadata };
}

describe("parseWithoutManagedFields", () => {
  it("drops metadata.managedFields of an object and nothing else", () => {
    const o = object("a");
    expect(parseWithoutManagedFields(JSON.stringify(o), "object")).toEqual(withoutTopManagedFields(o));
  });

  it("drops them wherever they stand among metadata's members: first, middle, last, alone", () => {
    const first = { metadata: { managedFields, name: "x" }, spec: {} };
    const last = { metadata: { name: "x", managedFields }, spec: {} };
    const alone = { kind: "K", metadata: { managedFields } };
    for (const o of [first, last, alone, object("mid")]) {
      expect(parseWithoutManagedFields(JSON.stringify(o), "object")).toEqual(withoutTopManagedFields(o));
    }
  });

  it("drops them from every item of a list and from a watch event's object", () => {
    const list = {
      kind: "MendixAppList",
      apiVersion: "mxops.dev/v1alpha1",
      metadata: { resourceVersion: "7", continue: "abc" },
      items: [object("a"), object("b"), { metadata: { name: "c" } }],
    };
    expect(parseWithoutManagedFields(JSON.stringify(list), "list")).toEqual({
      ...list,
      items: list.items.map(withoutTopManagedFields),
    });
    const event = { type: "MODIFIED", object: object("e") };
    expect(parseWithoutManagedFields(JSON.stringify(event), "event")).toEqual({
      type: "MODIFIED",
      object: withoutTopManagedFields(event.object),
    });
    const empty = { kind: "List", metadata: {}, items: [] };
    expect(parseWithoutManagedFields(JSON.stringify(empty), "list")).toEqual(empty);
  });

  it("parses anything else as it is: other JSON, pretty-printed text, Status objects", () => {
    const status = { kind: "Status", apiVersion: "v1", status: "Failure", reason: "NotFound", code: 404 };
    expect(parseWithoutManagedFields(JSON.stringify(status), "object")).toEqual(status);
    const pretty = JSON.stringify(object("p"), null, 2);
    expect(parseWithoutManagedFields(pretty, "object")).toEqual(JSON.parse(pretty));
    expect(parseWithoutManagedFields("[1,2]", "object")).toEqual([1, 2]);
    expect(parseWithoutManagedFields('"text"', "event")).toBe("text");
    expect(() => parseWithoutManagedFields('{"metadata":{"managedFields":[', "object")).toThrow(SyntaxError);
  });

  it("keeps every other byte: random objects round-trip", () => {
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const chars = ['"', "\\", "{", "}", "[", "]", ",", ":", "a", "é", "\n", " "];
    const str = () =>
      Array.from({ length: Math.floor(rand() * 8) }, () => chars[Math.floor(rand() * chars.length)]).join("");
    const value = (depth: number): unknown => {
      const r = rand();
      if (depth > 3 || r < 0.3) return str();
      if (r < 0.4) return Math.floor(rand() * 1000) - 500;
      if (r < 0.5) return [true, false, null][Math.floor(rand() * 3)];
      if (r < 0.75) return Array.from({ length: Math.floor(rand() * 4) }, () => value(depth + 1));
      return Object.fromEntries(
        Array.from({ length: Math.floor(rand() * 4) }, () => [str(), value(depth + 1)]),
      );
    };
    for (let i = 0; i < 300; i++) {
      const o = {
        kind: str(),
        metadata: {
          [str()]: value(1),
          ...(rand() < 0.7 ? { managedFields: value(0) } : {}),
          [str()]: value(1),
        },
        spec: value(0),
      };
      const expected = withoutTopManagedFields(JSON.parse(JSON.stringify(o)) as typeof o);
      const lean = withoutManagedFields(JSON.stringify(o), "object");
      expect(JSON.parse(lean)).toEqual(expected);
      // Cut from the text, not parsed whole after a failed scan.
      expect(lean.length < JSON.stringify(o).length).toBe("managedFields" in o.metadata);
    }
  });
});
