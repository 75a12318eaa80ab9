// Shared pieces of the fault-injection suite: settings, a seeded RNG, operator processes, an API reader, counts.
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { join } from "node:path";
import { inject } from "vitest";
import YAML from "yaml";
import { kubectl, writeUserKubeconfig } from "../controlplane/controlplane.ts";
import { eventually as eventuallyBase } from "../integration/helpers.ts";
import { spawnOperator } from "../integration/operator.ts";

export const root = join(import.meta.dirname, "..", "..");

/** Kill rounds per kill test (20 in `npm run test:faults`, 3 in the fast subset). */
export const ROUNDS = Math.max(1, Number(process.env.MXOPS_FAULT_ROUNDS ?? "3"));
/** The fast subset (npm test): fewer rounds, shorter waits; the full suite keeps the deployed defaults. */
export const FAST = ROUNDS < 10;
/** Mutated manifests the fuzzer sends. */
export const FUZZ_CASES = Math.max(1, Number(process.env.MXOPS_FAULT_FUZZ_CASES ?? "40"));
/** Every random choice of the suite derives from this seed, so a failing run can be replayed. */
export const SEED = Number(process.env.MXOPS_FAULT_SEED ?? "11");
export const PROFILE = process.env.MXOPS_FAULT_PROFILE ?? "custom";
export const REPORT_DIR = join(root, ".tmp", "faults", PROFILE);
export const LOG_DIR = join(REPORT_DIR, "logs");

/**
 * Values planted in Secrets (license keys, the SMTP password, webhook signing keys). They must never show up in
 * a log line, Event, status or notification: the scans look for the common prefix, so any of them counts.
 */
export const CANARY_PREFIX = "MXCANARY";
const runId = randomBytes(4).toString("hex");
const planted = new Set<string>();
export function canary(what: string): string {
  const value = `${CANARY_PREFIX}-${what}-${runId}`;
  planted.add(value);
  return value;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
export function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (min: number, max: number) => min + Math.floor(next() * (max - min + 1)),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T,
    chance: (p: number) => next() < p,
  };
}
export type Rng = ReturnType<typeof rng>;

/** The integration tests' `eventually`, with this suite's longer defaults (30 s, every 250 ms). */
export const eventually = <T>(
  check: () => Promise<T | undefined>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> => eventuallyBase(check, { timeoutMs: 30_000, intervalMs: 250, ...opts });

/** Merges `data` into .tmp/faults/<profile>/<caseId>.json (the counts RELIABILITY.md quotes). */
export function report(caseId: string, data: Record<string, unknown>): void {
  mkdirSync(REPORT_DIR, { recursive: true });
  const file = join(REPORT_DIR, `${caseId}.json`);
  let current: Record<string, unknown> = {};
  try {
    current = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch {
    current = {};
  }
  const next = { ...current, ...data, profile: PROFILE, rounds: ROUNDS, seed: SEED };
  writeFileSync(file, `${JSON.stringify(next, null, 2)}\n`);
}

export const k = (kubeconfig: string) => (args: string[], input?: string) => kubectl(kubeconfig, args, input);

/** The control plane of the suite (global-setup.ts), shared by the files that do not stop or compact it. */
export interface Cluster {
  kubeconfig: string;
  dir: string;
  userKubeconfig(user: string, groups?: string[]): string;
}

export function sharedCluster(): Cluster {
  const dir = inject("faultsScratchDir");
  return {
    kubeconfig: inject("faultsKubeconfig"),
    dir,
    userKubeconfig: (user, groups = []) => writeUserKubeconfig(inject("faultsUserAuth"), dir, user, groups),
  };
}

// ------------------------------------------------------------------------------------------ API reads

interface KubeconfigDoc {
  clusters: { cluster: { server: string; "certificate-authority-data": string } }[];
  users: { user: { "client-certificate-data": string; "client-key-data": string } }[];
}

/**
 * Reads objects straight from the API server with the admin certificate: tests poll often, and a kubectl
 * process per poll would take CPU the operator and the API server need on two cores.
 */
export class ApiReader {
  private readonly server: string;
  private readonly agent: Agent;

  constructor(kubeconfig: string) {
    const doc = YAML.parse(readFileSync(kubeconfig, "utf8")) as KubeconfigDoc;
    const cluster = doc.clusters[0]?.cluster;
    const user = doc.users[0]?.user;
    if (!cluster || !user) throw new Error(`${kubeconfig}: no cluster or user`);
    const b64 = (s: string) => Buffer.from(s, "base64").toString("utf8");
    this.server = cluster.server;
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: 4,
      ca: b64(cluster["certificate-authority-data"]),
      cert: b64(user["client-certificate-data"]),
      key: b64(user["client-key-data"]),
    });
  }

  /** GET `path`; undefined on 404. */
  async get<T>(path: string): Promise<T | undefined> {
    return await new Promise<T | undefined>((resolve, reject) => {
      const req = request(`${this.server}${path}`, { agent: this.agent, timeout: 10_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode === 404) resolve(undefined);
          else if (res.statusCode !== 200) reject(new Error(`GET ${path}: HTTP ${res.statusCode} ${body}`));
          else resolve(JSON.parse(body) as T);
        });
      });
      req.on("timeout", () => req.destroy(new Error(`GET ${path}: timeout`)));
      req.on("error", reject);
      req.end();
    });
  }

  async list<T>(path: string): Promise<T[]> {
    return (await this.get<{ items: T[] }>(path))?.items ?? [];
  }

  close(): void {
    this.agent.destroy();
  }
}

