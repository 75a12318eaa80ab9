// Benchmark: N MendixApps (each with its Deployment) created at once; how long until the operator has settled
// every status, against a bare script doing the same number of status writes (this machine's API server limit).
// Also: writes in a minute of steady state, and the operator's memory. Run: npm run bench -- --apps 1000
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { MENDIX_APPS, TECHNICAL_CONTACTS } from "../src/controllers/resources.ts";
import { DEPLOYMENTS } from "../src/controllers/workload.ts";
import { KubeClient, type KubeObject } from "../src/runtime/client.ts";
import { freePort, installCrds, kubectl, startControlPlane } from "../test/controlplane/controlplane.ts";

const root = join(import.meta.dirname, "..");
const argv = process.argv.slice(2);
const arg = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? (argv[i + 1] ?? dflt) : dflt;
};
const N = Number(arg("apps", "1000"));
const CONCURRENCY = 4; // the operator's default --max-concurrent-reconciles
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

async function metric(
  port: number,
  name: string,
  filter: (labels: string) => boolean = () => true,
): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (m && m[1] === name && filter(m[2] ?? "")) sum += Number(m[3]);
  }
  return sum;
}
const writes = (labels: string) => /method="(POST|PATCH|DELETE)"/.test(labels);

const cp = await startControlPlane();
const result: Record<string, unknown> = {
  benchmark: "convergence",
  apps: N,
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30) },
  command: `npm run bench -- --apps ${N}`,
  date: new Date().toISOString(),
};
try {
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfig);
  const client = new KubeClient(kc);
  await installCrds(cp.kubeconfig);
  const ns = "bench";
  await kubectl(cp.kubeconfig, ["create", "namespace", ns]);
  await kubectl(cp.kubeconfig, ["create", "namespace", "baseline"]);
  const secret = (n: string) =>
    `apiVersion: v1\nkind: Secret\nmetadata: {name: license, namespace: ${n}}\nstringData: {LICENSE_ID: 3f1c2b8e-7d4a-4e2b-9c61-0a5d8e7f1b23, LICENSE_KEY: bench-placeholder}\n`;
  await kubectl(cp.kubeconfig, ["apply", "-f", "-"], `${secret(ns)}---\n${secret("baseline")}`);
  const contacts = Array.from({ length: 50 }, (_, i) => `c${i}`);
  const ids = Array.from({ length: N }, (_, i) => `app-${String(i).padStart(5, "0")}`);

  const create = async (n: string, withWorkload: boolean) => {
    for (const c of contacts) {
      await client.create(TECHNICAL_CONTACTS, {
        metadata: { name: c, namespace: n },
        spec: { displayName: c, email: `${c}@example.com`, mxid: `${c}@example.com` },
      } as KubeObject);
    }
    const t0 = performance.now();
    await pool(ids, 16, async (id) => {
      if (withWorkload) {
        await client.create(DEPLOYMENTS, {
          metadata: { name: id, namespace: n },
          spec: {
            replicas: 1,
            selector: { matchLabels: { app: id } },
            template: {
              metadata: { labels: { app: id } },
              spec: { containers: [{ name: "mendix", image: "mendix/runtime-base:latest" }] },
            },
          },
        } as KubeObject);
      }
      const i = Number(id.slice(4));
      await client.create(MENDIX_APPS, {
        metadata: { name: id, namespace: n },
        spec: {
          hosting: "OnPremises",
          technicalContacts: [{ name: contacts[i % contacts.length] }],
          workloadRef: withWorkload ? { kind: "Deployment", name: id } : undefined,
          license: { secretRef: { name: "license" }, expiresAt: "2030-01-01" },
        },
      } as KubeObject);
    });
    return (performance.now() - t0) / 1000;
  };

  // Baseline: the same number of status writes the operator makes per app (1), straight to the API server.
  const baselineCreate = await create("baseline", false);
  const b0 = performance.now();
  await pool(ids, CONCURRENCY, async (id) => {
    await client.patch(
      MENDIX_APPS,
      "baseline",
      id,
      { status: { observedGeneration: 1, license: { state: "Active" } } },
      "merge",
      { subresource: "status" },
    );
  });
  const baselineSeconds = (performance.now() - b0) / 1000;

  // The operator: started once the objects exist; timed from process start until every status is settled.
  const createSeconds = await create(ns, true);
  const metricsPort = await freePort();
  const probePort = await freePort();
  const started = performance.now();
  const op = spawn(
    process.execPath,
    [
      join(root, "src", "main.ts"),
      `--namespaces=${ns}`,
      "--leader-elect",
      `--leader-election-namespace=${ns}`,
    ],
    {
      env: {
        ...process.env,
        KUBECONFIG: cp.kubeconfig,
        MXOPS_METRICS_BIND_ADDRESS: `127.0.0.1:${metricsPort}`,
        MXOPS_HEALTH_PROBE_BIND_ADDRESS: `127.0.0.1:${probePort}`,
        MXOPS_WEBHOOK_PORT: "0",
        MXOPS_LOG_LEVEL: "warn",
      },
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  let readySeconds = 0;
  for (;;) {
    if (
      !readySeconds &&
      (await fetch(`http://127.0.0.1:${probePort}/readyz`).then(
        (r) => r.ok,
        () => false,
      ))
    )
      readySeconds = (performance.now() - started) / 1000;
    const list = await client.list<
      KubeObject & {
        status?: { observedGeneration?: number; conditions?: { type: string; status: string }[] };
      }
    >(MENDIX_APPS, { namespace: ns });
    const settled = list.items.filter(
      (a) =>
        a.status?.observedGeneration === a.metadata.generation &&
        a.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
    ).length;
    if (settled === N) break;
    await sleep(250);
  }
  const operatorSeconds = (performance.now() - started) / 1000;
  const writesAtSettle = await metric(metricsPort, "rest_client_requests_total", writes);
  const mendixApp = (l: string) => l.includes('controller="mendixapp"');
  const reconcilesAtSettle = await metric(metricsPort, "controller_runtime_reconcile_total", mendixApp);
  await sleep(60_000);
  const steadyWrites = (await metric(metricsPort, "rest_client_requests_total", writes)) - writesAtSettle;
  const steadyReconciles =
    (await metric(metricsPort, "controller_runtime_reconcile_total", mendixApp)) - reconcilesAtSettle;
  Object.assign(result, {
    createSeconds: Number(createSeconds.toFixed(1)),
    baselineStatusWriteSeconds: Number(baselineSeconds.toFixed(2)),
    baselineCreateSeconds: Number(baselineCreate.toFixed(1)),
    operatorStartToReadySeconds: Number(readySeconds.toFixed(2)),
    operatorStartToSettledSeconds: Number(operatorSeconds.toFixed(2)),
    ratioOperatorToBaseline: Number((operatorSeconds / baselineSeconds).toFixed(2)),
    operatorWritesToSettle: writesAtSettle,
    operatorWritesPerApp: Number((writesAtSettle / N).toFixed(2)),
    steadyStateWritesPerMinute: steadyWrites,
    steadyStateReconcilesPerMinute: steadyReconciles,
    rssMB: Math.round((await metric(metricsPort, "process_resident_memory_bytes")) / 2 ** 20),
    heapUsedMB: Math.round((await metric(metricsPort, "nodejs_heap_size_used_bytes")) / 2 ** 20),
  });
  op.kill("SIGTERM");
  await new Promise((r) => op.once("exit", r));
} finally {
  await cp.stop();
}
mkdirSync(join(root, "bench", "results"), { recursive: true });
const file = join(root, "bench", "results", `convergence-${N}.json`);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
console.log(JSON.stringify(result, null, 2));
