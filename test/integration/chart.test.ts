// The Helm chart: helm (built from its Go module) lints and renders it, the API server accepts the result, the
// values schema refuses bad values, and its RBAC is the one deploy/base explains.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { adminKubeconfig, kubectl } from "./helpers.ts";
import { installCrds } from "./operator.ts";

const root = join(import.meta.dirname, "..", "..");
const chart = join(root, "charts", "mxops");

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

interface Doc {
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  rules?: unknown[];
}

describe("charts/mxops", () => {
  let helm: string;
  const template = (...args: string[]) =>
    run(helm, ["template", "mxops", chart, "-n", "mxops-chart", "--kube-version", "1.34.4", ...args]);

  beforeAll(async () => {
    const built = await run("bash", [join(root, "test", "controlplane", "build-helm.sh")]);
    expect(built.code, built.err).toBe(0);
    helm = built.out.trim().split("\n").at(-1) ?? "";
    await installCrds();
  });

  it("passes helm lint", async () => {
    const r = await run(helm, ["lint", chart]);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toContain("1 chart(s) linted, 0 chart(s) failed");
  });

  it("renders manifests (with the CRDs) that the API server accepts", async () => {
    const r = await template("--include-crds");
    expect(r.code, r.err).toBe(0);
    const kinds = YAML.parseAllDocuments(r.out)
      .map((d) => (d.toJS() as Doc).kind)
      .sort();
    expect(kinds).toEqual([
      "ClusterRole",
      "ClusterRoleBinding",
      "CustomResourceDefinition",
      "CustomResourceDefinition",
      "CustomResourceDefinition",
      "Deployment",
      "PodDisruptionBudget",
      "Role",
      "RoleBinding",
      "Service",
      "Service",
      "ServiceAccount",
      "ValidatingWebhookConfiguration",
    ]);
    await kubectl(adminKubeconfig(), [
      "create",
      "namespace",
      "mxops-chart",
      "--dry-run=client",
      "-o",
      "yaml",
    ]).then((ns) => kubectl(adminKubeconfig(), ["apply", "-f", "-"], ns));
    const applied = await kubectl(
      adminKubeconfig(),
      ["apply", "--dry-run=server", "-n", "mxops-chart", "-f", "-"],
      r.out,
    );
    expect(applied).toMatch(/deployment\.apps\/mxops (created|configured|unchanged) \(server dry run\)/);
  });

  it("switches the webhook to cert-manager, wiring the Certificate and the CA injection", async () => {
    const missing = await template("--set", "webhook.certificates=certManager");
    expect(missing.code).not.toBe(0);
    expect(missing.err).toContain("webhook.certManagerIssuer.name is required");
    const r = await template(
      "--set",
      "webhook.certificates=certManager",
      "--set",
      "webhook.certManagerIssuer.name=ca",
    );
    const docs = YAML.parseAllDocuments(r.out).map((d) => d.toJS() as Doc);
    expect(docs.find((d) => d.kind === "Certificate")?.metadata.name).toBe("mxops-webhook");
    expect(
      docs.find((d) => d.kind === "ValidatingWebhookConfiguration")?.metadata.annotations?.[
        "cert-manager.io/inject-ca-from"
      ],
    ).toBe("mxops-chart/mxops-webhook");
    expect(r.out).toContain("MXOPS_WEBHOOK_CERT_DIR");
  });

  it("refuses bad values through values.schema.json, naming the value", async () => {
    const r = await template("--set", "smtp.tls=ssl", "--set", "replicas=0");
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/smtp\/tls/);
    expect(r.err).toMatch(/replicas/);
    // Values the operator itself would refuse at start (a crash loop after a successful install).
    for (const [set, named] of [
      ["smtp.credentialsSecret=mail/smtp-login", /smtp\/credentialsSecret/],
      ["notifications.hourlyCap=1000000", /notifications\/hourlyCap/],
      ["metrics.usageSource=prometheus", /prometheusUrl/],
    ] as const) {
      const bad = await template("--set", set);
      expect(bad.code, set).not.toBe(0);
      expect(bad.err).toMatch(named);
    }
  });

  it("takes an SMTP CA from a Secret, more settings as env, and a Lease name of its own for a second release", async () => {
    const r = await template(
      "--set",
      "smtp.caSecret=corp-ca",
      "--set",
      "extraEnv[0].name=MXOPS_RESYNC_PERIOD",
      "--set",
      "extraEnv[0].value=30m",
    );
    expect(r.code, r.err).toBe(0);
    interface PodSpec {
      containers: { env: { name: string; value?: string }[]; volumeMounts?: unknown[] }[];
      volumes: { secret: { secretName: string } }[];
    }
    const docs = YAML.parseAllDocuments(r.out).map(
      (d) => d.toJS() as Doc & { spec?: { template: { spec: PodSpec }; maxUnavailable?: number } },
    );
    const pod = docs.find((d) => d.kind === "Deployment")?.spec?.template.spec as PodSpec;
    const env = Object.fromEntries((pod.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
    expect(env).toMatchObject({
      MXOPS_SMTP_CA_FILE: "/smtp-ca/ca.crt",
      MXOPS_RESYNC_PERIOD: "30m",
      MXOPS_LEADER_ELECTION_ID: "mxops-operator",
    });
    expect(pod.containers[0]?.volumeMounts).toEqual([
      { name: "smtp-ca", mountPath: "/smtp-ca", readOnly: true },
    ]);
    expect(pod.volumes[0]?.secret.secretName).toBe("corp-ca");
    expect(docs.find((d) => d.kind === "PodDisruptionBudget")?.spec).toMatchObject({ maxUnavailable: 1 });
    const other = await run(helm, [
      "template",
      "team-b",
      chart,
      "-n",
      "mxops-chart",
      "--kube-version",
      "1.34.4",
      "--set",
      "leaderElection.id=team-b-operator",
    ]);
    expect(other.out).toContain('{name: MXOPS_LEADER_ELECTION_ID, value: "team-b-operator"}');
    // By default the Lease keeps the name every release had so far: an upgrade must not rename it.
    expect(r.out).toContain('{name: MXOPS_LEADER_ELECTION_ID, value: "mxops-operator"}');
    await kubectl(adminKubeconfig(), ["apply", "--dry-run=server", "-n", "mxops-chart", "-f", "-"], r.out);
  });

  it("scopes the webhook to the watched namespaces, whose caches it decides from", async () => {
    type Hooks = Doc & { webhooks?: { name: string; namespaceSelector?: unknown }[] };
    const hooks = (out: string) =>
      YAML.parseAllDocuments(out)
        .map((d) => d.toJS() as Hooks)
        .find((d) => d.kind === "ValidatingWebhookConfiguration")?.webhooks ?? [];
    const scoped = await template("--set", "watchNamespaces={apps,team-b}");
    expect(scoped.code, scoped.err).toBe(0);
    expect(hooks(scoped.out).map((h) => h.namespaceSelector)).toEqual(
      Array(3).fill({
        matchExpressions: [
          { key: "kubernetes.io/metadata.name", operator: "In", values: ["apps", "team-b"] },
        ],
      }),
    );
    await kubectl(
      adminKubeconfig(),
      ["apply", "--dry-run=server", "-n", "mxops-chart", "-f", "-"],
      scoped.out,
    );
    // Watching every namespace: no selector.
    const all = await template();
    expect(hooks(all.out).map((h) => h.namespaceSelector)).toEqual([undefined, undefined, undefined]);
  });

  it("spreads the replicas over nodes by default, and takes scheduling settings", async () => {
    type PodSpec = Record<string, unknown> & { topologySpreadConstraints?: { topologyKey: string }[] };
    const podOf = (out: string) =>
      (YAML.parseAllDocuments(out)
        .map((d) => d.toJS() as Doc & { spec?: { template: { spec: PodSpec } } })
        .find((d) => d.kind === "Deployment")?.spec?.template.spec ?? {}) as PodSpec;
    const byDefault = await template();
    expect(podOf(byDefault.out).topologySpreadConstraints?.map((c) => c.topologyKey)).toEqual([
      "kubernetes.io/hostname",
    ]);
    const set = await template(
      "--set",
      "priorityClassName=system-cluster-critical",
      "--set",
      "imagePullSecrets[0].name=registry",
      "--set",
      "nodeSelector.pool=ops",
      "--set",
      "tolerations[0].key=ops",
      "--set",
      "tolerations[0].operator=Exists",
      "--set",
      "terminationGracePeriodSeconds=70",
    );
    expect(set.code, set.err).toBe(0);
    expect(podOf(set.out)).toMatchObject({
      priorityClassName: "system-cluster-critical",
      imagePullSecrets: [{ name: "registry" }],
      nodeSelector: { pool: "ops" },
      tolerations: [{ key: "ops", operator: "Exists" }],
      terminationGracePeriodSeconds: 70,
    });
    await kubectl(adminKubeconfig(), ["apply", "--dry-run=server", "-n", "mxops-chart", "-f", "-"], set.out);
  });

  it("grants the operator exactly the rules deploy/base explains", async () => {
    const r = await template();
    const chartRules = YAML.parseAllDocuments(r.out)
      .map((d) => d.toJS() as Doc)
      .filter((d) => d.kind === "ClusterRole" || d.kind === "Role");
    const baseRules = YAML.parseAllDocuments(readFileSync(join(root, "deploy", "base", "rbac.yaml"), "utf8"))
      .map((d) => d.toJS() as Doc)
      .filter((d) => d?.kind === "ClusterRole" || d?.kind === "Role");
    expect(JSON.stringify(chartRules.map((d) => d.rules)).replaceAll("mxops-validating-webhook", "X")).toBe(
      JSON.stringify(baseRules.map((d) => d.rules)).replaceAll("mxops-validating-webhook", "X"),
    );
  });
});
