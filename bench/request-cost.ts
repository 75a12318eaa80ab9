// API server and etcd CPU per request of each kind the operator makes, against the status write the
// convergence baselines make: `npm run bench:requests -- [--apps N] [--watch]`. With --watch, informers on
// MendixApps and Deployments receive every change (as the operator's do). Writes bench/results/request-cost*.json.
import { join } from "node:path";
import { MENDIX_APPS } from "../src/controllers/resources.ts";
import { SECRETS } from "../src/controllers/secrets.ts";
import { DEPLOYMENTS } from "../src/controllers/workload.ts";
import type { KubeObject } from "../src/runtime/client.ts";
import { EVENTS as EVENTS_K8S_IO } from "../src/runtime/events.ts";
import { Informer } from "../src/runtime/informer.ts";
import { silentLogger } from "../src/runtime/log.ts";
import { installCrds, kubectl, startControlPlane } from "../test/controlplane/controlplane.ts";
import {
  arg,
  BENCH_STATUS_TIME,
  benchApp,
  benchClient,
  benchDeployment,
  benchOperatorStatus,
  createContacts,
  flag,
  licenseSecretYaml,
  machine,
  pool,
  writeResult,
} from "./support.ts";

const N = Number(arg("apps", "2000"));
const WATCH = flag("watch");
const root = join(import.meta.dirname, "..");

/** core/v1 Events (what this benchmark has measured; the operator writes the events.k8s.io/v1 kind). */
const EVENTS = { ...EVENTS_K8S_IO, group: "", version: "v1" };

