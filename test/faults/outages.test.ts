// Cases b and c: the control plane fails under a running operator. kube-apiserver stopped and started, etcd
// stopped and started, and etcd compacted past the operator's watches while it is cut off. The same operator
// process (same pid, never exited) must recover by itself and converge, missing no change.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ControlPlane, freePort, installCrds, startControlPlane } from "../controlplane/controlplane.ts";
import { type FreezableProxy, startProxy } from "../controlplane/proxy.ts";
import {
  ApiReader,
  canary,
  condition,
  eventually,
  FAST,
  k,
  killAllOperators,
  kubeconfigFor,
  MX,
  type MxObject,
  metricSum,
  type OperatorProcess,
  report,
  root,
  scanForLeaks,
  scrape,
  sleep,
  startOperator,
} from "./support.ts";

const NS = "outage";
const BATCH = 5;
const OUTAGE_MS = FAST ? 4000 : 15_000;
/** The full suite stops the processes gracefully (SIGTERM, up to 10 s); the fast subset crashes them. */
const STOP = FAST ? { graceMs: 0 } : { graceMs: 10_000 };
const licenseKey = canary("license-key");

function appDocs(names: string[]): string {
  return names
    .flatMap((app) => [
      `apiVersion: v1\nkind: Secret\nmetadata: {name: ${app}-license, namespace: ${NS}}\nstringData: {LICENSE_ID: 8a9b0c1d-2e3f-4a5b-8c7d-9e0f1a2b3c4d, LICENSE_KEY: "${licenseKey}"}`,
      `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ${app}, namespace: ${NS}}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: ${app}}}\n  template:\n    metadata: {labels: {app: ${app}}}\n    spec: {containers: [{name: mendix, image: "mendix/runtime-base:latest", resources: {limits: {cpu: "1", memory: 1Gi}}}]}`,
      `apiVersion: mxops.dev/v1alpha1\nkind: MendixApp\nmetadata: {name: ${app}, namespace: ${NS}, labels: {tier: outage}}\nspec:\n  hosting: OnPremises\n  technicalContacts: [{name: alice}]\n  workloadRef: {kind: Deployment, name: ${app}}\n  license: {secretRef: {name: ${app}-license}, expiresAt: "2031-01-31"}`,
    ])
    .join("\n---\n");
}

