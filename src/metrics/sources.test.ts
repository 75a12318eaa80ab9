import { describe, expect, it } from "vitest";
import { CombinedSource, type UsageSource } from "./sources.ts";
import type { NamespaceUsage } from "./usage.ts";

const pod = { pod: "crm-7d9f8-abcde", cpuCores: 0.2, memoryBytes: 1e8, timestamp: 1 };
const volume = { claim: "crm-files", usedBytes: 5, capacityBytes: 10, timestamp: 1 };
const source = (name: string, answer: () => NamespaceUsage): UsageSource => ({
  name,
  read: async () => answer(),
});
const down = (name: string, message: string): UsageSource => ({
  name,
  read: async () => {
    throw new Error(message);
  },
});

describe("CombinedSource", () => {
  it("keeps the other source's data when one is down, and says which failed", async () => {
    const pods = source("metrics-api", () => ({ pods: [pod] }));
    const disk = source("prometheus", () => ({ pods: [], volumes: [volume] }));
    expect(await new CombinedSource(pods, disk).read("apps")).toEqual({ pods: [pod], volumes: [volume] });
    // Prometheus down: CPU and memory as usual, disk without data.
    expect(await new CombinedSource(pods, down("prometheus", "connection refused")).read("apps")).toEqual({
      pods: [pod],
      volumes: undefined,
      errors: ["prometheus: connection refused"],
    });
    // metrics-server down: disk as usual, no pod data.
    expect(await new CombinedSource(down("metrics-api", "503"), disk).read("apps")).toEqual({
      pods: [],
      volumes: [volume],
      errors: ["metrics-api: 503"],
    });
  });

  it("fails when neither source answers", async () => {
    await expect(
      new CombinedSource(down("metrics-api", "503"), down("prometheus", "refused")).read("apps"),
    ).rejects.toThrow("503");
  });
});
