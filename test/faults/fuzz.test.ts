// Case f: bad input. A seeded fuzzer mutates the valid manifests of deploy/samples (wrong types, huge strings,
// unicode, huge lists, deep nesting, missing and unknown fields) and sends each through
// `kubectl apply --server-side --dry-run=server`, with the operator's validating webhook installed. Every
// rejection must name the field; the operator must not crash. Objects the API server accepts but the operator
// cannot use must get a status saying why, while the valid apps next to them keep working.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import type { z } from "zod";
import { AlertPolicy } from "../../src/api/alert-policy.ts";
import { MendixApp } from "../../src/api/mendix-app.ts";
import { TechnicalContact } from "../../src/api/technical-contact.ts";
import { freePort } from "../controlplane/controlplane.ts";
import { type HttpReceiver, startHttpReceiver } from "../support/http-receiver.ts";
import {
  ApiReader,
  type Cluster,
  canary,
  condition,
  eventually,
  FUZZ_CASES,
  k,
  killAllOperators,
  MX,
  type MxObject,
  type OperatorProcess,
  REPORT_DIR,
  type Rng,
  report,
  rng,
  root,
  SEED,
  scanForLeaks,
  sharedCluster,
  startOperator,
} from "./support.ts";

const NS = "fuzz";
const VWC = "mxops-faults-fuzz";
const MAX_BODY = 2_900_000;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Path = (string | number)[];

const SCHEMAS: Record<string, z.ZodType> = { MendixApp, TechnicalContact, AlertPolicy };
const PLURALS: Record<string, string> = {
  MendixApp: "mendixapps",
  TechnicalContact: "technicalcontacts",
  AlertPolicy: "alertpolicies",
};

/** spec.rules[0].name, as the API server writes paths. */
function pathText(path: Path): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

/** Every node to mutate; an earlier mutation's deep nesting or huge list is not descended into. */
function nodes(value: Json, path: Path, out: { path: Path; value: Json }[] = []) {
  out.push({ path, value });
  if (path.length > 12) return out;
  if (Array.isArray(value)) for (const [i, v] of value.slice(0, 4).entries()) nodes(v, [...path, i], out);
  else if (value && typeof value === "object")
    for (const [key, v] of Object.entries(value)) nodes(v, [...path, key], out);
  return out;
}

function parentOf(doc: Json, path: Path): Json {
  let cur: Json = doc;
  for (const p of path.slice(0, -1)) cur = (cur as Record<string | number, Json>)[p] as Json;
  return cur;
}

function setAt(doc: Json, path: Path, value: Json | undefined) {
  const parent = parentOf(doc, path) as Record<string | number, Json>;
  const last = path[path.length - 1] as string | number;
  if (value === undefined) {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else parent[last] = value;
}

const typeOf = (v: Json) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);

const UNICODE = [
  "Zoë Ångström-Ødegård",
  "日本語のテキスト",
  "🚀🔥💧".repeat(30),
  "\u202eevil\u202c",
  "nul\u0000byte",
  "a\u0301\u0301\u0301",
  "\ud800lone surrogate",
  "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
  "line\nbreak\ttab",
  "' OR 1=1; --",
  "<script>alert(1)</script>",
  "\u0024{jndi:ldap://x}",
];

/** Values at the edges of the formats the API server checks itself, by the shape of the value they replace. */
const FORMAT_EDGES: { looksLike: RegExp; edges: string[] }[] = [
  {
    looksLike: /@/,
    edges: ["Alice <alice@example.com>", "alice@localhost", "alice@[127.0.0.1]", "a@b", "alice@example..com"],
  },
  {
    looksLike: /^\d{4}-\d{2}-\d{2}/,
    edges: [
      "2030-01-01T00:00:00+02:00",
      "2030-01-01T00:00:00.123456789Z",
      "2030-01-01t00:00:00z",
      "2028-02-29",
      "2030-02-29",
      "0000-01-01",
    ],
  },
  {
    looksLike: /^https?:/,
    edges: [
      "http://[::1]:8080/hook",
      "https://hooks.example.com/a b",
      "mailto:alice@example.com",
      "https://",
    ],
  },
  { looksLike: /^\d+(ms|s|m|h)/, edges: ["1.5h", "90s", "-5m", "5d", "1h30m0.5s", "0s"] },
];

interface Mutation {
  op: string;
  path: string;
}

