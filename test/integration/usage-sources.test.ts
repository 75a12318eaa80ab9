// The Prometheus source against a server speaking Prometheus' /api/v1/query wire format.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { workloadShape } from "../../src/controllers/alert-policy.ts";
import { PrometheusSource } from "../../src/metrics/sources.ts";
import { aggregateUsage } from "../../src/metrics/usage.ts";
import { type HttpReceiver, startHttpReceiver } from "../support/http-receiver.ts";

describe("PrometheusSource", () => {
  let prom: HttpReceiver;
  const t = 1_764_240_000;
  const vector = (result: unknown[]) =>
    JSON.stringify({ status: "success", data: { resultType: "vector", result } });

  beforeAll(async () => {
    prom = await startHttpReceiver((r) => {
      const q = new URL(r.path, "http://p").searchParams.get("query") ?? "";
      const body = q.includes("container_cpu_usage_seconds_total")
        ? vector([
            { metric: { pod: "portal-0" }, value: [t, "0.6"] },
            { metric: { pod: "portal-1" }, value: [t, "0.2"] },
            { metric: { pod: "other-7d9f8b6c5d-x2k4p" }, value: [t, "3"] },
          ])
        : q.includes("container_memory_working_set_bytes")
          ? vector([
              { metric: { pod: "portal-0" }, value: [t, String(2 ** 29)] },
              { metric: { pod: "portal-1" }, value: [t, String(2 ** 29)] },
            ])
          : q.includes("kubelet_volume_stats_used_bytes")
            ? vector([{ metric: { persistentvolumeclaim: "data-portal-0" }, value: [t, "30"] }])
            : vector([{ metric: { persistentvolumeclaim: "data-portal-0" }, value: [t, "120"] }]);
      return { status: 200, headers: { "content-type": "application/json" }, body };
    });
  });
  afterAll(async () => prom?.close());

  it("reads CPU, memory and volume stats of a namespace and aggregates them for a StatefulSet", async () => {
    const usage = await new PrometheusSource(prom.url).read("apps");
    expect(prom.received.map((r) => new URL(r.path, "http://p").pathname)).toEqual(
      Array(4).fill("/api/v1/query"),
    );
    const shape = workloadShape("StatefulSet", {
      metadata: { name: "portal" },
      spec: {
        selector: { matchLabels: { app: "portal" } },
        template: { spec: { containers: [{ resources: { limits: { cpu: "500m", memory: "1Gi" } } }] } },
        volumeClaimTemplates: [{ metadata: { name: "data" } }],
      },
    });
    const app = aggregateUsage(shape, usage);
    expect(app.pods).toBe(2);
    expect(app.cpuCores).toBeCloseTo(0.8);
    expect(app.cpuRatio).toBeCloseTo(0.8);
    expect(app.memoryRatio).toBeCloseTo(0.5);
    expect(app.volumes).toEqual([
      { volume: "data-portal-0", usedBytes: 30, capacityBytes: 120, ratio: 0.25 },
    ]);
    expect(app.sampledAt).toBe(t * 1000);
  });

  it("sends credentials in the URL as basic auth, and no error repeats them", async () => {
    const before = prom.received.length;
    const withAuth = prom.url.replace("http://", "http://reader:s3cr%40t@");
    const usage = await new PrometheusSource(withAuth).read("apps");
    expect(usage).toBeDefined();
    const sent = prom.received.slice(before);
    expect(sent).toHaveLength(4);
    for (const r of sent)
      expect(r.headers.authorization).toBe(`Basic ${Buffer.from("reader:s3cr@t").toString("base64")}`);
    const unreachable = new PrometheusSource("http://reader:s3cr%40t@127.0.0.1:1");
    const err = await unreachable.read("apps").then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(`${err?.message} ${String((err as Error & { cause?: unknown })?.cause)}`).not.toMatch(/s3cr/);
  });
});
