// A Prometheus HTTP API stand-in (instant queries on /api/v1/query, its wire format) for the operator's
// `--usage-source=prometheus`, used by tests and benchmarks: CPU per pod, one pod per app named as the app's
// Deployment's ReplicaSet would name it. Memory and disk queries get empty vectors.
import { type HttpReceiver, startHttpReceiver } from "./http-receiver.ts";

/** `cpu()` is asked at each query: [app, cores in use] for each app with a pod. */
export function startCpuPrometheus(
  cpu: () => Iterable<readonly [app: string, cores: number | string]>,
): Promise<HttpReceiver> {
  return startHttpReceiver((r) => {
    const q = new URL(r.path, "http://p").searchParams.get("query") ?? "";
    const t = Date.now() / 1000;
    const result = q.includes("container_cpu_usage_seconds_total")
      ? Array.from(cpu(), ([app, cores]) => ({
          metric: { pod: `${app}-5d9f8b6c5d-x2k4p` },
          value: [t, String(cores)],
        }))
      : [];
    return {
      status: 200,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ status: "success", data: { resultType: "vector", result } }),
    };
  });
}