/** One mutation of `doc` in place; returns what it did (undefined when no node fits the operator). */
function mutate(doc: Json, r: Rng): Mutation | undefined {
  const all = nodes(doc, []).filter(
    (n) =>
      n.path[0] === "spec" ||
      (n.path[0] === "metadata" && (n.path[1] === "labels" || n.path[1] === "annotations")),
  );
  const op = r.pick([
    "wrongType",
    "hugeString",
    "unicode",
    "hugeList",
    "deepNesting",
    "missingField",
    "unknownField",
    "numberEdge",
    "enumTypo",
    "null",
    "duplicateListEntry",
    "formatEdge",
  ] as const);
  const fits = all.filter((n) => {
    switch (op) {
      case "missingField":
        return n.path.length > 1 && typeof n.path[n.path.length - 1] === "string";
      case "unknownField":
        return typeOf(n.value) === "object";
      case "unicode":
      case "enumTypo":
      case "formatEdge":
        return typeof n.value === "string";
      case "numberEdge":
        return typeof n.value === "number" || typeof n.value === "string";
      case "duplicateListEntry":
        return Array.isArray(n.value) && n.value.length > 0;
      default:
        return n.path.length > 0;
    }
  });
  if (!fits.length) return undefined;
  const { path, value } = r.pick(fits);
  const at = pathText(path);
  switch (op) {
    case "wrongType": {
      const others = [42, -7, 2.5, true, false, "text", ["a"], { a: 1 }, null].filter(
        (v) => typeOf(v as Json) !== typeOf(value),
      );
      setAt(doc, path, r.pick(others) as Json);
      break;
    }
    case "hugeString":
      setAt(doc, path, "x".repeat(r.pick([64, 300, 5000, 300_000, 1_000_000])));
      break;
    case "unicode":
      setAt(doc, path, r.pick(UNICODE));
      break;
    case "hugeList": {
      const first = Array.isArray(value) ? (value[0] ?? "x") : value;
      const item = JSON.stringify(first).length <= 1024 ? first : "x";
      setAt(
        doc,
        path,
        Array.from({ length: r.pick([17, 65, 1000, 20_000]) }, () => structuredClone(item)),
      );
      break;
    }
    case "deepNesting":
      // A placeholder: serialize() writes the nesting as text (no recursion in this process).
      setAt(doc, path, `@@deep-${r.pick([8, 64, 512, 5000])}-${r.pick(["array", "object"])}@@`);
      break;
    case "missingField":
      setAt(doc, path, undefined);
      break;
    case "unknownField":
      (value as Record<string, Json>)[`fuzz${r.int(0, 999)}`] = r.pick([
        "v",
        1,
        { deep: { er: true } },
      ]) as Json;
      return { op, path: `${at}.fuzz` };
    case "numberEdge":
      setAt(doc, path, r.pick([-1, 0, 1.5, 1e308, -1e308, 2 ** 53 + 1, 1e-9, 10_000_001]));
      break;
    case "enumTypo": {
      const s = value as string;
      setAt(doc, path, r.pick([s.toLowerCase(), `${s}X`, "", " ", "null", s.toUpperCase()]));
      break;
    }
    case "null":
      setAt(doc, path, null);
      break;
    case "duplicateListEntry":
      (value as Json[]).push(structuredClone((value as Json[])[0] as Json));
      break;
    case "formatEdge": {
      const shaped = FORMAT_EDGES.find((f) => f.looksLike.test(value as string));
      setAt(doc, path, r.pick(shaped?.edges ?? FORMAT_EDGES.flatMap((f) => f.edges)));
      break;
    }
  }
  return { op, path: at };
}

/** JSON text of a mutated manifest, with each deep-nesting placeholder written out. */
function serialize(doc: Json): string {
  return JSON.stringify(doc).replace(
    /"@@deep-(\d+)-(array|object)@@"/g,
    (_m, depth: string, shape: string) => {
      const n = Number(depth);
      return shape === "array"
        ? `${"[".repeat(n)}"bottom"${"]".repeat(n)}`
        : `${'{"a":'.repeat(n)}"bottom"${"}".repeat(n)}`;
    },
  );
}

/** Field paths without list selectors: spec.rules[0].name and .spec.rules[name="cpu"].name are both spec.rules.name. */
const bare = (p: string) => p.replace(/\[[^\]]*\]/g, "").replace(/^\./, "");

/** Paths like spec.rules[0].warningPercent (or .spec.rules[name="disk"].x) named in an API server message. */
function namedPaths(message: string): string[] {
  return [
    ...message.matchAll(/(?:^|[^A-Za-z0-9_])\.?((?:spec|metadata)(?:\.[A-Za-z0-9_-]+|\[\d+\]|\[[^\]]*\])*)/g),
  ].map((m) => bare(m[1] ?? ""));
}

