// Generates the CustomResourceDefinitions from the zod schemas: the one source of truth for the API.
import { z } from "zod";
import { AlertPolicySpec, AlertPolicyStatus } from "./alert-policy.ts";
import { GROUP, VERSION } from "./common.ts";
import { MendixAppSpec, MendixAppStatus } from "./mendix-app.ts";
import { TechnicalContactSpec, TechnicalContactStatus } from "./technical-contact.ts";

type JsonSchema = { [key: string]: unknown };

interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description: string;
  priority?: number;
}

export interface KindDefinition {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  columns: PrinterColumn[];
}

const CATEGORY = "mxops";

const ready: PrinterColumn = {
  name: "Ready",
  type: "string",
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  description: "Whether the operator found everything in order.",
};
const age: PrinterColumn = {
  name: "Age",
  type: "date",
  jsonPath: ".metadata.creationTimestamp",
  description: "Time since creation.",
};

export const KINDS: KindDefinition[] = [
  {
    kind: "MendixApp",
    plural: "mendixapps",
    singular: "mendixapp",
    shortNames: ["mxapp"],
    description:
      "A Mendix app environment: its technical contacts, license, workload, maintenance window and node permissions.",
    spec: MendixAppSpec,
    status: MendixAppStatus,
    columns: [
      {
        name: "Hosting",
        type: "string",
        jsonPath: ".spec.hosting",
        description: "MendixCloud or OnPremises.",
      },
      {
        name: "Contact",
        type: "string",
        jsonPath: ".spec.technicalContacts[0].name",
        description: "The primary technical contact.",
      },
      {
        name: "Contacts",
        type: "integer",
        jsonPath: ".status.contacts.count",
        description: "How many technical contacts the app has.",
      },
      {
        name: "State",
        type: "string",
        jsonPath: ".spec.state",
        description: "Running or Stopped.",
        priority: 1,
      },
      { name: "License", type: "string", jsonPath: ".status.license.state", description: "License state." },
      {
        name: "Days Left",
        type: "integer",
        jsonPath: ".status.license.daysRemaining",
        description: "Days until the license expires.",
      },
      ready,
      age,
    ],
  },
  {
    kind: "TechnicalContact",
    plural: "technicalcontacts",
    singular: "technicalcontact",
    shortNames: ["tc"],
    description:
      "A person who is the technical contact of Mendix apps, with their MxID and notification channels.",
    spec: TechnicalContactSpec,
    status: TechnicalContactStatus,
    columns: [
      { name: "Name", type: "string", jsonPath: ".spec.displayName", description: "Display name." },
      { name: "Email", type: "string", jsonPath: ".spec.email", description: "Email address." },
      { name: "MxID", type: "string", jsonPath: ".spec.mxid", description: "Mendix account id." },
      { name: "Apps", type: "integer", jsonPath: ".status.assignedAppCount", description: "Apps assigned." },
      ready,
      age,
    ],
  },
  {
    kind: "AlertPolicy",
    plural: "alertpolicies",
    singular: "alertpolicy",
    shortNames: ["mxalert"],
    description: "CPU, memory and disk alert rules for a Mendix app, notifying its technical contact.",
    spec: AlertPolicySpec,
    status: AlertPolicyStatus,
    columns: [
      {
        name: "App",
        type: "string",
        jsonPath: ".spec.appRef.name",
        description: "The app (when appRef is used).",
      },
      { name: "Alerts", type: "string", jsonPath: ".status.summary", description: "What fires now." },
      { name: "Suspended", type: "boolean", jsonPath: ".spec.suspend", description: "Notifications muted." },
      ready,
      age,
    ],
  },
];

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Turns zod's JSON Schema (OpenAPI 3.0 flavour) into a structural schema the API server accepts. */
function structural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(structural);
  if (node === null || typeof node !== "object") return node;
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node as JsonSchema)) {
    if (key === "$schema" || key === "id") continue;
    // The API server prunes unknown fields itself; structural schemas may not say `additionalProperties: false`.
    if (key === "additionalProperties" && value === false) continue;
    if ((key === "maximum" && value === MAX_SAFE) || (key === "minimum" && value === -MAX_SAFE)) continue;
    if (key === "properties" || key === "patternProperties") {
      out[key] = Object.fromEntries(Object.entries(value as JsonSchema).map(([k, v]) => [k, structural(v)]));
      continue;
    }
    out[key] = structural(value);
  }
  // Formats the API server checks itself: zod's equivalent regexes would only make its messages unreadable.
  if (typeof out.format === "string" && ["email", "date", "date-time", "uri"].includes(out.format))
    delete out.pattern;
  return out;
}

function schemaOf(type: z.ZodType): JsonSchema {
  return structural(z.toJSONSchema(type, { target: "openapi-3.0", io: "input" })) as JsonSchema;
}

export function customResourceDefinition(def: KindDefinition) {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: `${def.plural}.${GROUP}`,
      labels: { "app.kubernetes.io/name": "mxops", "app.kubernetes.io/part-of": "mxops" },
    },
    spec: {
      group: GROUP,
      scope: "Namespaced",
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: def.shortNames,
        categories: [CATEGORY],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: def.columns,
          schema: {
            openAPIV3Schema: {
              type: "object",
              description: def.description,
              required: ["spec"],
              properties: {
                apiVersion: { type: "string", description: "APIVersion of this object: mxops.dev/v1alpha1." },
                kind: { type: "string", description: `Kind of this object: ${def.kind}.` },
                metadata: { type: "object" },
                spec: schemaOf(def.spec),
                status: schemaOf(def.status),
              },
            },
          },
        },
      ],
    },
  };
}

export function allCustomResourceDefinitions() {
  return KINDS.map(customResourceDefinition);
}
