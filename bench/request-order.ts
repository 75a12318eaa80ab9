// What the control plane spends on the operator's requests made by a bare script, against the convergence
// benchmark's same-writes baseline, in one control plane and alternating (A B A B: this machine's speed drifts
// by a quarter within minutes): `npm run bench:order -- [--apps N] [--steps baseline,chain,baseline,chain]`.
// Steps:
// - baseline: 4 rounds of the two-field status write over N bare apps, watched by one observer (the convergence
//   benchmark's same-writes baseline, whose time the operator's is compared with);
// - chain: for each app in turn, the operator's requests for a new app (finalizer, license env, Event, status),
//   as its reconcile makes them and as `npm run bench -- --operator-requests` does; `chain:finalizer+status`
//   makes only those kinds (in that order);
// - bulk: the same requests, a round of each kind over all apps;
// - split: a round of finalizers over all apps, then per app in turn the rest (license env, Event, status): the
//   order of a reconcile that adds the finalizer and requeues the app behind the others.
// Each step has a fleet of its own, created before the first step. Writes bench/results/request-order-N[-L].json (--label L).
// --apiserver-profile S: a pprof CPU profile of kube-apiserver over S seconds from each step's start (the step
// waits for it), into .tmp/pprof/order-<i>-<step>-N.pb.gz (`go tool pprof -top`); S longer than the longest
// step puts each step's whole CPU in its profile.
import { join } from "node:path";
import { MENDIX_APPS } from "../src/controllers/resources.ts";
import { DEPLOYMENTS } from "../src/controllers/workload.ts";
import type { KubeObject } from "../src/runtime/client.ts";
import { EventRecorder } from "../src/runtime/events.ts";
import { Informer } from "../src/runtime/informer.ts";
import { silentLogger } from "../src/runtime/log.ts";
import { OPERATOR_USER_AGENT } from "../src/runtime/manager.ts";
import { installCrds, kubectl, startControlPlane } from "../test/controlplane/controlplane.ts";
import {
  apiserverProfile,
  appIds,
  arg,
  benchClient,
  createContacts,
  createFleet,
  licenseSecretYaml,
  machine,
  OPERATOR_REQUEST_KINDS,
  type OperatorRequestKind,
  operatorRequests,
  pool,
  processCpuSeconds,
  writeResult,
} from "./support.ts";

const N = Number(arg("apps", "10000"));
const STEPS = arg("steps", "baseline,chain,baseline,chain").split(",");
const CONCURRENCY = 16;
const PROFILE_SECONDS = Number(arg("apiserver-profile", "0"));
const LABEL = arg("label", "");
const root = join(import.meta.dirname, "..");
/** The request kinds of a `chain:a+b` step (all for `chain`), or undefined for another step. */
const chainKinds = (step: string): OperatorRequestKind[] | undefined => {
  if (step === "chain") return [...OPERATOR_REQUEST_KINDS];
  if (!step.startsWith("chain:")) return undefined;
  const kinds = step.slice("chain:".length).split("+");
  for (const k of kinds)
    if (!(OPERATOR_REQUEST_KINDS as readonly string[]).includes(k))
      throw new Error(`--steps: ${step}: unknown request kind ${k} (${OPERATOR_REQUEST_KINDS.join(", ")})`);
  return kinds as OperatorRequestKind[];
};
for (const s of STEPS)
  if (s !== "baseline" && s !== "bulk" && s !== "split" && !chainKinds(s))
    throw new Error(
      `--steps: unknown step ${s} (baseline, chain, chain:finalizer+license+event+status, bulk, split)`,
    );

