// What the benchmarks share: their command-line arguments, a bounded-concurrency loop, the built operator.
import { execFileSync, spawn } from "node:child_process";
import { createWriteStream, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { parse } from "yaml";
import { FINALIZER } from "../src/controllers/mendix-app.ts";
import { ALERT_POLICIES, MENDIX_APPS, TECHNICAL_CONTACTS } from "../src/controllers/resources.ts";
import { applyLicenseEnv, DEPLOYMENTS, type Workload } from "../src/controllers/workload.ts";
import { resolveContacts } from "../src/domain/contacts.ts";
import { decideLicense } from "../src/domain/license.ts";
import { KubeClient, type KubeObject } from "../src/runtime/client.ts";
import type { EventRecorder } from "../src/runtime/events.ts";
import type { Informer } from "../src/runtime/informer.ts";

const argv = process.argv.slice(2);

/** The value after `--name`, or `dflt`. */
export function arg(name: string, dflt: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? (argv[i + 1] ?? dflt) : dflt;
}

export function flag(name: string): boolean {
  return argv.includes(`--${name}`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` over `items` with at most `width` at a time. */
export async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

/** Builds the operator and returns its entry point: benchmarks run it as shipped (the bundle), not the sources. */
export function builtOperator(root: string): string {
  execFileSync("npm", ["run", "build"], { cwd: root, stdio: "ignore" });
  return join(root, "dist", "mxops.mjs");
}

/**
 * The NODE_OPTIONS the shipped Deployment gives the operator (deploy/base/deployment.yaml), so that a
 * benchmark's process has the heap settings it has in a cluster. `--node-options "..."` overrides them.
 */
export function deployedNodeOptions(root: string): string {
  const override = arg("node-options", "\0");
  if (override !== "\0") return override;
  const deployment = parse(readFileSync(join(root, "deploy", "base", "deployment.yaml"), "utf8")) as {
    spec: { template: { spec: { containers: { env?: { name: string; value?: string }[] }[] } } };
  };
  const env = deployment.spec.template.spec.containers[0]?.env ?? [];
  return env.find((e) => e.name === "NODE_OPTIONS")?.value ?? "";
}

/** Every sample of a Prometheus text exposition, keyed by `name{labels}`. */
export function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9.e+-]+|NaN|\+Inf)$/.exec(line);
    if (m) out.set(`${m[1]}${m[2] ?? ""}`, Number(m[3]));
  }
  return out;
}

/** The sum of the samples of metric `name` (any labels) whose `name{labels}` key passes `filter`. */
export function sum(
  m: Map<string, number>,
  name: string,
  filter: (key: string) => boolean = () => true,
): number {
  return [...m]
    .filter(([k]) => (k === name || k.startsWith(`${name}{`)) && filter(k))
    .reduce((a, [, v]) => a + v, 0);
}

/** CPU seconds (user + system) of process `pid` by thread name, from /proc (Linux; empty elsewhere). */
export function cpuByThread(pid: number): Record<string, number> {
  const byName: Record<string, number> = {};
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const { name, seconds } = procStat(`/proc/${pid}/task/${tid}/stat`);
      byName[name] = Number(((byName[name] ?? 0) + seconds).toFixed(2));
    }
  } catch {
    return {};
  }
  return byName;
}

/**
 * CPU seconds a process (all its threads) has used so far, from /proc: what its `process_cpu_seconds_total`
 * says, without asking it (a scrape of kube-apiserver's /metrics costs it and kubectl ~0.1 s of CPU).
 */
export function processCpuSeconds(pid: number): number {
  return procStat(`/proc/${pid}/stat`).seconds;
}

function procStat(file: string): { name: string; seconds: number } {
  const stat = readFileSync(file, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of stat(5), i.e. 11 and 12 after the state field; USER_HZ is 100.
  return {
    name: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")),
    seconds: (Number(fields[11]) + Number(fields[12])) / 100,
  };
}

/** The machine a result was measured on. */
export function machine() {
  return { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30) };
}

/** Writes a result to bench/results/`name` and returns its path. */
export function writeResult(root: string, name: string, result: unknown): string {
  mkdirSync(join(root, "bench", "results"), { recursive: true });
  const file = join(root, "bench", "results", name);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  return file;
}

/**
 * A client of the benchmark's control plane, through its admin kubeconfig. The API server names a write's
 * field manager after the user agent, so clients that must show up as different writers (whoever creates
 * the apps, and the operator) get different ones.
 */
export function benchClient(kubeconfig: string, userAgent?: string): KubeClient {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return new KubeClient(kc, { userAgent });
}

/** A license Secret named `license` with a valid LICENSE_ID, as YAML for `kubectl apply -f -`. */
export const licenseSecretYaml = (namespace: string) =>
  `apiVersion: v1\nkind: Secret\nmetadata: {name: license, namespace: ${namespace}}\nstringData: {LICENSE_ID: 3f1c2b8e-7d4a-4e2b-9c61-0a5d8e7f1b23, LICENSE_KEY: bench-placeholder}\n`;

/** Creates `count` TechnicalContacts c0..c(count-1) with an MxID; returns their names. */
export async function createContacts(
  client: KubeClient,
  namespace: string,
  count: number,
): Promise<string[]> {
  const names = Array.from({ length: count }, (_, i) => `c${i}`);
  for (const c of names)
    await client.create(TECHNICAL_CONTACTS, {
      metadata: { name: c, namespace },
      spec: { displayName: c, email: `${c}@example.com`, mxid: `${c}@example.com` },
    } as KubeObject);
  return names;
}

/** A one-replica Deployment `name` running one "mendix" container, as the benchmarks' apps run on. */
export function benchDeployment(namespace: string, name: string, container: Record<string, unknown> = {}) {
  return {
    metadata: { name, namespace },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: "mendix", image: "mendix/runtime-base:latest", ...container }] },
      },
    },
  } as KubeObject;
}

/** An on-premises MendixApp `name` with one contact, on the Deployment of the same name unless told not to. */
export function benchApp(
  namespace: string,
  name: string,
  contact: string,
  opts: { workload?: boolean; license?: boolean; labels?: Record<string, string> } = {},
) {
  return {
    metadata: { name, namespace, ...(opts.labels ? { labels: opts.labels } : {}) },
    spec: {
      hosting: "OnPremises",
      technicalContacts: [{ name: contact }],
      workloadRef: opts.workload === false ? undefined : { kind: "Deployment", name },
      license:
        opts.license === false ? undefined : { secretRef: { name: "license" }, expiresAt: "2030-01-01" },
    },
  } as KubeObject;
}

/** The benchmarks' app names: app-00000, app-00001, ... */
export const appIds = (n: number) => Array.from({ length: n }, (_, i) => `app-${String(i).padStart(5, "0")}`);

/** Apps per AlertPolicy: a team's apps, picked by a label (one policy per app would double the objects). */
const APPS_PER_POLICY = 100;

/** The `group` label of an app: g0 for the first APPS_PER_POLICY apps, g1 for the next, ... */
export const groupOf = (id: string) => `g${Math.floor(Number(id.slice(4)) / APPS_PER_POLICY)}`;

/**
 * Apps `ids` in `namespace`, each on its own Deployment with a 1-core CPU limit (unless `workload` is false),
 * labelled with their group, their contact taken in turn from `contacts`; with workloads, the groups' policies.
 */
export async function createFleet(
  client: KubeClient,
  namespace: string,
  ids: string[],
  contacts: string[],
  workload = true,
): Promise<void> {
  await pool(ids, 16, async (id) => {
    if (workload)
      await client.create(
        DEPLOYMENTS,
        benchDeployment(namespace, id, { resources: { limits: { cpu: "1" } } }),
      );
    const contact = contacts[Number(id.slice(4)) % contacts.length] as string;
    await client.create(
      MENDIX_APPS,
      benchApp(namespace, id, contact, { workload, labels: { group: groupOf(id) } }),
    );
  });
  if (workload)
    for (const g of new Set(ids.map(groupOf))) await client.create(ALERT_POLICIES, benchPolicy(namespace, g));
}

/** The AlertPolicy of a group of apps (by their `group` label): a CPU rule, as a team would set one. */
function benchPolicy(namespace: string, group: string) {
  return {
    metadata: { name: group, namespace },
    spec: {
      appSelector: { matchLabels: { group } },
      rules: [{ name: "cpu", metric: "CPU", warningPercent: 75, criticalPercent: 85, for: "5m" }],
    },
  } as KubeObject;
}

/** The time the benchmarks' hand-written statuses carry in their timestamps. */
export const BENCH_STATUS_TIME = "2026-11-28T00:00:00Z";

/**
 * The status the operator writes for a new bench app (contact c0, a valid license, email off: no outbox
 * record), its messages from the rules that write them; the workload's name is one of the same length as the
 * benchmark's app names, as the status is built once for every app.
 */
export function benchOperatorStatus(workloadName = "app-00000") {
  const at = BENCH_STATUS_TIME;
  const contacts = resolveContacts(["c0"], () => ({ mxid: "mx-c0" }));
  const license = decideLicense({
    hosting: "OnPremises",
    license: { secretRef: { name: "license" }, expiresAt: "2030-01-01" },
    secret: { ok: true },
    primaryContact: { name: "c0", mxid: "mx-c0" },
    remindersSent: [],
    nowMs: Date.now(),
  });
  const condition = (type: string, reason: string, message: string) => ({
    type,
    status: "True",
    reason,
    message,
    lastTransitionTime: at,
    observedGeneration: 1,
  });
  return {
    observedGeneration: 1,
    conditions: [
      condition("ContactAssigned", contacts.condition.reason, contacts.condition.message),
      condition("Licensed", license.reason, license.message),
      condition("Ready", "Reconciled", "contacts found and license active"),
    ],
    contacts: { count: contacts.count, notified: ["c0"], primary: contacts.primary },
    license: {
      state: license.state,
      expiresAt: "2030-01-01",
      daysRemaining: license.daysRemaining,
      renewal: license.renewal,
      expandVia: license.expandVia,
    },
    workload: { kind: "Deployment", name: workloadName, licenseInjected: true },
  };
}

export const OPERATOR_REQUEST_KINDS = ["finalizer", "license", "event", "status"] as const;
export type OperatorRequestKind = (typeof OPERATOR_REQUEST_KINDS)[number];

/**
 * What the operator asks of the API server for a new bench app, for a bare script to make: the finalizer patch,
 * the license env's server-side apply (through the operator's own function), the LicenseActivated Event (through
 * its EventRecorder, not awaited, as the operator sends it) and the status the operator writes. `apps` and
 * `deployments` are informers of `namespace`, as the operator's; `client` should carry the operator's user agent
 * (its field manager).
 */
export function operatorRequests(
  client: KubeClient,
  namespace: string,
  informers: { apps: Informer<KubeObject>; deployments: Informer<KubeObject> },
  events: EventRecorder,
) {
  const status = benchOperatorStatus();
  const requests = {
    finalizer: (id: string) =>
      client.patch<KubeObject>(
        MENDIX_APPS,
        namespace,
        id,
        {
          metadata: {
            finalizers: [FINALIZER],
            resourceVersion: (informers.apps.get(namespace, id) as KubeObject).metadata.resourceVersion,
          },
        },
        "merge",
      ),
    license: (id: string) =>
      applyLicenseEnv(client, DEPLOYMENTS, informers.deployments.get(namespace, id) as Workload, "license"),
    event: (app: KubeObject, id: string) =>
      events.event(
        app,
        "Normal",
        "LicenseActivated",
        "ActivateLicense",
        `LICENSE_ID and LICENSE_KEY of Secret license set on Deployment ${id}`,
      ),
    status: (id: string, resourceVersion: string | undefined) =>
      client.patch(MENDIX_APPS, namespace, id, { metadata: { resourceVersion }, status }, "merge", {
        subresource: "status",
      }),
    /** All of them (or those of `kinds`) for app `id`, one after the other, as the operator's reconcile makes them. */
    async chained(id: string, kinds: readonly OperatorRequestKind[] = OPERATOR_REQUEST_KINDS) {
      const app = kinds.includes("finalizer")
        ? await requests.finalizer(id)
        : (informers.apps.get(namespace, id) as KubeObject);
      if (kinds.includes("license")) await requests.license(id);
      if (kinds.includes("event")) requests.event(app, id);
      if (kinds.includes("status")) await requests.status(id, app.metadata.resourceVersion);
    },
    statusBytes: JSON.stringify(status).length,
  };
  return requests;
}

/**
 * A pprof CPU profile of kube-apiserver over the next `seconds` (`--apiserver-profile`), written to
 * `.tmp/pprof/<name>.pb.gz` under `root` (read with `go tool pprof -top`); resolves when it is written.
 */
export async function apiserverProfile(
  root: string,
  kubeconfig: string,
  seconds: number,
  name: string,
): Promise<void> {
  if (!seconds) return;
  const dir = join(root, ".tmp", "pprof");
  mkdirSync(dir, { recursive: true });
  const child = spawn(
    "kubectl",
    ["--kubeconfig", kubeconfig, "get", "--raw", `/debug/pprof/profile?seconds=${seconds}`],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  child.stdout.pipe(createWriteStream(join(dir, `${name}.pb.gz`)));
  await new Promise((resolve) => child.on("close", resolve));
}