export const MX = "/apis/mxops.dev/v1alpha1";

export interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

export interface OutboxRecord {
  id: string;
  kind: string;
  state: string;
  delivered?: string[];
  failed?: string[];
  message?: string;
}

export interface MxObject {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    deletionTimestamp?: string;
    finalizers?: string[];
  };
  spec: Record<string, unknown>;
  status?: {
    conditions?: Condition[];
    notifications?: OutboxRecord[];
    [key: string]: unknown;
  };
}

export const condition = (o: MxObject | undefined, type: string) =>
  o?.status?.conditions?.find((c) => c.type === type);

export const pendingRecords = (objs: MxObject[]) =>
  objs.flatMap((o) => (o.status?.notifications ?? []).filter((r) => r.state === "Pending"));

// ------------------------------------------------------------------------------------ operator process

/** The run's snapshot of src/ (global-setup.ts), so that src/ edited during a run does not mix revisions. */
function operatorMain(): string {
  try {
    return inject("faultsOperatorMain");
  } catch {
    return join(root, "src", "main.ts");
  }
}

export interface LogLine {
  level: string;
  msg: string;
  time?: string;
  [key: string]: unknown;
}

export interface OperatorProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  /** Raw stdout lines (JSON logs) and stderr chunks so far. */
  stdout: string[];
  stderr: string[];
  /** Resolves with the exit code (null when killed by a signal). */
  exit: Promise<number | null>;
  alive(): boolean;
  logs(): LogLine[];
  waitForLog(what: string, match: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  kill9(): Promise<void>;
  stop(): Promise<number | null>;
}

const everyOperator: OperatorProcess[] = [];
let operatorCount = 0;

/** Every operator process this test file started (the leak scans read all their output). */
export function allOperators(): OperatorProcess[] {
  return everyOperator;
}

function parseLine(l: string): LogLine {
  try {
    return JSON.parse(l) as LogLine;
  } catch {
    return { level: "raw", msg: l };
  }
}

/**
 * Starts src/main.ts as its own process, as users run it: configured by flags and MXOPS_* variables, logs as
 * JSON lines on stdout (kept in memory and copied to .tmp/faults/<profile>/logs/<name>-<n>.log).
 */
