// Case g: what the operator is allowed to do and how it can be attacked. Its RBAC (kustomize and Helm), its
// container's security context, a webhook that speaks TLS only, admission that a non-contact cannot get around,
// a webhook that a hostile client in the cluster cannot crash, and no planted secret anywhere it writes.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { freePort, kubectl } from "../controlplane/controlplane.ts";
import {
  ApiReader,
  type Cluster,
  canary,
  condition,
  eventually,
  k,
  killAllOperators,
  MX,
  type MxObject,
  type OperatorProcess,
  report,
  root,
  scanForLeaks,
  sharedCluster,
  sleep,
  startOperator,
} from "./support.ts";

const NS = "sec";
const VWC = "mxops-faults-security";

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
}
interface Doc {
  kind: string;
  metadata: { name: string };
  rules?: Rule[];
  spec?: {
    template?: {
      spec?: {
        securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
        containers?: {
          name: string;
          securityContext?: {
            readOnlyRootFilesystem?: boolean;
            allowPrivilegeEscalation?: boolean;
            runAsNonRoot?: boolean;
            capabilities?: { drop?: string[]; add?: string[] };
          };
          env?: { name: string; value?: string }[];
        }[];
      };
    };
  };
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args);
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.on("close", (code) => resolve({ code, out, err }));
  });
}

/**
 * Problems of the RBAC rules of `docs`: wildcards, Secrets beyond get by name cluster-wide (and create in the
 * operator's own namespace, a Role, for the webhook certificate).
 */
function rbacProblems(where: string, docs: Doc[]): string[] {
  const problems: string[] = [];
  const roles = docs.filter((d) => d?.kind === "ClusterRole" || d?.kind === "Role");
  for (const [r, kind] of roles.flatMap((d) => (d.rules ?? []).map((r) => [r, d.kind] as const))) {
    const what = `${where}: ${JSON.stringify(r)}`;
    if (r.verbs.includes("*")) problems.push(`${what}: wildcard verb`);
    if (r.resources?.includes("*")) problems.push(`${what}: wildcard resource`);
    if (r.apiGroups?.includes("*")) problems.push(`${what}: wildcard API group`);
    for (const v of ["escalate", "bind", "impersonate"])
      if (r.verbs.includes(v)) problems.push(`${what}: ${v}`);
    if (r.resources?.some((x) => x === "secrets" || x.startsWith("secrets/"))) {
      // A Role may create Secrets (the shared webhook certificate's, in the operator's namespace) and update that
      // one by name (its renewal); the ClusterRole only gets them.
      const byName =
        kind === "Role" && r.resourceNames?.length === 1 && /webhook-tls$/.test(r.resourceNames[0] ?? "");
      const allowed = kind === "Role" ? (byName ? "update" : "create") : "get";
      const beyond = r.verbs.filter((v) => v !== allowed);
      if (beyond.length)
        problems.push(`${what}: a ${kind} may only ${allowed} Secrets, not ${beyond.join(", ")}`);
    }
  }
  return problems;
}

/** The value of the environment variable `name` of the first container of the Deployment in `docs`. */
function deployedEnv(docs: Doc[], name: string): string {
  const containers = docs.find((d) => d?.kind === "Deployment")?.spec?.template?.spec?.containers;
  const value = containers?.[0]?.env?.find((e) => e.name === name)?.value;
  if (value === undefined) throw new Error(`the Deployment sets no ${name}`);
  return value;
}

function securityContextProblems(where: string, d: Doc | undefined): string[] {
  const pod = d?.spec?.template?.spec;
  if (!pod) return [`${where}: no Deployment`];
  const problems: string[] = [];
  if (pod.securityContext?.runAsNonRoot !== true) problems.push(`${where}: runAsNonRoot is not true`);
  if (pod.securityContext?.runAsUser === 0) problems.push(`${where}: runAsUser 0`);
  for (const c of pod.containers ?? []) {
    const sc = c.securityContext;
    if (sc?.readOnlyRootFilesystem !== true) problems.push(`${where}/${c.name}: root filesystem writable`);
    if (sc?.allowPrivilegeEscalation !== false)
      problems.push(`${where}/${c.name}: privilege escalation allowed`);
    if (!sc?.capabilities?.drop?.includes("ALL"))
      problems.push(`${where}/${c.name}: capabilities not dropped`);
    if (sc?.capabilities?.add?.length) problems.push(`${where}/${c.name}: capabilities added`);
  }
  return problems;
}

