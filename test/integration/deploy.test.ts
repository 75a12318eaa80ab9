// The install manifests: they render, the API server accepts them (dry run), and the operator does its whole
// job under the identity of its own ServiceAccount with exactly the RBAC deploy/ gives it.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { freePort } from "../controlplane/controlplane.ts";
import { adminKubeconfig, eventually, kubectl, newNamespace, userKubeconfig } from "./helpers.ts";
import { installCrds, type OperatorProcess, startOperator } from "./operator.ts";

const root = join(import.meta.dirname, "..", "..");
const admin = (args: string[], input?: string) => kubectl(adminKubeconfig(), args, input);

interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }[];
}

describe("deploy/ (kustomize)", () => {
  let rendered: string;
  let docs: Manifest[];

  beforeAll(async () => {
    await installCrds();
    rendered = await kubectl(adminKubeconfig(), ["kustomize", join(root, "deploy", "base")]);
    docs = YAML.parseAllDocuments(rendered).map((d) => d.toJS() as Manifest);
  });

  it("renders everything an install needs", () => {
    const kinds = docs.map((d) => d.kind).sort();
    expect(kinds).toEqual([
      "ClusterRole",
      "ClusterRoleBinding",
      "CustomResourceDefinition",
      "CustomResourceDefinition",
      "CustomResourceDefinition",
      "Deployment",
      "Namespace",
      "PodDisruptionBudget",
      "Role",
      "RoleBinding",
      "Service",
      "Service",
      "ServiceAccount",
      "ValidatingWebhookConfiguration",
    ]);
  });

  it("is accepted by the API server (server-side dry run)", async () => {
    // A dry run creates nothing, so namespaced objects need their namespace to exist already.
    await admin(["apply", "-f", "-"], YAML.stringify(docs.find((d) => d.kind === "Namespace")));
    const out = await admin(["apply", "--dry-run=server", "-f", "-"], rendered);
    expect(out).toMatch(/deployment\.apps\/mxops (created|configured|unchanged) \(server dry run\)/);
    expect(out).toMatch(
      /validatingwebhookconfiguration\.admissionregistration\.k8s\.io\/mxops-validating-webhook .*\(server dry run\)/,
    );
  });

  it("asks for no wildcard, reads Secrets only by name, creates them only in its own namespace and updates only the webhook's", () => {
    for (const d of docs.filter((d) => d.kind === "ClusterRole" || d.kind === "Role")) {
      for (const r of d.rules ?? []) {
        expect(r.verbs).not.toContain("*");
        expect(r.resources).not.toContain("*");
        expect(r.apiGroups).not.toContain("*");
        if (r.resources.includes("secrets")) {
          if (r.verbs.includes("update")) {
            expect(d.kind).toBe("Role");
            expect(r.verbs).toEqual(["update"]);
            expect(r.resourceNames).toEqual(["mxops-webhook-tls"]);
          } else expect(r.verbs.sort()).toEqual(d.kind === "Role" ? ["create"] : ["get"]);
        }
        expect(r.verbs).not.toContain("escalate");
        expect(r.verbs).not.toContain("bind");
      }
    }
  });

  it("has a Prometheus overlay and a Grafana dashboard that use only metrics the operator exports", async () => {
    const overlay = await kubectl(adminKubeconfig(), [
      "kustomize",
      join(root, "deploy", "overlays", "prometheus"),
    ]);
    const kinds = YAML.parseAllDocuments(overlay).map((d) => (d.toJS() as Manifest).kind);
    expect(kinds).toEqual(expect.arrayContaining(["ServiceMonitor", "PrometheusRule", "Deployment"]));
    const exported = new Set<string>();
    for (const file of readdirSync(join(root, "src"), { recursive: true }) as string[]) {
      if (!file.endsWith(".ts") || file.endsWith(".test.ts")) continue;
      for (const m of readFileSync(join(root, "src", file), "utf8").matchAll(
        /name: "((?:mxops|controller_runtime|workqueue|leader_election|rest_client)_[a-z_]+)"/g,
      )) {
        exported.add(m[1] ?? "");
      }
    }
    const used = [
      readFileSync(join(root, "deploy", "overlays", "prometheus", "prometheusrule.yaml"), "utf8"),
      readFileSync(join(root, "deploy", "grafana", "mxops-dashboard.json"), "utf8"),
    ]
      .join("\n")
      .match(/\b(?:mxops|controller_runtime|workqueue|leader_election)_[a-z_]+/g);
    expect(used?.length).toBeGreaterThan(5);
    expect([...new Set(used)].filter((m) => !exported.has(m))).toEqual([]);
    JSON.parse(readFileSync(join(root, "deploy", "grafana", "mxops-dashboard.json"), "utf8"));
  });

  describe("the operator under its ServiceAccount's identity", () => {
    let ns: string;
    let op: OperatorProcess;

    beforeAll(async () => {
      // Only the identity and its RBAC are installed for real: the webhook configuration would reach every test.
      const rbac = docs.filter((d) =>
        ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"].includes(
          d.kind,
        ),
      );
      await admin(["apply", "-f", "-"], rbac.map((d) => YAML.stringify(d)).join("---\n"));
      await admin(["apply", "-f", join(root, "test", "fixtures", "podmetrics-crd.yaml")]);
      ns = await newNamespace("as-sa");
      await admin(
        ["apply", "-f", "-"],
        `
apiVersion: mxops.dev/v1alpha1
kind: TechnicalContact
metadata: {name: alice, namespace: ${ns}, annotations: {mxops.dev/send-test: "1"}}
spec: {displayName: Alice, email: alice@example.com, mxid: alice@example.com, identities: {users: [alice@example.com]}}
---
apiVersion: v1
kind: Secret
metadata: {name: crm-license, namespace: ${ns}}
stringData: {LICENSE_ID: 3f1c2b8e-7d4a-4e2b-9c61-0a5d8e7f1b23, LICENSE_KEY: placeholder-license-key}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: crm, namespace: ${ns}}
spec:
  replicas: 2
  selector: {matchLabels: {app: crm}}
  template:
    metadata: {labels: {app: crm}}
    spec: {containers: [{name: mendix, image: "mendix/runtime-base:latest", resources: {limits: {cpu: "1"}}}]}
---
apiVersion: mxops.dev/v1alpha1
kind: MendixApp
metadata: {name: crm, namespace: ${ns}}
spec:
  hosting: OnPremises
  technicalContacts: [{name: alice}]
  workloadRef: {kind: Deployment, name: crm}
  state: Stopped
  license: {secretRef: {name: crm-license}, expiresAt: "2030-01-01"}
  permissions:
    - subject: {kind: User, name: dave@example.com}
      rights: [Deploy, Monitoring, Backups, API, ManagePermissions]
---
apiVersion: mxops.dev/v1alpha1
kind: AlertPolicy
metadata: {name: crm, namespace: ${ns}}
spec:
  appRef: {name: crm}
  rules: [{name: cpu, metric: CPU, for: 0s}]
`,
      );
      const sa = userKubeconfig("system:serviceaccount:mxops-system:mxops", [
        "system:serviceaccounts",
        "system:serviceaccounts:mxops-system",
      ]);
      op = startOperator(["--leader-elect", `--namespaces=${ns}`], {
        KUBECONFIG: sa,
        MXOPS_LEADER_ELECTION_NAMESPACE: "mxops-system",
        MXOPS_LEADER_ELECTION_ID: `mxops-${ns}`,
        // The webhook on, sharing its generated certificate through a Secret it creates (namespaced Role).
        MXOPS_WEBHOOK_PORT: String(await freePort()),
        MXOPS_WEBHOOK_CERT_SECRET: `mxops-system/mxops-webhook-tls-${ns}`,
        MXOPS_EVALUATION_INTERVAL: "1s",
        MXOPS_LOG_LEVEL: process.env.MXOPS_TEST_OPERATOR_LOG_LEVEL ?? "info",
      });
    });

    afterAll(async () => {
      await op?.stop();
    });

    it("activates licenses, scales, grants node permissions, evaluates policies and records events, with nothing forbidden", async () => {
      const app = await eventually(
        async () => {
          const a = JSON.parse(await admin(["get", "mxapp", "crm", "-n", ns, "-o", "json"])) as {
            status?: {
              license?: { state: string };
              workload?: { licenseInjected?: boolean; rememberedReplicas?: number };
            };
          };
          return a.status?.workload?.licenseInjected && a.status.workload.rememberedReplicas === 2
            ? a
            : undefined;
        },
        { what: "the app reconciled under the ServiceAccount", timeoutMs: 30_000 },
      ).catch(async (err: Error) => {
        const status = await admin(["get", "mxapp", "crm", "-n", ns, "-o", "jsonpath={.status}"]);
        throw new Error(
          `${err.message}\napp status: ${status}\noperator log:\n${op.stdout.slice(-30).join("\n")}\n${op.stderr.join("")}`,
        );
      });
      expect(app.status?.license?.state).toBe("Active");
      expect(
        (await admin(["get", "deploy", "crm", "-n", ns, "-o", "jsonpath={.spec.replicas}"])).trim(),
      ).toBe("0");
      const roles = await admin(["get", "roles", "-n", ns, "-o", "name"]);
      for (const right of [
        "deploy",
        "monitoring",
        "backups",
        "api",
        "managepermissions",
        "technical-contact",
      ]) {
        expect(roles).toContain(`role.rbac.authorization.k8s.io/mxops-crm-${right}`);
      }
      await eventually(
        async () =>
          (await admin(["get", "mxalert", "crm", "-n", ns, "-o", "jsonpath={.status.apps[0]}"])).trim() ===
          "crm"
            ? true
            : undefined,
        { what: "the policy evaluated" },
      );
      await eventually(
        async () =>
          (
            await admin(["get", "tc", "alice", "-n", ns, "-o", "jsonpath={.status.lastTest.nonce}"])
          ).trim() === "1"
            ? true
            : undefined,
        { what: "the test message answered" },
      );
      expect(
        (await admin(["get", "events.v1.events.k8s.io", "-n", ns, "-o", "name"])).length,
      ).toBeGreaterThan(0);
      expect(
        (
          await admin([
            "get",
            "lease",
            `mxops-${ns}`,
            "-n",
            "mxops-system",
            "-o",
            "jsonpath={.spec.holderIdentity}",
          ])
        ).trim(),
      ).not.toBe("");
      expect(
        (
          await admin([
            "get",
            "secret",
            `mxops-webhook-tls-${ns}`,
            "-n",
            "mxops-system",
            "-o",
            "jsonpath={.data.tls\\.crt}",
          ])
        ).length,
      ).toBeGreaterThan(100);
      const forbidden = op.stdout.filter((l) => /forbidden/i.test(l));
      expect(forbidden).toEqual([]);
    });
  });
});