interface Case {
  index: number;
  kind: string;
  base: string;
  mutations: Mutation[];
  bytes: number;
  outcome: "accepted" | "rejected";
  message?: string;
  namesField?: boolean;
  namesMutatedField?: boolean;
  operatorCannotParse?: string;
  object?: Json;
}

function samples(): Record<string, Json>[] {
  const dir = join(root, "deploy", "samples");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .flatMap((f) => YAML.parseAllDocuments(readFileSync(join(dir, f), "utf8")).map((d) => d.toJS()))
    .filter((d): d is Record<string, Json> => !!d && typeof d === "object");
}

describe("bad input: fuzzed manifests through the API server and the webhook", () => {
  let cp: Cluster;
  let api: ApiReader;
  let op: OperatorProcess;
  let hooks: HttpReceiver;
  let webhookPort: number;
  const random = rng(SEED + 6);
  const licenseKey = canary("license-key");
  const webhookKey = canary("webhook-key");
  const cases: Case[] = [];
  const kubectl = () => k(cp.kubeconfig);
  const webhookCalls = async () => {
    const text = (await kubectl()(["get", "--raw", "/metrics"])).split("\n");
    return text
      .filter((l) => l.startsWith("apiserver_admission_webhook_admission_duration_seconds_count{"))
      .filter(
        (l) => l.includes('name="mendixapps.mxops.dev"') || l.includes('name="alertpolicies.mxops.dev"'),
      )
      .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
  };

  beforeAll(async () => {
    cp = sharedCluster();
    api = new ApiReader(cp.kubeconfig);
    hooks = await startHttpReceiver();
    webhookPort = await freePort();
    // The samples, for real, in the fuzz namespace (their planted values replaced by canaries).
    const docs = samples()
      .filter((d) => d.kind !== "Namespace")
      .map((d) => {
        const text = YAML.stringify(d)
          .replaceAll("mendix-apps", NS)
          .replaceAll("sample-placeholder-license-key", licenseKey)
          .replaceAll("sample-webhook-signing-key", webhookKey)
          .replaceAll("https://hooks.example.com/mendix-alerts", `${hooks.url}/mendix-alerts`);
        return text;
      });
    const hook = (name: string, path: string, resource: string, operations: string) => `
  - name: ${name}.mxops.dev
    clientConfig: {url: "https://127.0.0.1:${webhookPort}${path}"}
    rules: [{apiGroups: [mxops.dev], apiVersions: [v1alpha1], operations: [${operations}], resources: [${resource}]}]
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ${NS}}}
    failurePolicy: Fail
    sideEffects: None
    timeoutSeconds: 5
    admissionReviewVersions: [v1]`;
    await kubectl()(
      ["apply", "-f", "-"],
      `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}}\n---\napiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: ${VWC}}
webhooks:${hook("alertpolicies", "/validate-mxops-dev-v1alpha1-alertpolicy", "alertpolicies", "CREATE, UPDATE, DELETE")}${hook("mendixapps", "/validate-mxops-dev-v1alpha1-mendixapp", "mendixapps", "CREATE, UPDATE")}`,
    );
    op = startOperator("fuzz", cp.kubeconfig, [`--namespaces=${NS}`], {
      MXOPS_WEBHOOK_PORT: String(webhookPort),
      MXOPS_WEBHOOK_HOST_NAMES: "localhost",
      MXOPS_WEBHOOK_CONFIGURATION_NAME: VWC,
      MXOPS_EVALUATION_INTERVAL: "1s",
    });
    await op.waitForLog("controllers started", (l) => l.msg === "controllers started");
    await eventually(
      async () => {
        const vwc = await api.get<{ webhooks: { clientConfig: { caBundle?: string } }[] }>(
          `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${VWC}`,
        );
        return vwc?.webhooks.every((w) => (w.clientConfig.caBundle?.length ?? 0) > 100) ? true : undefined;
      },
      { what: "the CA bundle in the webhook configuration" },
    );
    await kubectl()(["apply", "-f", "-"], docs.join("---\n"));
  });

  afterAll(async () => {
    await killAllOperators();
    await hooks?.close();
    api?.close();
  });

  it(`rejects each of ${FUZZ_CASES} mutated manifests it cannot take with a message naming the field, and the operator survives`, async () => {
    const bases = samples().filter((d) => typeof d.kind === "string" && d.kind in SCHEMAS);
    const callsBefore = await webhookCalls();
    for (let index = 0; index < FUZZ_CASES; index++) {
      const base = random.pick(bases);
      const doc = structuredClone(base) as Record<string, Json> & { metadata: Record<string, Json> };
      doc.metadata.name = `fuzz-${index}`;
      doc.metadata.namespace = NS;
      doc.metadata.labels = { ...((doc.metadata.labels as Record<string, Json>) ?? {}), fuzz: "yes" };
      doc.metadata.annotations = { note: "fuzzed" };
      const mutations: Mutation[] = [];
      const count = random.pick([1, 1, 1, 2, 3]);
      for (let m = 0; m < count; m++) {
        const before = structuredClone(doc);
        const done = mutate(doc as Json, random);
        // The API server refuses bodies over 3 MiB before reading them (no field to name): stay below.
        if (done && serialize(doc as Json).length > MAX_BODY) {
          for (const key of Object.keys(doc)) delete doc[key];
          Object.assign(doc, before);
        } else if (done) mutations.push(done);
      }
      const body = serialize(doc as Json);
      const c: Case = {
        index,
        kind: String(base.kind),
        base: String((base.metadata as Record<string, Json>).name),
        mutations,
        bytes: body.length,
        outcome: "accepted",
      };
      try {
        const out = await kubectl()(
          ["apply", "--server-side", "--field-manager=fuzzer", "--dry-run=server", "-o", "json", "-f", "-"],
          body,
        );
        const stored = JSON.parse(out) as Json;
        const parsed = SCHEMAS[c.kind]?.safeParse(stored);
        if (parsed && !parsed.success) {
          c.operatorCannotParse = parsed.error.issues
            .map((i) => `${i.path.join(".")}: ${i.message}`)
            .join("; ");
          c.object = doc;
        }
      } catch (e) {
        c.outcome = "rejected";
        c.message = ((e as { stderr?: string }).stderr ?? String(e)).trim();
        const named = namedPaths(c.message);
        c.namesField = named.length > 0;
        c.namesMutatedField = named.some((p) =>
          mutations.some(
            (m) => bare(m.path).startsWith(p) || p.startsWith(bare(m.path).replace(/\.fuzz$/, "")),
          ),
        );
      }
      cases.push(c);
      expect(op.alive(), `the operator exited after case ${index}: ${op.stderr.join("")}`).toBe(true);
    }
    const callsAfter = await webhookCalls();
    // Every case with its mutations and the API server's answer, to read or replay (same seed, same cases).
    mkdirSync(REPORT_DIR, { recursive: true });
    writeFileSync(
      join(REPORT_DIR, "fuzz-cases.json"),
      JSON.stringify(
        cases.map(({ object: _object, ...c }) => ({ ...c, message: c.message?.slice(0, 600) })),
        null,
        1,
      ),
    );
    const rejected = cases.filter((c) => c.outcome === "rejected");
    const accepted = cases.filter((c) => c.outcome === "accepted");
    const unnamed = rejected.filter((c) => !c.namesField);
    const webhookFailures = rejected.filter((c) => /failed calling webhook/.test(c.message ?? ""));
    const unusable = accepted.filter((c) => c.operatorCannotParse);
    const byOp: Record<string, { accepted: number; rejected: number }> = {};
    for (const c of cases)
      for (const m of c.mutations) {
        byOp[m.op] ??= { accepted: 0, rejected: 0 };
        (byOp[m.op] as { accepted: number; rejected: number })[c.outcome]++;
      }
    report("f-fuzz", {
      cases: cases.length,
      accepted: accepted.length,
      rejected: rejected.length,
      rejectedNamingAField: rejected.filter((c) => c.namesField).length,
      rejectedNamingTheMutatedFieldOrAParent: rejected.filter((c) => c.namesMutatedField).length,
      rejectedWithoutFieldPath: unnamed.map((c) => ({
        case: c.index,
        mutations: c.mutations,
        message: c.message?.slice(0, 300),
      })),
      webhookCallFailures: webhookFailures.length,
      webhookCalls: callsAfter - callsBefore,
      acceptedButOperatorCannotParse: unusable.length,
      acceptedButOperatorCannotParseExamples: unusable.slice(0, 5).map((c) => ({
        case: c.index,
        kind: c.kind,
        mutations: c.mutations,
        operatorSays: c.operatorCannotParse?.slice(0, 300),
      })),
      largestRequestBytes: Math.max(...cases.map((c) => c.bytes)),
      byMutation: byOp,
      operatorAlive: op.alive(),
    });
    expect(unnamed.map((c) => `case ${c.index} ${JSON.stringify(c.mutations)}: ${c.message}`)).toEqual([]);
    expect(webhookFailures.map((c) => c.message)).toEqual([]);
    expect(rejected.length).toBeGreaterThan(0);
    expect(accepted.length).toBeGreaterThan(0);
    expect(callsAfter).toBeGreaterThan(callsBefore); // the webhook saw what passed the schema
    expect(op.alive()).toBe(true);
  });

  it("answers malformed AdmissionReviews sent straight to the webhook with an error, never a crash", async () => {
    const deep = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`;
    const bodies = [
      "",
      "{",
      "null",
      "[]",
      "42",
      '{"request":null}',
      '{"request":{}}',
      '{"request":{"uid":"1","kind":{"kind":"AlertPolicy"},"operation":"CREATE","userInfo":{}}}',
      '{"request":{"uid":"2","kind":{"kind":"AlertPolicy"},"operation":"DELETE","userInfo":{"username":"x"}}}',
      '{"request":{"uid":"3","kind":{"kind":"MendixApp"},"operation":"UPDATE","userInfo":{"groups":null},"object":{"metadata":{}},"oldObject":{"spec":7}}}',
      '{"request":{"uid":"4","kind":{"kind":"AlertPolicy"},"operation":"CREATE","userInfo":{"username":"m"},"object":{"spec":{"appRef":{"name":"crm"},"rules":[{"name":"cpu","metric":"CPU"}]}}}}',
      `{"request":{"uid":"5","kind":{"kind":"MendixApp"},"object":${deep(100_000)}}}`,
      `{"request":{"uid":"6","kind":{"kind":"${"K".repeat(1_000_000)}"}}}`,
      Buffer.from(Array.from({ length: 4096 }, () => random.int(0, 255))).toString("latin1"),
    ];
    const post = (path: string, body: string) =>
      new Promise<string>((resolve) => {
        const req = request(
          { host: "127.0.0.1", port: webhookPort, method: "POST", path, rejectUnauthorized: false },
          (res) => {
            let text = "";
            res.on("data", (d: Buffer) => {
              text += d.toString();
            });
            res.on("end", () => resolve(`${res.statusCode} ${text.slice(0, 120)}`));
          },
        );
        req.on("error", (e) => resolve(`error ${e.message}`));
        req.end(body);
      });
    const answers: string[] = [];
    for (const path of ["/validate-mxops-dev-v1alpha1-alertpolicy", "/validate-mxops-dev-v1alpha1-mendixapp"])
      for (const b of bodies) answers.push(await post(path, b));
    const statuses = answers.map((a) => a.split(" ")[0]);
    report("f-fuzz", {
      directWebhookRequests: answers.length,
      directWebhookAnswers: Object.fromEntries(
        [...new Set(statuses)].map((s) => [s, statuses.filter((x) => x === s).length]),
      ),
      operatorAliveAfterDirectRequests: op.alive(),
    });
    expect(answers.filter((a) => a.startsWith("error"))).toEqual([]);
    for (const s of statuses) expect(["200", "400"]).toContain(s);
    expect(op.alive(), op.stderr.join("")).toBe(true);
  });

  it("marks the objects it cannot use with a status saying why, and the valid app next to them becomes Ready", async () => {
    // AlertPolicies and MendixApps the operator cannot read are refused by its webhook (security.test.ts);
    // TechnicalContacts are checked by the webhook for their identities only, so those are the objects that can
    // exist unusable.
    const fromFuzzer = cases
      .filter((c) => c.operatorCannotParse && c.object && c.kind === "TechnicalContact")
      .slice(0, 3);
    // A date-time with an offset, as the CRD's format allows, is one the operator reads (it once did not).
    await kubectl()(
      ["apply", "--server-side", "--field-manager=fuzzer", "-f", "-"],
      `apiVersion: mxops.dev/v1alpha1\nkind: AlertPolicy\nmetadata: {name: offset-silence, namespace: ${NS}}\nspec:\n  appRef: {name: crm}\n  rules: [{name: cpu, metric: CPU}]\n  silencedUntil: "2030-01-01T00:00:00+02:00"`,
    );
    // Addresses the CRD's old "email" format (Go's mail.ParseAddress) let through and the operator could not
    // read: now the API server refuses the first, and both take the second.
    await expect(
      kubectl()(
        ["apply", "--server-side", "--field-manager=fuzzer", "-f", "-"],
        `apiVersion: mxops.dev/v1alpha1\nkind: TechnicalContact\nmetadata: {name: display-form-email, namespace: ${NS}}\nspec: {displayName: Dora, email: "Dora <dora@example.com>"}`,
      ),
    ).rejects.toThrow(/spec\.email: Invalid value: "Dora <dora@example\.com>"/);
    await kubectl()(
      ["apply", "--server-side", "--field-manager=fuzzer", "-f", "-"],
      `apiVersion: mxops.dev/v1alpha1\nkind: TechnicalContact\nmetadata: {name: dotless-domain, namespace: ${NS}}\nspec: {displayName: Erin, email: erin@example.com, mxid: "erin@localhost"}`,
    );
    const unusable: { kind: string; name: string; doc: string; expect: string }[] = [
      ...fromFuzzer.map((c) => {
        const obj = structuredClone(c.object) as Record<string, Json> & { metadata: Record<string, Json> };
        obj.metadata.name = `unusable-${c.index}`;
        return {
          kind: c.kind,
          name: `unusable-${c.index}`,
          expect: (c.operatorCannotParse ?? "").split(":")[0] ?? "",
          doc: serialize(obj),
        };
      }),
    ];
    for (const u of unusable)
      await kubectl()(["apply", "--server-side", "--field-manager=fuzzer", "-f", "-"], u.doc);
    await kubectl()(
      ["apply", "-f", "-"],
      `apiVersion: apps/v1
kind: Deployment
metadata: {name: valid-app, namespace: ${NS}}
spec:
  replicas: 1
  selector: {matchLabels: {app: valid-app}}
  template:
    metadata: {labels: {app: valid-app}}
    spec: {containers: [{name: mendix, image: "mendix/runtime-base:latest"}]}
---
apiVersion: mxops.dev/v1alpha1
kind: MendixApp
metadata: {name: valid-app, namespace: ${NS}}
spec:
  hosting: OnPremises
  technicalContacts: [{name: alice}]
  workloadRef: {kind: Deployment, name: valid-app}
  license: {secretRef: {name: crm-license}, expiresAt: "2031-01-31"}
`,
    );
    const statuses = await eventually(
      async () => {
        const got: Record<string, string> = {};
        for (const u of unusable) {
          const o = await api.get<MxObject>(`${MX}/namespaces/${NS}/${PLURALS[u.kind]}/${u.name}`);
          const ready = condition(o, "Ready");
          if (ready?.reason !== "InvalidSpec") return undefined;
          got[`${u.kind}/${u.name}`] = ready.message;
        }
        const dotless = await api.get<MxObject>(`${MX}/namespaces/${NS}/technicalcontacts/dotless-domain`);
        if (!dotless?.status || condition(dotless, "Ready")?.reason === "InvalidSpec") return undefined;
        const offset = await api.get<MxObject>(`${MX}/namespaces/${NS}/alertpolicies/offset-silence`);
        if (!condition(offset, "Ready") || condition(offset, "Ready")?.reason === "InvalidSpec")
          return undefined;
        const valid = await api.get<MxObject>(`${MX}/namespaces/${NS}/mendixapps/valid-app`);
        const crm = await api.get<MxObject>(`${MX}/namespaces/${NS}/mendixapps/crm`);
        if (condition(valid, "Ready")?.status !== "True" || condition(crm, "Ready")?.status !== "True")
          return undefined;
        return got;
      },
      { what: "InvalidSpec on each unusable object and Ready on the valid apps", timeoutMs: 60_000 },
    );
    report("f-fuzz", {
      unusableObjectsCreated: unusable.length,
      unusableObjectsWithInvalidSpecStatus: Object.keys(statuses).length,
      invalidSpecMessages: statuses,
      validAppsReadyAlongside: ["crm", "valid-app"],
    });
    for (const u of unusable)
      expect(statuses[`${u.kind}/${u.name}`], `${u.kind}/${u.name}`).toContain(u.expect);
    expect(op.alive()).toBe(true);
  });

  it("leaks no planted secret into logs, Events or statuses", async () => {
    const scan = await scanForLeaks(
      api,
      hooks.received.map((r) => ({ where: "webhook post", text: r.body })),
    );
    report("g-leak-scan-fuzz", { ...scan, hits: scan.hits.length });
    expect(scan.hits).toEqual([]);
    expect(scan.logLines).toBeGreaterThan(5);
  });
});
