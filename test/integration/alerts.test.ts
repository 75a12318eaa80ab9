// Alerts end to end: PodMetrics served through the kube-apiserver (metrics.k8s.io), disk from a Prometheus
// HTTP API in its wire format, the operator evaluating an AlertPolicy every second, a real SMTP inbox.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../controlplane/controlplane.ts";
import { type HttpReceiver, startHttpReceiver } from "../support/http-receiver.ts";
import { type SmtpSink, startSmtpSink } from "../support/smtp.ts";
import { adminKubeconfig, eventually, kubectl, newNamespace } from "./helpers.ts";
import { installCrds, type OperatorProcess, startOperator } from "./operator.ts";

const k = (args: string[], input?: string) => kubectl(adminKubeconfig(), args, input);

const podMetrics = (ns: string, cpu: string) => `
apiVersion: metrics.k8s.io/v1beta1
kind: PodMetrics
metadata: {name: crm-7d9f8b6c5d-x2k4p, namespace: ${ns}, labels: {app: crm}}
timestamp: "${new Date().toISOString().replace(/\.\d{3}Z$/, "Z")}"
window: 30s
containers:
  - name: mendix
    usage: {cpu: "${cpu}", memory: "512Mi"}
`;

describe("alerts on CPU and disk usage", () => {
  let smtp: SmtpSink;
  let prometheus: HttpReceiver;
  let alertmanager: HttpReceiver;
  let op: OperatorProcess;
  let ns: string;
  let metricsPort: number;
  let diskUsed = 50 * 2 ** 30;
  /** Whether Prometheus has the volume stats (a gap in them: no series at all). */
  let diskStats = true;
  const queries: string[] = [];

  beforeAll(async () => {
    await installCrds();
    await k(["apply", "-f", join(import.meta.dirname, "..", "fixtures", "podmetrics-crd.yaml")]);
    await k(["wait", "--for=condition=Established", "crd/pods.metrics.k8s.io"]);
    smtp = await startSmtpSink({ mode: "plain" });
    alertmanager = await startHttpReceiver();
    // Prometheus' /api/v1/query answer for kubelet_volume_stats_* (the other queries: empty vectors).
    prometheus = await startHttpReceiver((r) => {
      const q = new URL(r.path, "http://p").searchParams.get("query") ?? "";
      queries.push(q);
      const t = Date.now() / 1000;
      const result =
        !diskStats && q.includes("kubelet_volume_stats")
          ? []
          : q.includes("kubelet_volume_stats_used_bytes")
            ? [{ metric: { persistentvolumeclaim: "crm-data" }, value: [t, String(diskUsed)] }]
            : q.includes("kubelet_volume_stats_capacity_bytes")
              ? [{ metric: { persistentvolumeclaim: "crm-data" }, value: [t, String(100 * 2 ** 30)] }]
              : [];
      return {
        status: 200,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ status: "success", data: { resultType: "vector", result } }),
      };
    });
    ns = await newNamespace("alerts");
    metricsPort = await freePort();
    await k(
      ["apply", "-f", "-"],
      `
apiVersion: mxops.dev/v1alpha1
kind: TechnicalContact
metadata: {name: alice, namespace: ${ns}}
spec:
  displayName: Alice
  email: alice@example.com
  mxid: alice@example.com
  channels: {alertmanager: {enabled: true}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: crm, namespace: ${ns}}
spec:
  replicas: 1
  selector: {matchLabels: {app: crm}}
  template:
    metadata: {labels: {app: crm}}
    spec:
      containers:
        - {name: mendix, image: "mendix/runtime-base:latest", resources: {limits: {cpu: "1", memory: 1Gi}}}
      volumes:
        - {name: data, persistentVolumeClaim: {claimName: crm-data}}
---
apiVersion: mxops.dev/v1alpha1
kind: MendixApp
metadata: {name: crm, namespace: ${ns}}
spec:
  hosting: OnPremises
  technicalContacts: [{name: alice}]
  workloadRef: {kind: Deployment, name: crm}
  permissions:
    - subject: {kind: User, name: dave@example.com}
      rights: [ReceiveAlerts]
---
apiVersion: mxops.dev/v1alpha1
kind: AlertPolicy
metadata: {name: crm, namespace: ${ns}}
spec:
  appRef: {name: crm}
  rules:
    - {name: cpu, metric: CPU, warningPercent: 75, criticalPercent: 85, for: 1s, clearMarginPercent: 5}
    - {name: disk, metric: Disk}
---
${podMetrics(ns, "100m")}`,
    );
    op = startOperator([`--namespaces=${ns}`], {
      MXOPS_SMTP_HOST: "127.0.0.1",
      MXOPS_SMTP_PORT: String(smtp.port),
      MXOPS_SMTP_TLS: "none",
      MXOPS_EVALUATION_INTERVAL: "1s",
      MXOPS_PROMETHEUS_URL: prometheus.url,
      MXOPS_METRICS_BIND_ADDRESS: `127.0.0.1:${metricsPort}`,
      MXOPS_ALERTMANAGER_URL: alertmanager.url,
    });
  });

  afterAll(async () => {
    await op?.stop();
    await smtp?.close();
    await prometheus?.close();
    await alertmanager?.close();
  });

  const cpuMails = (to: string) =>
    smtp.mails.filter((m) => m.to.includes(to) && /CPU usage of crm/.test(m.headers.subject ?? ""));
  const metrics = async () => await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();

  it("notifies the contact and ReceiveAlerts members once per change: Warning, Critical, Recovery", async () => {
    await eventually(
      async () =>
        (await metrics()).includes(`mxops_app_cpu_usage_ratio{namespace="${ns}",app="crm"} 0.1`)
          ? true
          : undefined,
      {
        what: "the first evaluation",
        timeoutMs: 30_000,
      },
    );
    expect(cpuMails("alice@example.com")).toHaveLength(0);

    await k(["apply", "-f", "-"], podMetrics(ns, "800m"));
    await eventually(async () => (cpuMails("alice@example.com").length === 1 ? true : undefined), {
      what: "the Warning mail",
      timeoutMs: 30_000,
    });
    expect(cpuMails("alice@example.com")[0]?.headers.subject).toBe(
      "[Warning] CPU usage of crm is warning (80%)",
    );

    await k(["apply", "-f", "-"], podMetrics(ns, "900m"));
    await eventually(async () => (cpuMails("alice@example.com").length === 2 ? true : undefined), {
      what: "the Critical mail",
      timeoutMs: 30_000,
    });
    expect(cpuMails("alice@example.com")[1]?.headers.subject).toBe(
      "[Critical] CPU usage of crm is critical (90%)",
    );

    await k(["apply", "-f", "-"], podMetrics(ns, "100m"));
    await eventually(async () => (cpuMails("alice@example.com").length === 3 ? true : undefined), {
      what: "the Recovery mail",
      timeoutMs: 30_000,
    });
    expect(cpuMails("alice@example.com")[2]?.headers.subject).toBe(
      "CPU usage of crm is back to normal (10%)",
    );
    expect(cpuMails("alice@example.com")[2]?.decoded).toMatch(/peaked at 90%/);

    await new Promise((r) => setTimeout(r, 3000)); // three more evaluations: nothing new
    expect(cpuMails("alice@example.com")).toHaveLength(3);
    // The ReceiveAlerts team member gets the same three; the mails of one alert form one thread.
    expect(cpuMails("dave@example.com").map((m) => m.headers.subject)).toEqual(
      cpuMails("alice@example.com").map((m) => m.headers.subject),
    );
    const [first, second] = cpuMails("alice@example.com");
    expect(second?.headers["in-reply-to"]).toBe(first?.headers["message-id"]);
  });

  it("exports usage and alert state, and keeps the rule states in the policy's status", async () => {
    const text = await metrics();
    expect(text).toContain(`mxops_app_cpu_usage_cores{namespace="${ns}",app="crm"} 0.1`);
    expect(text).toContain(`mxops_app_memory_usage_ratio{namespace="${ns}",app="crm"} 0.5`);
    expect(text).toContain(`mxops_app_disk_usage_ratio{namespace="${ns}",app="crm",volume="crm-data"} 0.5`);
    expect(text).toContain(
      `mxops_app_disk_capacity_bytes{namespace="${ns}",app="crm",volume="crm-data"} ${100 * 2 ** 30}`,
    );
    expect(text).toContain(
      `mxops_alert_state{namespace="${ns}",policy="crm",app="crm",rule="cpu",severity="Ok"} 1`,
    );
    expect(text).toMatch(
      new RegExp(`mxops_alert_evaluation_lag_seconds\\{namespace="${ns}",policy="crm"\\} \\d`),
    );
    expect(text).toContain(
      'mxops_notifications_total{channel="email",kind="AlertEscalated",result="sent"} 2',
    );
    const policy = JSON.parse(await k(["get", "mxalert", "crm", "-n", ns, "-o", "json"])) as {
      status: {
        summary: string;
        apps: string[];
        rules: { rule: string; state: string; peak?: number; sequence?: number; volume?: string }[];
      };
    };
    expect(policy.status.summary).toBe("OK");
    expect(policy.status.apps).toEqual(["crm"]);
    // The CPU rule alerted: its sequence is kept for the next alert. The disk rule never did: no entry.
    expect(policy.status.rules).toEqual([
      expect.objectContaining({ app: "crm", rule: "cpu", state: "Inactive", sequence: 3 }),
    ]);
    expect(queries.some((q) => q.includes('kubelet_volume_stats_used_bytes{namespace="'))).toBe(true);
  });

  it("does not rewrite the policy's status while usage moves under the thresholds", async () => {
    const policy = async () =>
      JSON.parse(await k(["get", "mxalert", "crm", "-n", ns, "-o", "json"])) as {
        metadata: { resourceVersion: string };
        status: { rules: { rule: string; state: string; value?: number }[] };
      };
    const before = await policy();
    expect(before.status.rules.find((r) => r.rule === "cpu")?.value).toBeUndefined();
    for (const cpu of ["200m", "300m"]) {
      await k(["apply", "-f", "-"], podMetrics(ns, cpu));
      await eventually(
        async () =>
          (await metrics()).includes(
            `mxops_app_cpu_usage_ratio{namespace="${ns}",app="crm"} ${Number.parseInt(cpu, 10) / 1000}`,
          )
            ? true
            : undefined,
        { what: `an evaluation of ${cpu}`, timeoutMs: 30_000 },
      );
    }
    await new Promise((r) => setTimeout(r, 2000)); // two more evaluations at 30%
    const after = await policy();
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    expect(after.status.rules.find((r) => r.rule === "cpu")).toMatchObject({ state: "Inactive" });
    await k(["apply", "-f", "-"], podMetrics(ns, "100m"));
  });

  it("fires on disk from Prometheus' volume stats", async () => {
    diskUsed = 90 * 2 ** 30;
    const diskMails = () =>
      smtp.mails.filter(
        (m) => m.to.includes("alice@example.com") && /Disk usage of crm/.test(m.headers.subject ?? ""),
      );
    await eventually(async () => (diskMails().length === 1 ? true : undefined), {
      what: "the disk alert",
      timeoutMs: 30_000,
    });
    expect(diskMails()[0]?.headers.subject).toBe(
      "[Critical] Disk usage of crm (volume crm-data) is critical (90%)",
    );

    // A gap in the volume stats: the volume's alert is Unknown, still Critical, and keeps its place.
    const diskRule = async () =>
      (
        JSON.parse(await k(["get", "mxalert", "crm", "-n", ns, "-o", "json"])) as {
          status: { rules: { rule: string; state: string; severity: string; volume?: string }[] };
        }
      ).status.rules.find((r) => r.rule === "disk");
    diskStats = false;
    expect(
      await eventually(async () => ((await diskRule())?.state === "Unknown" ? await diskRule() : undefined), {
        what: "the disk rule Unknown during the gap",
        timeoutMs: 30_000,
      }),
    ).toMatchObject({ state: "Unknown", severity: "Critical", volume: "crm-data" });
    // Back, still full: the same alert fires on, with no second Firing mail.
    diskStats = true;
    await eventually(async () => ((await diskRule())?.state === "Firing" ? true : undefined), {
      what: "the disk rule firing again after the gap",
      timeoutMs: 30_000,
    });
    await new Promise((r) => setTimeout(r, 2000)); // two more evaluations
    expect(diskMails()).toHaveLength(1);
    // Nor did Alertmanager see it end and start again: the disk alert was posted, re-sent, never ended.
    const diskPosts = alertmanager.received
      .flatMap((r) => JSON.parse(r.body) as { labels: Record<string, string>; endsAt?: string }[])
      .filter((a) => a.labels.rule === "disk" && a.labels.alertname === "MendixDisk");
    expect(diskPosts.length).toBeGreaterThan(0);
    expect(diskPosts.filter((a) => Date.parse(a.endsAt ?? "") <= Date.now())).toEqual([]);
    // Back under the threshold: one Recovery.
    diskUsed = 50 * 2 ** 30;
    await eventually(async () => (diskMails().length === 2 ? true : undefined), {
      what: "the disk alert's recovery",
      timeoutMs: 30_000,
    });
    expect(diskMails()[1]?.headers.subject).toBe(
      "Disk usage of crm (volume crm-data) is back to normal (50%)",
    );
  });

  it("follows its selector as apps are labelled and relabelled", async () => {
    const picked = async () =>
      (await k(["get", "mxalert", "team-blue", "-n", ns, "-o", "jsonpath={.status.apps[*]}"])).trim();
    const until = async (want: string, what: string) =>
      await eventually(async () => ((await picked()) === want ? true : undefined), { what });
    await k(
      ["apply", "-f", "-"],
      `apiVersion: mxops.dev/v1alpha1
kind: AlertPolicy
metadata: {name: team-blue, namespace: ${ns}}
spec:
  appSelector: {matchLabels: {team: blue}}
  rules: [{name: cpu, metric: CPU}]
`,
    );
    await eventually(
      async () =>
        (await k([
          "get",
          "mxalert",
          "team-blue",
          "-n",
          ns,
          "-o",
          "jsonpath={.status.observedGeneration}",
        ])) === "1"
          ? true
          : undefined,
      { what: "the policy evaluated" },
    );
    expect(await picked()).toBe("");
    // Only labels change which apps a selector picks; the evaluations in between reuse the selection.
    await k(["label", "mendixapp", "crm", "-n", ns, "team=blue"]);
    await until("crm", "the labelled app picked");
    await k(["label", "mendixapp", "crm", "-n", ns, "team=red", "--overwrite"]);
    await until("", "the relabelled app left");
    await k(["label", "mendixapp", "crm", "-n", ns, "team=blue", "--overwrite"]);
    await until("crm", "the app picked again");
  });

  it("ends an Alertmanager alert that recovers without a notification (sendResolved: false)", async () => {
    await k(["patch", "mxalert", "crm", "-n", ns, "--type=merge", "-p", '{"spec":{"sendResolved":false}}']);
    const since = Date.now();
    type Posted = { labels: Record<string, string>; endsAt?: string };
    const cpuPosts = () =>
      alertmanager.received
        .filter((r) => r.at >= since)
        .flatMap((r) => JSON.parse(r.body) as Posted[])
        .filter((a) => a.labels.rule === "cpu" && a.labels.policy === "crm");
    await k(["apply", "-f", "-"], podMetrics(ns, "950m"));
    const fired = await eventually(
      async () =>
        cpuPosts().find((a) => a.labels.severity === "critical" && Date.parse(a.endsAt ?? "") > Date.now()),
      { what: "the critical alert in Alertmanager", timeoutMs: 30_000 },
    );
    // Firing alerts carry an endsAt a few minutes ahead (re-sent before it passes).
    expect(Date.parse(fired.endsAt ?? "") - Date.now()).toBeGreaterThan(60_000);
    const mailsBefore = cpuMails("alice@example.com").length;
    await k(["apply", "-f", "-"], podMetrics(ns, "100m"));
    const ended = await eventually(
      async () =>
        cpuPosts().find((a) => a.labels.severity === "critical" && Date.parse(a.endsAt ?? "") <= Date.now()),
      { what: "the alert ended in Alertmanager", timeoutMs: 30_000 },
    );
    expect(ended.labels).toMatchObject({ alertname: "MendixCPU", namespace: ns, app: "crm" });
    // No Recovery mail (sendResolved: false), only the Critical one.
    const mails = cpuMails("alice@example.com").slice(mailsBefore);
    expect(mails.map((m) => m.headers.subject)).toEqual(["[Critical] CPU usage of crm is critical (95%)"]);
    // The first mail of this (second) alert starts its own thread: it refers to no earlier message.
    expect(mails[0]?.headers["in-reply-to"]).toBeUndefined();
  });
});
