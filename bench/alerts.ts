// Benchmark: alert latency. N MendixApps under one AlertPolicy, CPU usage from a Prometheus HTTP API (in its wire
// format, served here), mail to a real SMTP server in this process. Waves of apps cross the threshold at
// known times; the latency of each is the time until its mail is accepted by the SMTP server.
// Target (issue #10): at most one evaluation interval + 2 s. Run: npm run bench:alerts -- --apps 1000
import { spawn } from "node:child_process";
import { mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import { ALERT_POLICIES, MENDIX_APPS } from "../src/controllers/resources.ts";
import { DEPLOYMENTS } from "../src/controllers/workload.ts";
import type { KubeObject } from "../src/runtime/client.ts";
import { freePort, installCrds, kubectl, startControlPlane } from "../test/controlplane/controlplane.ts";
import { startCpuPrometheus } from "../test/support/prometheus.ts";
import { startSmtpSink } from "../test/support/smtp.ts";
import {
  appIds,
  arg,
  benchApp,
  benchClient,
  benchDeployment,
  builtOperator,
  createContacts,
  deployedNodeOptions,
  machine,
  pool,
  samples,
  sleep,
  sum,
  writeResult,
} from "./support.ts";

const root = join(import.meta.dirname, "..");
const OPERATOR = builtOperator(root);
const NODE_OPTIONS = deployedNodeOptions(root);
const N = Number(arg("apps", "1000"));
const INTERVAL_S = Number(arg("interval-seconds", "10"));
const WAVES = 4;
const PER_WAVE = Math.min(50, Math.floor(N / WAVES));

const ids = appIds(N);
/** When each app's usage went over the threshold (performance.now() of this process). */
const hotSince = new Map<string, number>();

const cp = await startControlPlane();
const smtp = await startSmtpSink({ mode: "plain" });
/** From the moving-usage phase on, the apps under the threshold move between 7% and 13%, as real ones do. */
let moving = false;
let queries = 0;
// CPU of the 1-core limit: 90% for apps over the threshold, 10% (or 7-13%) for the rest.
const prometheus = await startCpuPrometheus(() => {
  queries++;
  return ids.map((id, i) => [
    id,
    hotSince.has(id) ? 0.9 : moving ? 0.1 + 0.03 * Math.sin(i * 7.1 + queries * 2.3) : 0.1,
  ]);
});
const result: Record<string, unknown> = {
  benchmark: "alert-latency",
  apps: N,
  evaluationIntervalSeconds: INTERVAL_S,
  machine: machine(),
  command: `npm run bench:alerts -- --apps ${N}`,
  nodeOptions: NODE_OPTIONS,
  date: new Date().toISOString(),
};
try {
  const client = benchClient(cp.kubeconfig);
  await installCrds(cp.kubeconfig);
  const ns = "alerts";
  await kubectl(cp.kubeconfig, ["create", "namespace", ns]);
  const contacts = await createContacts(client, ns, 50);
  await pool(ids, 16, async (id) => {
    await client.create(DEPLOYMENTS, benchDeployment(ns, id, { resources: { limits: { cpu: "1" } } }));
    const contact = contacts[Number(id.slice(4)) % contacts.length] as string;
    await client.create(
      MENDIX_APPS,
      benchApp(ns, id, contact, { license: false, labels: { tier: "bench" } }),
    );
  });
  await client.create(ALERT_POLICIES, {
    metadata: { name: "cpu", namespace: ns },
    spec: {
      appSelector: { matchLabels: { tier: "bench" } },
      rules: [{ name: "cpu", metric: "CPU", warningPercent: 75, criticalPercent: 95, for: "0s" }],
      sendResolved: false,
    },
  } as KubeObject);

  const metricsPort = await freePort();
  // The operator's log goes to .tmp/ (which a fresh clone does not have).
  mkdirSync(join(root, ".tmp"), { recursive: true });
  const op = spawn(process.execPath, [OPERATOR, `--namespaces=${ns}`], {
    env: {
      ...process.env,
      KUBECONFIG: cp.kubeconfig,
      MXOPS_METRICS_BIND_ADDRESS: `127.0.0.1:${metricsPort}`,
      MXOPS_HEALTH_PROBE_BIND_ADDRESS: "0",
      MXOPS_WEBHOOK_PORT: "0",
      MXOPS_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "warn",
      NODE_OPTIONS,
      MXOPS_USAGE_SOURCE: "prometheus",
      MXOPS_PROMETHEUS_URL: prometheus.url,
      MXOPS_EVALUATION_INTERVAL: `${INTERVAL_S}s`,
      MXOPS_SMTP_HOST: "127.0.0.1",
      MXOPS_SMTP_PORT: String(smtp.port),
      MXOPS_SMTP_TLS: "none",
      MXOPS_SMTP_FROM: "mxops@example.com",
      // The per-recipient hourly cap would hold most of these alerts for a digest: not what is measured here.
      MXOPS_NOTIFY_HOURLY_CAP: "100000",
    },
    stdio: ["ignore", openSync(join(root, ".tmp", "alerts-operator.log"), "w"), "inherit"],
  });
  const exited = new Promise((r) => op.once("exit", r));
  const scrape = async () => await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const gauge = (text: string, name: string) =>
    Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, "m").exec(text)?.[1] ?? Number.NaN);

  // Every app evaluated once (all Inactive) and the welcome mails sent: the quiet start.
  const t0 = performance.now();
  for (;;) {
    const policy = await client.get<KubeObject & { status?: { apps?: string[]; summary?: string } }>(
      ALERT_POLICIES,
      ns,
      "cpu",
    );
    const evaluated = (policy?.status?.apps?.length ?? 0) >= N && policy?.status?.summary === "OK";
    if (evaluated && smtp.mails.length >= N) break;
    if (performance.now() - t0 > 600_000)
      throw new Error("the policy did not evaluate every app in 10 minutes");
    await sleep(1000);
  }
  await sleep(2 * INTERVAL_S * 1000);

  // Usage moving under the thresholds for MOVING_INTERVALS evaluations: how often, and how much, the
  // policy's status is written when no alert changes state.
  const MOVING_INTERVALS = 4;
  const policyStatusWrites = async () =>
    sum(samples(await kubectl(cp.kubeconfig, ["get", "--raw", "/metrics"])), "apiserver_request_total", (k) =>
      ['resource="alertpolicies"', 'subresource="status"', 'verb="PATCH"'].every((l) => k.includes(l)),
    );
  const evaluations = async () =>
    sum(samples(await scrape()), "controller_runtime_reconcile_total", (k) =>
      k.includes('controller="alertpolicy"'),
    );
  const writes0 = await policyStatusWrites();
  const evaluations0 = await evaluations();
  moving = true;
  await sleep(MOVING_INTERVALS * INTERVAL_S * 1000);
  const policy = await client.get<KubeObject & { status?: unknown }>(ALERT_POLICIES, ns, "cpu");
  result.movingUsage = {
    usagePercent: "7-13",
    evaluations: (await evaluations()) - evaluations0,
    policyStatusWrites: (await policyStatusWrites()) - writes0,
    policyStatusBytes: JSON.stringify(policy?.status ?? {}).length,
  };
  const before = smtp.mails.length;

  // Waves of apps cross the threshold at different phases of the evaluation interval.
  const latencies: number[] = [];
  const waveStarts: number[] = [];
  const cpuMail = (id: string) =>
    smtp.mails.find((m) => (m.headers.subject ?? "").includes(`CPU usage of ${id}`));
  const epochOffset = Date.now() - performance.now();
  for (let w = 0; w < WAVES; w++) {
    // Spread over the apps: wave w takes every WAVES-th app of its stride.
    const step = Math.max(1, Math.floor(N / (WAVES * PER_WAVE)));
    const wave = Array.from({ length: PER_WAVE }, (_, i) => ids[(i * WAVES + w) * step] as string);
    const at = performance.now();
    waveStarts.push(at);
    for (const id of wave) hotSince.set(id, at);
    console.error(`wave ${w}: ${wave.length} apps over the threshold at ${new Date().toISOString()}`);
    await sleep(INTERVAL_S * 1000 * 1.37);
  }
  const deadline = performance.now() + 10 * INTERVAL_S * 1000;
  while (performance.now() < deadline && [...hotSince.keys()].some((id) => !cpuMail(id))) await sleep(500);
  let missing = 0;
  for (const [id, since] of hotSince) {
    const mail = cpuMail(id);
    if (!mail) missing++;
    else latencies.push((mail.receivedAt - epochOffset - since) / 1000);
  }
  const text = await scrape();
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => Number((sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? 0).toFixed(2));
  Object.assign(result, {
    hotApps: hotSince.size,
    mailsMissing: missing,
    otherMailsDuringWaves: smtp.mails.length - before - latencies.length,
    alertLatencySeconds: { samples: latencies.length, p50: at(0.5), p99: at(0.99), max: at(1) },
    targetSeconds: INTERVAL_S + 2,
    evaluationSeconds: {
      sum: gauge(text, 'controller_runtime_reconcile_time_seconds_sum\\{controller="alertpolicy"\\}'),
      count: gauge(text, 'controller_runtime_reconcile_time_seconds_count\\{controller="alertpolicy"\\}'),
    },
    rssMB: Math.round(gauge(text, "process_resident_memory_bytes") / 2 ** 20),
    heapUsedMB: Math.round(gauge(text, "nodejs_heap_size_used_bytes") / 2 ** 20),
  });
  op.kill("SIGTERM");
  await exited;
} finally {
  await prometheus.close();
  await smtp.close();
  await cp.stop();
}
writeResult(root, `alerts-${N}.json`, result);
console.log(JSON.stringify(result, null, 2));
