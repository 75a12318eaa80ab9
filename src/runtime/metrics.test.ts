import { request } from "node:http";
import { Gauge, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { appMetrics } from "../controllers/app-metrics.ts";
import { closeServer, serveMetrics } from "./http.ts";
import { CHUNK, metricsText, recordGauges } from "./metrics.ts";

function fleet(registry: Registry, n: number) {
  const metrics = appMetrics(registry);
  for (let i = 0; i < n; i++)
    metrics.set({
      namespace: "apps",
      name: `app-${i}`,
      hosting: "OnPremises",
      contacts: 1,
      state: "Active",
      expiresAt: "2030-01-01",
      daysRemaining: 1000,
    });
}

async function get(
  port: number,
  host = "127.0.0.1",
): Promise<{ status: number; headers: Record<string, unknown>; chunks: number; body: string }> {
  return await new Promise((resolve, reject) => {
    request({ host, port, path: "/metrics" }, (res) => {
      let body = "";
      let chunks = 0;
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        chunks++;
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, chunks, body }));
      res.on("error", reject);
    })
      .on("error", reject)
      .end();
  });
}

describe("metrics exposition", () => {
  it("renders record gauges in chunks of about CHUNK characters, which add up to the whole text", () => {
    const records = Array.from({ length: 5000 }, (_, i) => ({ name: `app-${i}`, value: i }));
    const families = ["a", "b"].map((f) => ({
      name: `mxops_test_${f}`,
      help: `family ${f}`,
      series: (r: { value: number }, emit: (extra: string, value: number) => void) => emit("", r.value),
    }));
    const chunks = [...recordGauges(families, records, (r) => `app="${r.name}"`)];
    expect(chunks.length).toBeGreaterThan(2);
    for (const c of chunks) expect(c.length).toBeLessThan(CHUNK + 200); // a chunk ends at the line that fills it
    const lines = chunks.join("").split("\n");
    expect(lines[0]).toBe("# HELP mxops_test_a family a");
    expect(lines).toContain('mxops_test_a{app="app-4999"} 4999');
    expect(lines).toContain('mxops_test_b{app="app-0"} 0');
    expect(lines.filter((l) => l.startsWith("mxops_test_"))).toHaveLength(10_000);
  });

  it("serves /metrics as it renders it, the same text as metricsText, and a 500 when collecting fails", async () => {
    const registry = new Registry();
    new Gauge({ name: "mxops_test_up", help: "a registry metric", registers: [registry] }).set(1);
    fleet(registry, 3000);
    const { server, port } = await serveMetrics("127.0.0.1:0", registry);
    try {
      const res = await get(port);
      expect(res.status).toBe(200);
      expect(res.headers["transfer-encoding"]).toBe("chunked");
      expect(res.chunks).toBeGreaterThan(1);
      expect(res.body).toBe(await metricsText(registry));
      expect(res.body).toContain("mxops_test_up 1\n");
      expect(res.body).toContain('mxops_app_technical_contacts{namespace="apps",app="app-2999"} 1\n');

      new Gauge({
        name: "mxops_test_broken",
        help: "a metric whose collection fails",
        registers: [registry],
        collect() {
          throw new Error("no value");
        },
      });
      const failed = await get(port);
      expect(failed.status).toBe(500);
      expect(failed.body).toContain("collecting metrics failed: no value");
    } finally {
      await closeServer(server);
    }
  });

  it("listens on IPv6 and IPv4 when the address names only a port, as kubebuilder's :8080 does", async () => {
    const registry = new Registry();
    new Gauge({ name: "mxops_test_up", help: "a registry metric", registers: [registry] }).set(1);
    const { server, port } = await serveMetrics(":0", registry);
    try {
      expect((await get(port, "127.0.0.1")).body).toContain("mxops_test_up 1\n");
      expect((await get(port, "::1")).body).toContain("mxops_test_up 1\n");
    } finally {
      await closeServer(server);
    }
  });
});
