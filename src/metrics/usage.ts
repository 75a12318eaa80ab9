// Usage of an app's pods, aggregated from per-pod samples: CPU and memory as ratios of limits, disk per volume.
import type { AlertPolicySpec } from "../api/alert-policy.ts";
import { selects } from "../domain/alerts.ts";

type LabelSelector = NonNullable<AlertPolicySpec["appSelector"]>;

export interface PodSample {
  pod: string;
  labels?: Record<string, string>;
  /** Undefined when the source has no value for the pod (never taken as 0: no data is Unknown). */
  cpuCores?: number;
  memoryBytes?: number;
  timestamp: number;
}

export interface VolumeSample {
  /** PersistentVolumeClaim name. */
  claim: string;
  usedBytes: number;
  capacityBytes: number;
  timestamp: number;
}

export interface NamespaceUsage {
  pods: PodSample[];
  volumes?: VolumeSample[];
  /** What a source that could not answer said, when the other one did (see CombinedSource). */
  errors?: string[];
}

export interface WorkloadShape {
  kind: "Deployment" | "StatefulSet";
  name: string;
  matchLabels: Record<string, string>;
  /** The selector's expressions (In, NotIn, Exists, DoesNotExist), matched as Kubernetes does. */
  matchExpressions?: LabelSelector["matchExpressions"];
  /** Sums over the pod template's containers; undefined when a container has no limit. */
  cpuLimitCores?: number;
  memoryLimitBytes?: number;
  /** Names of the claims its pods mount (the pod template's persistentVolumeClaim volumes, either kind). */
  claims: string[];
  /** A StatefulSet's volumeClaimTemplates: claims `<template>-<statefulset>-<ordinal>`, one per replica. */
  claimTemplates?: string[];
  /** A StatefulSet's replicas and first ordinal (spec.ordinals.start): which ordinals' claims are mounted. */
  replicas?: number;
  ordinalsStart?: number;
}

export interface AppUsage {
  pods: number;
  cpuCores?: number;
  cpuRatio?: number;
  memoryRatio?: number;
  volumes: { volume: string; usedBytes: number; capacityBytes: number; ratio: number }[];
  /** Volumes the workload mounts that the disk source answered for without them (Unknown, never left out). */
  volumesWithoutData?: string[];
  /** Oldest sample used (ms). */
  sampledAt?: number;
}

type PodIndex = Map<string, PodSample[]>;

/** Pods by each key `keysOf` gives them, built once per sample set (so N apps over N pods cost O(N), not N x N). */
function indexed(
  cache: WeakMap<NamespaceUsage, PodIndex>,
  ns: NamespaceUsage,
  keysOf: (p: PodSample) => Iterable<string>,
): PodIndex {
  let index = cache.get(ns);
  if (!index) {
    index = new Map();
    for (const p of ns.pods)
      for (const key of keysOf(p)) {
        const list = index.get(key);
        if (list) list.push(p);
        else index.set(key, [p]);
      }
    cache.set(ns, index);
  }
  return index;
}

/** Kubernetes' safe alphabet of generated names (pod-template-hash, the random suffix): no vowels, no 0, 1, 3. */
const SAFE_CHAR = "[bcdfghjklmnpqrstvwxz2456789]";
const SAFE = new RegExp(`^${SAFE_CHAR}*$`);
const TRAILING_SAFE = new RegExp(`${SAFE_CHAR}*$`);
const DEPLOYMENT_POD = new RegExp(`^(.+)-${SAFE_CHAR}{1,10}-${SAFE_CHAR}{5}$`);
/**
 * For sources that only know pod names (Prometheus): pods by the workload that would have named them, as the
 * controllers name pods (`<deployment>-<hash>-<5>`, `<statefulset>-<ordinal>`).
 */
const byOwnerName = new WeakMap<NamespaceUsage, PodIndex>();
function ownerKeys(p: PodSample): Set<string> {
  const owners = new Set<string>();
  if (p.labels) return owners;
  // The ReplicaSet's pod-template-hash and the pod's suffix use Kubernetes' safe alphabet (no vowels, no 0, 1,
  // 3): a Job's or DaemonSet's pod (`crm-migrate-x7k2p`) is not taken for Deployment crm's.
  const deployment = DEPLOYMENT_POD.exec(p.pod);
  if (deployment?.[1]) owners.add(`Deployment/${deployment[1]}`);
  const statefulSet = /^(.+)-\d+$/.exec(p.pod);
  if (statefulSet?.[1]) owners.add(`StatefulSet/${statefulSet[1]}`);
  return owners;
}

/** For sources with pod labels (metrics.k8s.io): pods by each label pair. */
const byLabel = new WeakMap<NamespaceUsage, PodIndex>();
const labelKey = (k: string, v: string) => `${k}\u0000${v}`;
const labelKeys = (p: PodSample) => Object.entries(p.labels ?? {}).map(([k, v]) => labelKey(k, v));