export function startOperator(
  name: string,
  kubeconfig: string,
  args: string[],
  env: Record<string, string> = {},
): OperatorProcess {
  mkdirSync(LOG_DIR, { recursive: true });
  const logFile = join(LOG_DIR, `${name}-${++operatorCount}.log`);
  const { child, stdout, stderr, exit } = spawnOperator({
    main: operatorMain(),
    kubeconfig,
    args,
    env: { MXOPS_LOG_LEVEL: "info", ...env },
    onLines: (lines) => appendFileSync(logFile, `${lines.join("\n")}\n`),
    onStderr: (chunk) => appendFileSync(logFile, `[stderr] ${chunk}`),
  });
  const alive = () => child.exitCode === null && child.signalCode === null;
  const op: OperatorProcess = {
    name,
    pid: child.pid ?? 0,
    child,
    stdout,
    stderr,
    exit,
    alive,
    logs: () => stdout.map(parseLine),
    async waitForLog(what, match, timeoutMs = 60_000) {
      return await eventually(
        async () => {
          const found = stdout.map(parseLine).find(match);
          if (found) return found;
          if (!alive())
            throw new Error(
              `operator ${name} exited (${child.exitCode ?? child.signalCode}): ${stderr.join("")}`,
            );
          return undefined;
        },
        { what: `${name}: ${what}`, timeoutMs, intervalMs: 50 },
      );
    },
    async kill9() {
      if (alive()) child.kill("SIGKILL");
      await exit;
    },
    async stop() {
      if (alive()) child.kill("SIGTERM");
      return await exit;
    },
  };
  everyOperator.push(op);
  return op;
}

/** Kills every operator of this file that is still running (afterAll). */
export async function killAllOperators(): Promise<void> {
  await Promise.all(everyOperator.map((op) => op.kill9()));
}

// ---------------------------------------------------------------------------------------------- metrics

/** Sum of the samples of `name` on a Prometheus text page whose labels contain every `labels` pair. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const wanted = Object.entries(labels).every(([key, v]) => line.includes(`${key}="${v}"`));
    if (wanted) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

export async function scrape(port: number): Promise<string> {
  return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

// ------------------------------------------------------------------------------------------- leak scan

export interface LeakScan {
  logLines: number;
  events: number;
  objects: number;
  notifications: number;
  hits: string[];
}

/**
 * Looks for the planted secret values in every line the operators of this file logged, every Event, the
 * status of every mxops object, the workloads (the license key must stay a secretKeyRef) and, when given,
 * the bodies of delivered notifications. Secrets themselves are the only place the values may be.
 */
export async function scanForLeaks(
  api: ApiReader,
  notifications: { where: string; text: string }[] = [],
): Promise<LeakScan> {
  const hits: string[] = [];
  const look = (where: string, text: string) => {
    // The plain values, and each value base64-encoded as it is in a Secret's data (a dumped Secret).
    for (const needle of [CANARY_PREFIX, ...[...planted].map((v) => Buffer.from(v).toString("base64"))]) {
      const at = text.indexOf(needle);
      if (at >= 0) hits.push(`${where}: …${text.slice(Math.max(0, at - 80), at + 60)}…`);
    }
  };
  let logLines = 0;
  for (const op of everyOperator) {
    for (const line of op.stdout) look(`log of ${op.name} (pid ${op.pid})`, line);
    look(`stderr of ${op.name} (pid ${op.pid})`, op.stderr.join(""));
    logLines += op.stdout.length;
  }
  const events = [
    ...(await api.list<unknown>("/apis/events.k8s.io/v1/events")),
    ...(await api.list<unknown>("/api/v1/events")),
  ];
  for (const e of events) look("Event", JSON.stringify(e));
  let objects = 0;
  for (const plural of ["mendixapps", "technicalcontacts", "alertpolicies"]) {
    for (const o of await api.list<MxObject>(`${MX}/${plural}`)) {
      look(`${plural} ${o.metadata.namespace}/${o.metadata.name} status`, JSON.stringify(o.status ?? {}));
      objects++;
    }
  }
  for (const path of ["/apis/apps/v1/deployments", "/apis/apps/v1/statefulsets"]) {
    for (const o of await api.list<{ metadata: { name: string } }>(path)) {
      look(`workload ${o.metadata.name}`, JSON.stringify(o));
      objects++;
    }
  }
  for (const n of notifications) look(n.where, n.text);
  return { logLines, events: events.length, objects, notifications: notifications.length, hits };
}

/** A kubeconfig like `kubeconfig` but talking to `server` (e.g. a proxy in front of the API server). */
export function kubeconfigFor(kubeconfig: string, server: string, file: string): string {
  const doc = YAML.parse(readFileSync(kubeconfig, "utf8")) as KubeconfigDoc;
  for (const c of doc.clusters) c.cluster.server = server;
  writeFileSync(file, YAML.stringify(doc), { mode: 0o600 });
  return file;
}

/** Today plus `days`, as YYYY-MM-DD (UTC): license expiry dates. */
export function dayFromNow(days: number): string {
  return new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);
}