const ids = appIds(N);
const cp = await startControlPlane();
const rows: Record<string, unknown>[] = [];
try {
  await installCrds(cp.kubeconfig);
  const creator = benchClient(cp.kubeconfig, "bench-creator");
  const namespaceOf = (i: number) => `step-${i}`;
  for (const [i, step] of STEPS.entries()) {
    const ns = namespaceOf(i);
    await kubectl(
      cp.kubeconfig,
      ["apply", "-f", "-"],
      `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}}\n---\n${licenseSecretYaml(ns)}`,
    );
    // The baseline's apps are bare, as the convergence benchmark's (no workload, no policy).
    await createFleet(creator, ns, ids, await createContacts(creator, ns, 50), step !== "baseline");
  }
  const pids = cp.pids();
  if (!pids.apiserver || !pids.etcd)
    throw new Error("needs a control plane of its own (not MXOPS_TEST_KUBECONFIG)");
  for (const [i, step] of STEPS.entries()) {
    const ns = namespaceOf(i);
    const informer = (client: ReturnType<typeof benchClient>, rt: typeof MENDIX_APPS) =>
      new Informer<KubeObject>(client, rt, { namespaces: [ns], log: silentLogger() });
    const asOperator = benchClient(cp.kubeconfig, OPERATOR_USER_AGENT);
    const informers =
      step === "baseline"
        ? [informer(benchClient(cp.kubeconfig, "mxops-bench"), MENDIX_APPS)]
        : [
            informer(benchClient(cp.kubeconfig, "mxops-bench"), MENDIX_APPS),
            informer(asOperator, MENDIX_APPS),
            informer(asOperator, DEPLOYMENTS),
          ];
    for (const i of informers) i.start();
    for (const i of informers) await i.waitForSync();
    const events = new EventRecorder({
      client: asOperator,
      controller: "mxops.dev/operator",
      instance: "bench",
      log: silentLogger(),
    });
    const requests = operatorRequests(
      asOperator,
      ns,
      { apps: informers[1] as Informer<KubeObject>, deployments: informers[2] as Informer<KubeObject> },
      events,
    );
    const api0 = processCpuSeconds(pids.apiserver);
    const etcd0 = processCpuSeconds(pids.etcd);
    const bench0 = process.cpuUsage();
    const profile = apiserverProfile(
      root,
      cp.kubeconfig,
      PROFILE_SECONDS,
      `order-${i + 1}-${step.replace(/[^a-z+]/g, "_")}-${N}`,
    );
    const t0 = performance.now();
    if (step === "baseline") {
      for (let round = 1; round <= 4; round++)
        await pool(ids, CONCURRENCY, (id) =>
          asOperator.patch(
            MENDIX_APPS,
            ns,
            id,
            { status: { observedGeneration: round, license: { state: "Active" } } },
            "merge",
            { subresource: "status" },
          ),
        );
    } else if (step === "split") {
      const withFinalizer = new Map<string, KubeObject>();
      await pool(ids, CONCURRENCY, async (id) => withFinalizer.set(id, await requests.finalizer(id)));
      // The second reconcile reads the app from its cache: wait until the cache has every finalizer.
      const apps = informers[1] as Informer<KubeObject>;
      while (
        ids.some(
          (id) =>
            apps.get(ns, id)?.metadata.resourceVersion !== withFinalizer.get(id)?.metadata.resourceVersion,
        )
      )
        await new Promise((r) => setTimeout(r, 20));
      await pool(ids, CONCURRENCY, (id) => requests.chained(id, ["license", "event", "status"]));
    } else if (chainKinds(step)) {
      const kinds = chainKinds(step);
      await pool(ids, CONCURRENCY, (id) => requests.chained(id, kinds));
    } else {
      const withFinalizer = new Map<string, KubeObject>();
      await pool(ids, CONCURRENCY, async (id) => withFinalizer.set(id, await requests.finalizer(id)));
      await pool(ids, CONCURRENCY, (id) => requests.license(id));
      for (const id of ids) requests.event(withFinalizer.get(id) as KubeObject, id);
      await pool(ids, CONCURRENCY, (id) =>
        requests.status(id, withFinalizer.get(id)?.metadata.resourceVersion),
      );
    }
    await events.flush();
    const seconds = (performance.now() - t0) / 1000;
    const bench = process.cpuUsage(bench0);
    const apiserver = processCpuSeconds(pids.apiserver) - api0;
    const etcd = processCpuSeconds(pids.etcd) - etcd0;
    const row = {
      step,
      seconds: Number(seconds.toFixed(1)),
      cpuSeconds: {
        apiserver: Number(apiserver.toFixed(1)),
        etcd: Number(etcd.toFixed(1)),
        benchmark: Number(((bench.user + bench.system) / 1e6).toFixed(1)),
      },
      controlPlaneMsPerApp: Number((((apiserver + etcd) / N) * 1000).toFixed(2)),
    };
    rows.push(row);
    console.log(JSON.stringify(row));
    for (const i of informers) await i.stop();
    await profile;
  }
} finally {
  await cp.stop();
}
// Each chain or bulk step against the mean of the baselines around it (the nearest one at either end).
const baselines = rows.flatMap((r, i) => (r.step === "baseline" ? [i] : []));
const ratios = rows.flatMap((r, i) => {
  if (r.step === "baseline" || !baselines.length) return [];
  const before = baselines.filter((b) => b < i).at(-1);
  const after = baselines.find((b) => b > i);
  const around = [before, after].filter((b) => b !== undefined).map((b) => rows[b as number]) as typeof rows;
  const mean = (f: (x: Record<string, unknown>) => number) =>
    around.reduce((a, x) => a + f(x), 0) / around.length;
  const time = (x: Record<string, unknown>) => x.seconds as number;
  const cpu = (x: Record<string, unknown>) => x.controlPlaneMsPerApp as number;
  return [
    {
      step: `${r.step} (${i + 1})`,
      timeRatio: Number((time(r) / mean(time)).toFixed(2)),
      controlPlaneCpuRatio: Number((cpu(r) / mean(cpu)).toFixed(2)),
    },
  ];
});
console.log(JSON.stringify(ratios));
const file = writeResult(root, `request-order-${N}${LABEL ? `-${LABEL}` : ""}.json`, {
  benchmark: "request-order",
  apps: N,
  machine: machine(),
  command: `npm run bench:order -- --apps ${N} --steps ${STEPS.join(",")}${PROFILE_SECONDS ? ` --apiserver-profile ${PROFILE_SECONDS}` : ""}${LABEL ? ` --label ${LABEL}` : ""}`,
  date: new Date().toISOString(),
  workers: CONCURRENCY,
  steps: rows,
  ratiosToBaselinesAround: ratios,
});
console.log(`wrote ${file}`);