describe("the control plane fails under a running operator", () => {
  let cp: ControlPlane;
  let api: ApiReader;
  let proxy: FreezableProxy;
  let op: OperatorProcess;
  let metricsPort: number;
  let probePort: number;
  const pid = () => op.pid;
  let firstPid = 0;

  const kubectl = () => k(cp.kubeconfig);
  const apps = async () => await api.list<MxObject>(`${MX}/namespaces/${NS}/mendixapps`);
  const allReady = async (names: string[]) => {
    const objs = await apps();
    return names.every(
      (n) =>
        condition(
          objs.find((o) => o.metadata.name === n),
          "Ready",
        )?.status === "True",
    );
  };
  /** Applies until the API server takes it (it may still be recovering). */
  const applyEventually = async (docs: string, what: string) =>
    await eventually(async () => ((await kubectl()(["apply", "-f", "-"], docs)) ? true : undefined), {
      what,
      timeoutMs: 90_000,
      intervalMs: 1000,
    });
  const readyz = async () => {
    const res = await fetch(`http://127.0.0.1:${probePort}/readyz`);
    return res.status;
  };
  const sameProcess = () => {
    expect(op.alive(), `the operator exited: ${op.stderr.join("")}`).toBe(true);
    expect(pid()).toBe(firstPid);
  };

  beforeAll(async () => {
    cp = await startControlPlane();
    await installCrds(cp.kubeconfig);
    api = new ApiReader(cp.kubeconfig);
    proxy = await startProxy("127.0.0.1", Number(new URL(cp.server).port));
    await kubectl()(["apply", "-f", join(root, "test", "fixtures", "podmetrics-crd.yaml")]);
    await kubectl()(
      ["apply", "-f", "-"],
      `apiVersion: v1
kind: Namespace
metadata: {name: ${NS}}
---
apiVersion: mxops.dev/v1alpha1
kind: TechnicalContact
metadata: {name: alice, namespace: ${NS}}
spec: {displayName: Alice, email: alice@example.com, mxid: alice@example.com}
---
apiVersion: mxops.dev/v1alpha1
kind: TechnicalContact
metadata: {name: bob, namespace: ${NS}}
spec: {displayName: Bob, email: bob@example.com}
---
apiVersion: mxops.dev/v1alpha1
kind: AlertPolicy
metadata: {name: outage, namespace: ${NS}}
spec:
  appSelector: {matchLabels: {tier: outage}}
  rules: [{name: cpu, metric: CPU, for: 0s}]
`,
    );
    await kubectl()(["apply", "-f", "-"], appDocs(["base-1", "base-2"]));
    metricsPort = await freePort();
    probePort = await freePort();
    // Through a proxy the compaction case can freeze; otherwise it forwards every byte untouched.
    const viaProxy = kubeconfigFor(
      cp.kubeconfig,
      `https://127.0.0.1:${proxy.port}`,
      join(cp.dir, "operator-via-proxy.kubeconfig"),
    );
    op = startOperator("outages", viaProxy, [`--namespaces=${NS}`], {
      MXOPS_METRICS_BIND_ADDRESS: `127.0.0.1:${metricsPort}`,
      MXOPS_HEALTH_PROBE_BIND_ADDRESS: `127.0.0.1:${probePort}`,
      MXOPS_EVALUATION_INTERVAL: "1s",
    });
    firstPid = op.pid;
    await op.waitForLog("controllers started", (l) => l.msg === "controllers started");
    await eventually(async () => ((await allReady(["base-1", "base-2"])) ? true : undefined), {
      what: "the first apps Ready",
    });
  });

  afterAll(async () => {
    await killAllOperators();
    await proxy?.close();
    api?.close();
    await cp?.stop();
  });

  /**
   * Creates a batch of apps, stops `component` while the operator reconciles them, starts it again after
   * OUTAGE_MS, creates another batch; every app must turn Ready in the same operator process.
   */
  const outage = async (
    component: "apiserver" | "etcd",
    stop: () => Promise<void>,
    start: () => Promise<void>,
    whileDown: () => Promise<Record<string, unknown>> = async () => ({}),
  ) => {
    const prefix = component === "apiserver" ? "api" : "etcd";
    const title = component === "apiserver" ? "the API server" : "etcd";
    const during = Array.from({ length: BATCH }, (_, i) => `${prefix}-during-${i + 1}`);
    const after = Array.from({ length: BATCH }, (_, i) => `${prefix}-after-${i + 1}`);
    const errorsBefore = metricSum(await scrape(metricsPort), "controller_runtime_reconcile_errors_total");
    await kubectl()(["apply", "-f", "-"], appDocs(during)); // the operator is reconciling these...
    const stopping = Date.now();
    await stop(); // ...when the component goes away
    const down = Date.now();
    await sleep(OUTAGE_MS);
    sameProcess();
    const observedWhileDown = await whileDown();
    await start();
    const up = Date.now();
    await applyEventually(
      appDocs(after),
      component === "apiserver"
        ? "the apps created after the outage accepted"
        : "the apps created after the etcd outage accepted",
    );
    await eventually(async () => ((await allReady([...during, ...after])) ? true : undefined), {
      what: `every app Ready after ${title} came back`,
      timeoutMs: 120_000,
    });
    const recoveredMs = Date.now() - up;
    sameProcess();
    expect(await readyz()).toBe(200);
    const metrics = await scrape(metricsPort);
    return {
      metrics,
      figures: {
        stop: STOP.graceMs ? "SIGTERM, graceful (SIGKILL after 10 s)" : "killed, no grace period",
        stopMs: down - stopping,
        downMs: OUTAGE_MS,
        unavailableMs: up - stopping,
        appsCreatedJustBefore: BATCH,
        appsCreatedAfter: BATCH,
        allReadyMsAfterRestart: recoveredMs,
        operatorPidUnchanged: pid() === firstPid,
        operatorRestarts: 0,
        ...observedWhileDown,
        reconcileErrorsDuringOutage:
          metricSum(metrics, "controller_runtime_reconcile_errors_total") - errorsBefore,
      },
    };
  };

  it(`recovers from a kube-apiserver stopped for ${OUTAGE_MS / 1000}s mid-run, in the same process`, async () => {
    const { metrics, figures } = await outage(
      "apiserver",
      () => cp.stopApiServer(STOP),
      () => cp.startApiServer(),
      async () => ({ readyzWhileDown: await readyz() }),
    );
    report("b-apiserver-etcd-outage", {
      apiserver: {
        ...figures,
        watchRestartsByError: metricSum(metrics, "mxops_informer_watch_restarts_total", { reason: "error" }),
      },
    });
  });

  it(`recovers from etcd stopped for ${OUTAGE_MS / 1000}s mid-run, in the same process`, async () => {
    const { figures } = await outage(
      "etcd",
      () => cp.stopEtcd(STOP),
      () => cp.startEtcd(),
    );
    report("b-apiserver-etcd-outage", { etcd: figures });
  });

  it("relists after etcd is compacted past its watches and misses none of the changes made meanwhile", async () => {
    const added = ["gone-new-1", "gone-new-2", "gone-new-3"];
    const listsBefore = metricSum(await scrape(metricsPort), "mxops_informer_lists_total");
    const goneBefore = metricSum(await scrape(metricsPort), "mxops_informer_watch_restarts_total", {
      reason: "gone",
    });
    proxy.freeze(); // the operator is cut off: its watches go silent, its requests hang
    const frozenAt = Date.now();
    await kubectl()(["apply", "-f", "-"], appDocs(added));
    await kubectl()([
      "patch",
      "mxapp",
      "base-1",
      "-n",
      NS,
      "--type=merge",
      "-p",
      '{"spec":{"state":"Stopped"}}',
    ]);
    await kubectl()(["delete", "mxapp", "base-2", "-n", NS, "--wait=false"]);
    await kubectl()([
      "patch",
      "mxapp",
      "api-after-1",
      "-n",
      NS,
      "--type=merge",
      "-p",
      '{"spec":{"technicalContacts":[{"name":"bob"}]}}',
    ]);
    const compactedAt = await cp.compactEtcd();
    // A restarted API server's watch cache starts at the current revision: it cannot serve the old ones either.
    await cp.stopApiServer(STOP);
    await cp.startApiServer();
    proxy.thaw();
    const thawedAt = Date.now();

    await eventually(
      async () => {
        const objs = await apps();
        const get = (n: string) => objs.find((o) => o.metadata.name === n);
        const replicas = (
          await api.get<{ spec: { replicas: number } }>(`/apis/apps/v1/namespaces/${NS}/deployments/base-1`)
        )?.spec.replicas;
        const ok =
          (await allReady(added)) &&
          replicas === 0 &&
          get("base-2") === undefined &&
          // Handed to bob, who has no MxID: its license, activated before, stays, and the status says so.
          (condition(get("api-after-1"), "Licensed")?.message ?? "").includes(
            'TechnicalContact "bob" has no MxID',
          );
        return ok ? true : undefined;
      },
      { what: `every change made while compacted (revision ${compactedAt}) reconciled`, timeoutMs: 120_000 },
    );
    const convergedMs = Date.now() - thawedAt;
    sameProcess();
    const metrics = await scrape(metricsPort);
    const gone = metricSum(metrics, "mxops_informer_watch_restarts_total", { reason: "gone" }) - goneBefore;
    const lists = metricSum(metrics, "mxops_informer_lists_total") - listsBefore;
    report("c-compaction", {
      cutOffMs: thawedAt - frozenAt,
      compactedAtRevision: compactedAt,
      changesWhileCutOff: { created: added.length, stopped: 1, deleted: 1, contactChanged: 1 },
      watchRestartsGone: gone,
      relists: lists,
      convergedMsAfterReconnect: convergedMs,
      operatorPidUnchanged: pid() === firstPid,
    });
    expect(gone).toBeGreaterThanOrEqual(1);
    expect(lists).toBeGreaterThanOrEqual(1);
    // The app stopped while compacted remembers the replicas it had.
    const stopped = (await apps()).find((o) => o.metadata.name === "base-1");
    expect((stopped?.status?.workload as { rememberedReplicas?: number })?.rememberedReplicas).toBe(2);
  });

  it("leaks no planted license key into logs, Events or statuses", async () => {
    const scan = await scanForLeaks(api);
    report("g-leak-scan-outages", { ...scan, hits: scan.hits.length });
    expect(scan.hits).toEqual([]);
    expect(scan.logLines).toBeGreaterThan(10);
  });
});