describe("security", () => {
  let cp: Cluster;
  let api: ApiReader;
  let op: OperatorProcess;
  let webhookPort: number;
  let kustomized: Doc[];
  let charted: Doc[];
  const licenseKey = canary("license-key");
  const admin = () => k(cp.kubeconfig);
  const as = (user: string, groups: string[]) => (args: string[], input?: string) =>
    kubectl(cp.userKubeconfig(user, groups), args, input);
  /** POSTs an AdmissionReview to the webhook over TLS; returns its verdict. */
  const postReview = (path: string, body: unknown) =>
    new Promise<{ allowed: boolean; message?: string }>((resolve, reject) => {
      const req = request(
        { host: "127.0.0.1", port: webhookPort, method: "POST", path, rejectUnauthorized: false },
        (res) => {
          let text = "";
          res.on("data", (d: Buffer) => {
            text += d.toString();
          });
          res.on("end", () => {
            try {
              const r = (
                JSON.parse(text) as { response: { allowed: boolean; status?: { message?: string } } }
              ).response;
              resolve({ allowed: r.allowed, message: r.status?.message });
            } catch {
              reject(new Error(`HTTP ${res.statusCode}: ${text}`));
            }
          });
        },
      );
      req.on("error", reject);
      req.end(JSON.stringify(body));
    });
  const outcome = async (p: Promise<string>) => {
    try {
      await p;
      return "allowed";
    } catch (e) {
      return (e as Error).message;
    }
  };

  beforeAll(async () => {
    kustomized = YAML.parseAllDocuments(
      await run("kubectl", ["kustomize", join(root, "deploy", "base")]).then((r) => r.out),
    ).map((d) => d.toJS() as Doc);
    const built = await run("bash", [join(root, "test", "controlplane", "build-helm.sh")]);
    expect(built.code, built.err).toBe(0);
    const helm = built.out.trim().split("\n").at(-1) ?? "";
    const rendered = await run(helm, [
      "template",
      "mxops",
      join(root, "charts", "mxops"),
      "-n",
      "mxops-system",
      "--kube-version",
      "1.34.4",
    ]);
    expect(rendered.code, rendered.err).toBe(0);
    charted = YAML.parseAllDocuments(rendered.out).map((d) => d.toJS() as Doc);
    cp = sharedCluster();
    api = new ApiReader(cp.kubeconfig);
    webhookPort = await freePort();
    const hook = (name: string, path: string, resource: string, operations: string) => `
  - name: ${name}.mxops.dev
    clientConfig: {url: "https://127.0.0.1:${webhookPort}${path}"}
    rules: [{apiGroups: [mxops.dev], apiVersions: [v1alpha1], operations: [${operations}], resources: [${resource}]}]
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ${NS}}}
    failurePolicy: Fail
    sideEffects: None
    timeoutSeconds: 5
    admissionReviewVersions: [v1]`;
    await admin()(
      ["apply", "-f", "-"],
      `apiVersion: v1
kind: Namespace
metadata: {name: ${NS}}
---
apiVersion: mxops.dev/v1alpha1
kind: TechnicalContact
metadata: {name: alice, namespace: ${NS}}
spec: {displayName: Alice, email: alice@example.com, mxid: alice@example.com, identities: {users: [alice@example.com]}}
---
apiVersion: v1
kind: Secret
metadata: {name: crm-license, namespace: ${NS}}
stringData: {LICENSE_ID: 3f1c2b8e-7d4a-4e2b-9c61-0a5d8e7f1b23, LICENSE_KEY: "${licenseKey}"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: crm, namespace: ${NS}}
spec:
  replicas: 1
  selector: {matchLabels: {app: crm}}
  template:
    metadata: {labels: {app: crm}}
    spec: {containers: [{name: mendix, image: "mendix/runtime-base:latest"}]}
---
apiVersion: mxops.dev/v1alpha1
kind: MendixApp
metadata: {name: crm, namespace: ${NS}}
spec:
  hosting: OnPremises
  technicalContacts: [{name: alice}]
  workloadRef: {kind: Deployment, name: crm}
  license: {secretRef: {name: crm-license}, expiresAt: "2031-01-31"}
---
# Everyone in "people" may edit mxops objects as far as RBAC goes: the webhook is what stops them.
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: mxops-editor, namespace: ${NS}}
rules: [{apiGroups: [mxops.dev], resources: [alertpolicies, mendixapps], verbs: [get, list, create, update, patch, delete]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: people-edit, namespace: ${NS}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: mxops-editor}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: people}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: ${VWC}}
webhooks:${hook("alertpolicies", "/validate-mxops-dev-v1alpha1-alertpolicy", "alertpolicies", "CREATE, UPDATE, DELETE")}${hook("mendixapps", "/validate-mxops-dev-v1alpha1-mendixapp", "mendixapps", "CREATE, UPDATE")}
`,
    );
    op = startOperator("security", cp.kubeconfig, [`--namespaces=${NS}`], {
      MXOPS_WEBHOOK_PORT: String(webhookPort),
      MXOPS_WEBHOOK_HOST_NAMES: "localhost",
      MXOPS_WEBHOOK_CONFIGURATION_NAME: VWC,
      MXOPS_EVALUATION_INTERVAL: "1s",
      // The heap the manifests give it (deploy/base and the chart set the same NODE_OPTIONS).
      NODE_OPTIONS: deployedEnv(kustomized, "NODE_OPTIONS"),
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
  });

  afterAll(async () => {
    await killAllOperators();
    api?.close();
  });

  it("asks for no wildcard, no escalate/bind/impersonate, and reads Secrets only by name (kustomize and Helm)", () => {
    const rulesOf = (docs: Doc[]) =>
      docs.filter((d) => d?.kind === "ClusterRole" || d?.kind === "Role").flatMap((d) => d.rules ?? []);
    const problems = [...rbacProblems("deploy/base", kustomized), ...rbacProblems("charts/mxops", charted)];
    const secrets = [...rulesOf(kustomized), ...rulesOf(charted)].filter((r) =>
      r.resources?.includes("secrets"),
    );
    report("g-security-static", {
      rbacRulesChecked: rulesOf(kustomized).length + rulesOf(charted).length,
      rbacProblems: problems.length,
      secretVerbs: [...new Set(secrets.flatMap((r) => r.verbs))].sort(),
      secretRulesScopedByResourceName: secrets.filter((r) => r.resourceNames?.length).length,
    });
    expect(problems).toEqual([]);
    expect(rulesOf(kustomized).length).toBeGreaterThan(5);
    expect(rulesOf(charted).length).toBe(rulesOf(kustomized).length);
    for (const r of secrets) expect(r.verbs).not.toEqual(expect.arrayContaining(["list"]));
    for (const r of secrets) expect(r.verbs).not.toEqual(expect.arrayContaining(["watch"]));
  });

  it("runs as non-root with a read-only root filesystem and no capabilities (Deployment, chart, Dockerfile)", () => {
    const problems = [
      ...securityContextProblems(
        "deploy/base",
        kustomized.find((d) => d?.kind === "Deployment"),
      ),
      ...securityContextProblems(
        "charts/mxops",
        charted.find((d) => d?.kind === "Deployment"),
      ),
    ];
    const dockerfile = readFileSync(join(root, "Dockerfile"), "utf8");
    const finalStage = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));
    const user = /^USER\s+(\S+)/m.exec(finalStage)?.[1] ?? "";
    if (!user || /^(0|root)(:|$)/.test(user))
      problems.push(`Dockerfile: final stage runs as "${user || "root"}"`);
    report("g-security-static", { securityContextProblems: problems.length, imageUser: user });
    expect(problems).toEqual([]);
    expect(finalStage).toMatch(/FROM \S+:nonroot/);
  });

  it("serves the webhook over TLS only: plain HTTP gets no answer", async () => {
    const plain = await fetch(`http://127.0.0.1:${webhookPort}/validate-mxops-dev-v1alpha1-alertpolicy`, {
      method: "POST",
      body: "{}",
      signal: AbortSignal.timeout(5000),
    }).then(
      (r) => `HTTP ${r.status}`,
      (e: Error) => `refused (${(e.cause as Error | undefined)?.message ?? e.message})`,
    );
    const tls = await new Promise<number>((resolve, reject) => {
      const req = request(
        { host: "127.0.0.1", port: webhookPort, path: "/", method: "GET", rejectUnauthorized: false },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.end();
    });
    report("g-security-static", { webhookPlainHttp: plain, webhookHttpsGetRoot: tls });
    expect(plain).toMatch(/^refused/);
    expect(tls).toBe(404);
  });

  it("refuses a non-contact's change to alert settings, also when the new spec is one the operator cannot parse", async () => {
    const alice = as("alice@example.com", ["people"]);
    const mallory = as("mallory@example.com", ["people"]);
    const policy = `apiVersion: mxops.dev/v1alpha1
kind: AlertPolicy
metadata: {name: crm, namespace: ${NS}}
spec:
  appRef: {name: crm}
  rules: [{name: cpu, metric: CPU, warningPercent: 75, criticalPercent: 85}]
`;
    const patch = (json: string) => ["patch", "mxalert", "crm", "-n", NS, "--type=merge", "-p", json];
    expect(await outcome(alice(["apply", "-f", "-"], policy))).toBe("allowed");
    const plainChange = await outcome(
      mallory(
        patch('{"spec":{"rules":[{"name":"cpu","metric":"CPU","warningPercent":98,"criticalPercent":99}]}}'),
      ),
    );
    // A UTC offset: the CRD's date-time format accepts it. Until 427a741 the operator's schema did not, and
    // the webhook let every spec it could not read through unchecked (the suspend below was allowed).
    const offsetChange = await outcome(
      mallory(patch('{"spec":{"suspend":true,"silencedUntil":"2099-01-01T00:00:00+00:00"}}')),
    );
    // A spec the operator cannot read in any case (e.g. stored before a schema change), as the API server
    // would send it: straight to the webhook, so the CRD's own validation is not in the way.
    const review = (kind: string, object: unknown, oldObject: unknown) =>
      postReview(
        kind === "AlertPolicy"
          ? "/validate-mxops-dev-v1alpha1-alertpolicy"
          : "/validate-mxops-dev-v1alpha1-mendixapp",
        {
          apiVersion: "admission.k8s.io/v1",
          kind: "AdmissionReview",
          request: {
            uid: `u-${kind}`,
            kind: { group: "mxops.dev", version: "v1alpha1", kind },
            namespace: NS,
            name: "crm",
            operation: "UPDATE",
            userInfo: { username: "mallory@example.com", groups: ["people", "system:authenticated"] },
            object,
            oldObject,
          },
        },
      );
    const validPolicy = { appRef: { name: "crm" }, rules: [{ name: "cpu", metric: "CPU" }] };
    const unreadablePolicy = await review(
      "AlertPolicy",
      {
        metadata: { name: "crm", namespace: NS },
        spec: { ...validPolicy, suspend: true, silencedUntil: "soon" },
      },
      { metadata: { name: "crm", namespace: NS }, spec: validPolicy },
    );
    const validApp = { hosting: "OnPremises", technicalContacts: [{ name: "alice" }] };
    const unreadableApp = await review(
      "MendixApp",
      {
        metadata: { name: "crm", namespace: NS },
        spec: {
          ...validApp,
          environment: "",
          permissions: [
            { subject: { kind: "User", name: "mallory@example.com" }, rights: ["ManagePermissions"] },
          ],
        },
      },
      { metadata: { name: "crm", namespace: NS }, spec: validApp },
    );
    const deleteAfterwards = await outcome(mallory(["delete", "mxalert", "crm", "-n", NS, "--wait=false"]));
    const policyAfter = await api.get<MxObject>(`${MX}/namespaces/${NS}/alertpolicies/crm`);
    report("g-admission-bypass", {
      validChangeByNonContact: plainChange === "allowed" ? "allowed" : "denied",
      offsetSilenceAndSuspendByNonContact: offsetChange === "allowed" ? "allowed" : "denied",
      unreadablePolicySpecByNonContact: unreadablePolicy.allowed
        ? "allowed"
        : `denied: ${unreadablePolicy.message}`,
      unreadableAppSpecByNonContact: unreadableApp.allowed ? "allowed" : `denied: ${unreadableApp.message}`,
      deleteByNonContactAfterwards: deleteAfterwards === "allowed" ? "allowed" : "denied",
      policySuspendedAfter: (policyAfter?.spec as { suspend?: boolean } | undefined)?.suspend === true,
    });
    expect(plainChange).toMatch(/mallory@example\.com may not change the alert settings of crm/);
    expect(offsetChange).toMatch(/may not change the alert settings of crm/);
    expect(unreadablePolicy.allowed, "an unreadable AlertPolicy spec must not skip the contact check").toBe(
      false,
    );
    expect(unreadablePolicy.message).toContain("spec.silencedUntil");
    expect(unreadableApp.allowed, "an unreadable MendixApp spec must not skip the contact check").toBe(false);
    expect(unreadableApp.message).toContain("spec.environment");
    expect(deleteAfterwards).toMatch(/may not change the alert settings of crm|denied the request/);
  });

  it("survives a hostile client posting an oversized body to the webhook (heap as deployed: 256 MiB)", async () => {
    const sizeMiB = 400;
    const chunk = Buffer.alloc(1 << 20, 0x61);
    const started = Date.now();
    const answer = await new Promise<string>((resolve) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: webhookPort,
          method: "POST",
          path: "/validate-mxops-dev-v1alpha1-alertpolicy",
          rejectUnauthorized: false,
          headers: { "content-type": "application/json" },
        },
        (res) => {
          res.resume();
          resolve(`HTTP ${res.statusCode}`);
        },
      );
      req.on("error", (e) => resolve(`connection error: ${e.message}`));
      let sent = 0;
      const pump = () => {
        while (sent < sizeMiB) {
          sent++;
          if (!req.write(chunk)) {
            req.once("drain", pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    await Promise.race([op.exit, sleep(5000)]);
    const survived = op.alive();
    report("g-webhook-body-limit", {
      bodyMiB: sizeMiB,
      answer,
      seconds: Math.round((Date.now() - started) / 100) / 10,
      operatorSurvived: survived,
      operatorExit: survived ? undefined : (op.child.signalCode ?? op.child.exitCode),
    });
    if (!survived) {
      // Later checks (the leak scan) still read everything this operator wrote before it died.
      op = startOperator("security-after-crash", cp.kubeconfig, [`--namespaces=${NS}`], {
        MXOPS_WEBHOOK_PORT: String(webhookPort),
        MXOPS_WEBHOOK_HOST_NAMES: "localhost",
        MXOPS_WEBHOOK_CONFIGURATION_NAME: VWC,
      });
      await op.waitForLog("controllers started", (l) => l.msg === "controllers started");
    }
    // Until 427a741 the webhook read every body whole: this POST ended the process (SIGABRT, heap exhausted).
    expect(survived, `a ${sizeMiB} MiB POST to the webhook port ended the operator (${answer})`).toBe(true);
  });

  it("leaks no planted license key into logs, Events or statuses", async () => {
    await eventually(
      async () => {
        const app = await api.get<MxObject>(`${MX}/namespaces/${NS}/mendixapps/crm`);
        return condition(app, "Ready")?.status === "True" ? true : undefined;
      },
      { what: "crm Ready (its license injected)" },
    );
    const scan = await scanForLeaks(api);
    report("g-leak-scan-security", { ...scan, hits: scan.hits.length });
    expect(scan.hits).toEqual([]);
    expect(scan.logLines).toBeGreaterThan(5);
  });
});