function podsOf(w: WorkloadShape, ns: NamespaceUsage): PodSample[] {
  const selector = Object.entries(w.matchLabels);
  const expressions = w.matchExpressions ?? [];
  let byLabels: PodSample[] = [];
  if (selector.length || expressions.length) {
    // The pods carrying the selector's rarest pair (with expressions only: those an In names, or every labelled pod),
    // then the whole selector, expressions included.
    const index = indexed(byLabel, ns, labelKeys);
    const within = expressions.find((e) => e.operator === "In");
    const candidates = selector.length
      ? selector
          .map(([k, v]) => index.get(labelKey(k, v)) ?? [])
          .reduce((a, b) => (b.length < a.length ? b : a))
      : within
        ? (within.values ?? []).flatMap((v) => index.get(labelKey(within.key, v)) ?? [])
        : ns.pods.filter((p) => p.labels);
    byLabels = candidates.filter((p) => p.labels && selects(w, p.labels));
  }
  return [
    ...byLabels,
    ...(indexed(byOwnerName, ns, ownerKeys).get(`${w.kind}/${w.name}`) ?? []),
    ...(w.kind === "Deployment" ? truncatedPodsOf(w.name, ns) : []),
  ];
}

/**
 * The key a cut generated name is indexed by (see truncatedPodsOf): its first 58 characters without the hash
 * characters and the dash that end them, i.e. the Deployment's name (or its first 57 or 58 characters).
 */
const cutKey = (first58: string) => first58.replace(TRAILING_SAFE, "").replace(/-$/, "");
const byCutName = new WeakMap<NamespaceUsage, PodIndex>();
/**
 * A long-named Deployment's pods: the API server cuts a generated name's base (`<deployment>-<hash>-`) to 58
 * characters before the 5 random ones, so the dash before them, and part of the hash, may be gone. Pods of
 * that full length whose first 58 characters are the Deployment's name, a dash and hash characters; found
 * through an index of such pods (one pass per sample set), not a scan per app.
 */
function truncatedPodsOf(name: string, ns: NamespaceUsage): PodSample[] {
  const base = `${name}-`;
  if (base.length + 11 <= 58) return []; // even a 10-character hash and its dash fit: never cut
  const candidates = indexed(byCutName, ns, (p) =>
    !p.labels && p.pod.length === 63 ? [cutKey(p.pod.slice(0, 58))] : [],
  ).get(cutKey(base.slice(0, 58)));
  return (candidates ?? []).filter(
    (p) =>
      (base.length >= 58
        ? p.pod.startsWith(base.slice(0, 58))
        : p.pod.startsWith(base) && SAFE.test(p.pod.slice(base.length, 58))) && SAFE.test(p.pod.slice(58)),
  );
}

function volumeOf(w: WorkloadShape, claim: string): string | undefined {
  if (w.claims.includes(claim)) return claim;
  for (const c of w.claimTemplates ?? []) {
    if (claim.startsWith(`${c}-${w.name}-`) && /^\d+$/.test(claim.slice(c.length + w.name.length + 2)))
      return claim;
  }
  return undefined;
}

/**
 * Whether the workload mounts `claim` now: one of its claims, or a StatefulSet's claim of a replica it runs
 * (a claim left behind by a scale-down, or by moving to another claim, is not its volume any more).
 */
export function mountsClaim(w: WorkloadShape, claim: string): boolean {
  if (w.claims.includes(claim)) return true;
  if (volumeOf(w, claim) === undefined) return false;
  const ordinal = Number(claim.slice(claim.lastIndexOf("-") + 1));
  const start = w.ordinalsStart ?? 0;
  return w.replicas === undefined || (ordinal >= start && ordinal < start + w.replicas);
}

export function aggregateUsage(w: WorkloadShape, ns: NamespaceUsage): AppUsage {
  const pods = podsOf(w, ns);
  const times = pods.map((p) => p.timestamp);
  const usage: AppUsage = { pods: pods.length, volumes: [] };
  // Over the pods the source has a value for: a pod missing from one query (too young for a rate, gone but
  // still in a rate window) is not a pod at 0.
  const withCpu = pods.filter((p) => p.cpuCores !== undefined);
  if (withCpu.length) {
    usage.cpuCores = withCpu.reduce((n, p) => n + (p.cpuCores ?? 0), 0);
    if (w.cpuLimitCores) usage.cpuRatio = usage.cpuCores / (w.cpuLimitCores * withCpu.length);
  }
  const withMemory = pods.filter((p) => p.memoryBytes !== undefined);
  if (withMemory.length && w.memoryLimitBytes)
    usage.memoryRatio =
      withMemory.reduce((n, p) => n + (p.memoryBytes ?? 0), 0) / (w.memoryLimitBytes * withMemory.length);
  const reported = new Set<string>();
  for (const v of ns.volumes ?? []) {
    const volume = volumeOf(w, v.claim);
    if (!volume || v.capacityBytes <= 0) continue;
    reported.add(v.claim);
    usage.volumes.push({
      volume,
      usedBytes: v.usedBytes,
      capacityBytes: v.capacityBytes,
      ratio: v.usedBytes / v.capacityBytes,
    });
    times.push(v.timestamp);
  }
  // Claims mounted by name are known: one the disk source answered without is Unknown, not left out (a
  // StatefulSet's claims per replica are known only as the source names them).
  if (ns.volumes) {
    const missing = w.claims.filter((c) => !reported.has(c));
    if (missing.length) usage.volumesWithoutData = missing;
  }
  if (times.length) usage.sampledAt = Math.min(...times);
  return usage;
}