const cp = await startControlPlane();
const client = benchClient(cp.kubeconfig);
const rows: Record<string, { apiserverMs: number; etcdMs: number; clientMs: number; seconds: number }> = {};
try {
  await installCrds(cp.kubeconfig);
  const ns = "cost";
  await kubectl(cp.kubeconfig, ["create", "namespace", ns]);
  await kubectl(cp.kubeconfig, ["apply", "-f", "-"], licenseSecretYaml(ns));
  await createContacts(client, ns, 1);
  const ids = Array.from({ length: N }, (_, i) => `app-${String(i).padStart(5, "0")}`);
  const cpuOf = (text: string) =>
    Number(
      text
        .split("\n")
        .find((l) => l.startsWith("process_cpu_seconds_total"))
        ?.split(" ")[1] ?? 0,
    );
  const cpu = async () => [
    cpuOf(await kubectl(cp.kubeconfig, ["get", "--raw", "/metrics"])),
    cpuOf(await (await fetch(`${cp.etcdUrl}/metrics`)).text()),
  ];
  const measure = async (label: string, request: (id: string) => Promise<unknown>, names: string[] = ids) => {
    const [a0 = 0, e0 = 0] = await cpu();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await pool(names, 16, request);
    const seconds = (performance.now() - t0) / 1000;
    const c1 = process.cpuUsage(c0);
    const [a1 = 0, e1 = 0] = await cpu();
    const per = (s: number) => Number(((s * 1000) / N).toFixed(2));
    rows[label] = {
      apiserverMs: per(a1 - a0),
      etcdMs: per(e1 - e0),
      clientMs: per((c1.user + c1.system) / 1e6),
      seconds: Number(seconds.toFixed(1)),
    };
    console.log(label.padEnd(40), JSON.stringify(rows[label]));
  };
  if (WATCH) {
    for (const rt of [MENDIX_APPS, DEPLOYMENTS]) {
      const informer = new Informer<KubeObject>(client, rt, { namespaces: [ns], log: silentLogger() });
      informer.start();
      await informer.waitForSync();
    }
  }
  const env = ["LICENSE_ID", "LICENSE_KEY"].map((v) => ({
    name: v,
    valueFrom: { secretKeyRef: { name: "license", key: v } },
  }));
  await measure("POST deployments", (id) => client.create(DEPLOYMENTS, benchDeployment(ns, id)));
  const app = (name: string) => benchApp(ns, name, "c0");
  await measure("POST mendixapps", (id) => client.create(MENDIX_APPS, app(id)));
  // The baseline's write, on apps as the baseline has them (no finalizer, a two-field status).
  const bare = ids.map((id) => `bare-${id}`);
  await pool(bare, 16, (id) => client.create(MENDIX_APPS, app(id)));
  await measure(
    "PATCH mendixapps/status (baseline's)",
    (id) =>
      client.patch(
        MENDIX_APPS,
        ns,
        id,
        { status: { observedGeneration: 7, license: { state: "Active" } } },
        "merge",
        { subresource: "status" },
      ),
    bare,
  );
  // The operator's requests, in the order a new app gets them.
  await measure("PATCH mendixapps (finalizer)", (id) =>
    client.patch(MENDIX_APPS, ns, id, { metadata: { finalizers: ["mxops.dev/workload-cleanup"] } }, "merge"),
  );
  await measure("GET secrets", () => client.get(SECRETS, ns, "license"));
  // How the operator reads a license Secret since 2026-12-03: from the API server's watch cache.
  await measure("GET secrets (resourceVersion=0, watch cache)", () =>
    client.get(SECRETS, ns, "license", { resourceVersion: "0" }),
  );
  await measure("APPLY deployments (license env)", (id) =>
    client.patch(
      DEPLOYMENTS,
      ns,
      id,
      {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: id, namespace: ns },
        spec: { template: { spec: { containers: [{ name: "mendix", env }] } } },
      },
      "apply",
      { fieldManager: "mxops-license", force: true },
    ),
  );
  const at = BENCH_STATUS_TIME;
  const operatorStatus = benchOperatorStatus();
  await measure("PATCH mendixapps/status (operator's)", (id) =>
    client.patch(
      MENDIX_APPS,
      ns,
      id,
      {
        status: {
          ...operatorStatus,
          notifications: [
            {
              id: `contact-added/${id}/c0/1`,
              kind: "ContactAssigned",
              severity: "Ok",
              title: `You are now the technical contact of ${id}`,
              body: `You are now a technical contact of the Mendix app ${id} (OnPremises, production) in namespace ${ns}. You will receive its license reminders, maintenance notices and alerts.`,
              app: { namespace: ns, name: id, environment: "production" },
              occurredAt: at,
              labels: { contact: "c0" },
              state: "Pending",
              createdAt: at,
            },
          ],
        },
      },
      "merge",
      { subresource: "status" },
    ),
  );
  // The operator's second status write: the record delivered, kept without its text (outbox.ts, settle).
  await measure("PATCH mendixapps/status (operator's second: record Sent)", (id) =>
    client.patch(
      MENDIX_APPS,
      ns,
      id,
      {
        status: {
          notifications: [
            {
              id: `contact-added/${id}/c0/1`,
              kind: "ContactAssigned",
              severity: "Ok",
              title: `You are now the technical contact of ${id}`,
              app: { namespace: ns, name: id, environment: "production" },
              occurredAt: at,
              state: "Sent",
              createdAt: at,
              completedAt: at,
            },
          ],
        },
      },
      "merge",
      { subresource: "status" },
    ),
  );
  await measure("POST events", (id) =>
    client.create(EVENTS, {
      metadata: { name: `${id}.license`, namespace: ns },
      involvedObject: { kind: "MendixApp", name: id, namespace: ns, apiVersion: "mxops.dev/v1alpha1" },
      reason: "LicenseActivated",
      message: "LICENSE_ID and LICENSE_KEY of Secret license set on Deployment",
      type: "Normal",
      source: { component: "mxops" },
      firstTimestamp: at,
      lastTimestamp: at,
      count: 1,
    } as KubeObject),
  );
  // What the status's size costs: on fresh bare apps, the baseline's two fields and the operator's status, in the
  // order A B, then again on new apps B A, so that the machine's drift over the minute falls on both alike. (Until
  // 2026-12-06 a third row priced the status with `license.message`, a copy of the Licensed condition's message
  // the operator no longer writes; the CRD now prunes it.)
  const sizes: [string, Record<string, unknown>][] = [
    ["two fields (the baseline's)", { observedGeneration: 1, license: { state: "Active" } }],
    ["the operator's, email off", operatorStatus],
  ];
  for (const [round, order] of [
    [1, [0, 1]],
    [2, [1, 0]],
  ] as const) {
    for (const i of order) {
      const [what, status] = sizes[i] as (typeof sizes)[number];
      const names = ids.map((id) => `size${round}${i}-${id}`);
      await pool(names, 16, (id) => client.create(MENDIX_APPS, app(id)));
      await measure(
        `PATCH mendixapps/status (${what}, bare apps, ${round})`,
        (id) => client.patch(MENDIX_APPS, ns, id, { status }, "merge", { subresource: "status" }),
        names,
      );
    }
  }
  // The baseline's write again, now on apps as the operator leaves them (finalizer, full status).
  await measure("PATCH mendixapps/status (baseline's, on reconciled apps)", (id) =>
    client.patch(
      MENDIX_APPS,
      ns,
      id,
      { status: { observedGeneration: 8, license: { state: "Active" } } },
      "merge",
      { subresource: "status" },
    ),
  );
} finally {
  await cp.stop();
}
writeResult(root, `request-cost${WATCH ? "-watched" : ""}.json`, {
  benchmark: "request-cost",
  apps: N,
  watched: WATCH,
  machine: machine(),
  command: `npm run bench:requests -- --apps ${N}${WATCH ? " --watch" : ""}`,
  date: new Date().toISOString(),
  perRequest: rows,
});
process.exit(0);
