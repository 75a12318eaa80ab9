// Where usage comes from: the metrics.k8s.io API (metrics-server) for CPU and memory, and a Prometheus HTTP API
// (container metrics and kubelet_volume_stats_*) for CPU, memory and disk. One read per namespace per pass.

import type { KubeClient, KubeObject, ResourceType } from "../runtime/client.ts";
import { withoutCredentials } from "../runtime/url.ts";
import { parseQuantity } from "./quantity.ts";
import type { NamespaceUsage, PodSample, VolumeSample } from "./usage.ts";

export interface UsageSource {
  readonly name: string;
  /** Usage of every pod (and volume, where known) in the namespace; throws when the source cannot answer. */
  read(namespace: string): Promise<NamespaceUsage>;
}

export const POD_METRICS: ResourceType = {
  group: "metrics.k8s.io",
  version: "v1beta1",
  plural: "pods",
  kind: "PodMetrics",
  namespaced: true,
};

interface PodMetrics extends KubeObject {
  timestamp?: string;
  containers?: { name: string; usage: { cpu?: string; memory?: string } }[];
}

/** metrics.k8s.io/v1beta1 PodMetrics through the kube-apiserver: one list per namespace. */
export class MetricsApiSource implements UsageSource {
  readonly name = "metrics-api";
  private readonly client: KubeClient;
  constructor(client: KubeClient) {
    this.client = client;
  }

  async read(namespace: string): Promise<NamespaceUsage> {
    const list = await this.client.list<PodMetrics>(POD_METRICS, { namespace });
    const pods: PodSample[] = list.items.map((m) => ({
      pod: m.metadata.name,
      labels: m.metadata.labels,
      cpuCores: (m.containers ?? []).reduce((n, c) => n + (parseQuantity(c.usage.cpu) ?? 0), 0),
      memoryBytes: (m.containers ?? []).reduce((n, c) => n + (parseQuantity(c.usage.memory) ?? 0), 0),
      timestamp: m.timestamp ? Date.parse(m.timestamp) : Date.now(),
    }));
    return { pods };
  }
}

interface PromVector {
  status: string;
  error?: string;
  data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

/** Instant queries against a Prometheus HTTP API (/api/v1/query). */
export class PrometheusSource implements UsageSource {
  readonly name = "prometheus";
  private readonly url: string;
  private readonly timeoutMs: number;
  /** Basic auth from credentials in --prometheus-url, sent as a header: the URL itself never carries them. */
  private readonly auth: Record<string, string>;
  constructor(url: string, timeoutMs = 10_000) {
    const split = withoutCredentials(url);
    this.url = split.url.replace(/\/$/, "");
    this.auth = split.headers;
    this.timeoutMs = timeoutMs;
  }

  private async query(q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const res = await fetch(`${this.url}/api/v1/query?${new URLSearchParams({ query: q })}`, {
      headers: this.auth,
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const body = (await res.json()) as PromVector;
    if (res.status !== 200 || body.status !== "success" || !body.data) {
      throw new Error(`prometheus query failed (HTTP ${res.status}): ${body.error ?? "no data"}`);
    }
    return body.data.result;
  }

  async read(namespace: string): Promise<NamespaceUsage> {
    const ns = namespace.replace(/["\\]/g, "");
    const [cpu, memory, used, capacity] = await Promise.all([
      this.query(
        `sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="${ns}",container!=""}[5m]))`,
      ),
      this.query(`sum by (pod) (container_memory_working_set_bytes{namespace="${ns}",container!=""})`),
      // max, not sum: a claim mounted on several nodes (ReadWriteMany) is reported by each node's kubelet.
      this.query(`max by (persistentvolumeclaim) (kubelet_volume_stats_used_bytes{namespace="${ns}"})`),
      this.query(`max by (persistentvolumeclaim) (kubelet_volume_stats_capacity_bytes{namespace="${ns}"})`),
    ]);
    const pods = new Map<string, PodSample>();
    const pod = (name: string, ts: number) => {
      let p = pods.get(name);
      if (!p) {
        p = { pod: name, timestamp: ts };
        pods.set(name, p);
      }
      return p;
    };
    for (const r of cpu) if (r.metric.pod) pod(r.metric.pod, r.value[0] * 1000).cpuCores = Number(r.value[1]);
    for (const r of memory)
      if (r.metric.pod) pod(r.metric.pod, r.value[0] * 1000).memoryBytes = Number(r.value[1]);
    const caps = new Map(capacity.map((r) => [r.metric.persistentvolumeclaim, Number(r.value[1])]));
    const volumes: VolumeSample[] = used
      .filter((r) => r.metric.persistentvolumeclaim && caps.has(r.metric.persistentvolumeclaim))
      .map((r) => ({
        claim: r.metric.persistentvolumeclaim ?? "",
        usedBytes: Number(r.value[1]),
        capacityBytes: caps.get(r.metric.persistentvolumeclaim) ?? 0,
        timestamp: r.value[0] * 1000,
      }));
    return { pods: [...pods.values()], volumes };
  }
}

/** CPU and memory from one source, disk from another (metrics-server has no disk). */
export class CombinedSource implements UsageSource {
  readonly name: string;
  private readonly pods: UsageSource;
  private readonly disk: UsageSource;
  constructor(pods: UsageSource, disk: UsageSource) {
    this.pods = pods;
    this.disk = disk;
    this.name = `${pods.name}+${disk.name}`;
  }
  /**
   * One source down must not blank the other's rules: without the pod source CPU and memory have no data (Unknown)
   * and without the disk source disk has none, while the other's are evaluated as usual. Throws only when neither
   * answered.
   */
  async read(namespace: string): Promise<NamespaceUsage> {
    const [p, d] = await Promise.allSettled([this.pods.read(namespace), this.disk.read(namespace)]);
    if (p.status === "rejected" && d.status === "rejected") throw p.reason;
    const errors = [
      ...(p.status === "rejected" ? [`${this.pods.name}: ${(p.reason as Error).message}`] : []),
      ...(d.status === "rejected" ? [`${this.disk.name}: ${(d.reason as Error).message}`] : []),
    ];
    return {
      pods: p.status === "fulfilled" ? p.value.pods : [],
      volumes: d.status === "fulfilled" ? d.value.volumes : undefined,
      ...(errors.length ? { errors } : {}),
    };
  }
}
