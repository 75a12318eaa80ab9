import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import YAML from "yaml";
import { AlertPolicy } from "./alert-policy.ts";
import { parseDuration } from "./common.ts";
import { allCustomResourceDefinitions } from "./crd.ts";
import { MendixApp } from "./mendix-app.ts";
import { renderCrdFiles } from "./render.ts";
import { TechnicalContact } from "./technical-contact.ts";

const root = join(import.meta.dirname, "..", "..");

/** Every schema node below `path` that lacks a description. */
function undocumented(node: Record<string, unknown>, path: string): string[] {
  const missing: string[] = [];
  if (path !== "" && typeof node.description !== "string") missing.push(path);
  const props = node.properties as Record<string, Record<string, unknown>> | undefined;
  for (const [k, v] of Object.entries(props ?? {})) {
    if (path === "" && k === "metadata") continue;
    missing.push(...undocumented(v, `${path}.${k}`));
  }
  const items = node.items as Record<string, unknown> | undefined;
  if (items?.properties) missing.push(...undocumented({ ...items, description: "item" }, `${path}[]`));
  return missing;
}

describe("generated CRDs", () => {
  it("match crds/ (run `npm run gen` after changing src/api)", () => {
    const files = renderCrdFiles();
    expect(readdirSync(join(root, "crds")).sort()).toEqual(Object.keys(files).sort());
    for (const [file, content] of Object.entries(files)) {
      expect(readFileSync(join(root, "crds", file), "utf8"), `crds/${file} is stale`).toBe(content);
      if (file === "kustomization.yaml") continue;
      expect(
        readFileSync(join(root, "charts", "mxops", "crds", file), "utf8"),
        `charts/mxops/crds/${file} is stale`,
      ).toBe(content);
    }
  });

  it("describe every field, for kubectl explain", () => {
    for (const crd of allCustomResourceDefinitions()) {
      const schema = crd.spec.versions[0]?.schema.openAPIV3Schema as unknown as Record<string, unknown>;
      expect(undocumented(schema, ""), crd.metadata.name).toEqual([]);
    }
  });

  it("are structural: every node has a type and no additionalProperties: false", () => {
    const check = (node: unknown, path: string): string[] => {
      if (node === null || typeof node !== "object") return [];
      const n = node as Record<string, unknown>;
      const bad: string[] = [];
      if (n.additionalProperties === false) bad.push(`${path}: additionalProperties false`);
      if (n.properties) {
        for (const [k, v] of Object.entries(n.properties as Record<string, Record<string, unknown>>)) {
          if (typeof v.type !== "string" && !v["x-kubernetes-int-or-string"])
            bad.push(`${path}.${k}: no type`);
          bad.push(...check(v, `${path}.${k}`));
        }
      }
      if (n.items) bad.push(...check(n.items, `${path}[]`));
      return bad;
    };
    for (const crd of allCustomResourceDefinitions()) {
      expect(check(crd.spec.versions[0]?.schema.openAPIV3Schema, ""), crd.metadata.name).toEqual([]);
    }
  });
});

describe("samples", () => {
  const parsers: Record<string, { safeParse: (v: unknown) => { success: boolean; error?: unknown } }> = {
    MendixApp,
    TechnicalContact,
    AlertPolicy,
  };
  const dir = join(root, "deploy", "samples");
  const docs = readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((f) => YAML.parseAllDocuments(readFileSync(join(dir, f), "utf8")).map((d) => d.toJS()));

  it("cover all three kinds", () => {
    const kinds = new Set(docs.map((d: { kind: string }) => d.kind));
    for (const k of Object.keys(parsers)) expect(kinds).toContain(k);
  });

  it.each(
    docs.filter((d: { kind: string }) => d.kind in parsers).map((d) => [`${d.kind}/${d.metadata.name}`, d]),
  )("%s parses with the operator's own schema", (_name, doc) => {
    const result = parsers[(doc as { kind: string }).kind]?.safeParse(doc);
    expect(result?.error).toBeUndefined();
    expect(result?.success).toBe(true);
  });
});

describe("parseDuration", () => {
  it.each([
    ["90s", 90_000],
    ["5m", 300_000],
    ["1h30m", 5_400_000],
    ["250ms", 250],
    ["1.5h", 5_400_000],
    ["0s", 0],
  ])("%s = %d ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(["", "5", "5 m", "1d", "-1h", "h"])("rejects %j", (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});
