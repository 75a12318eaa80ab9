import { describe, expect, it } from "vitest";
import type { KubeObject } from "../runtime/client.ts";
import { workloadShape } from "./alert-policy.ts";
import {
  hasLicenseEnv,
  licenseInjected,
  replicasBeforeStop,
  type Workload,
  workloadForCache,
} from "./workload.ts";

const deployment = {
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "crm", namespace: "n", annotations: { "mxops.dev/replicas-before-stop": "3" } },
  spec: {
    replicas: 0,
    selector: { matchLabels: { app: "crm" } },
    strategy: { type: "RollingUpdate" },
    template: {
      metadata: { labels: { app: "crm" }, annotations: { big: "x".repeat(10_000) } },
      spec: {
        containers: [
          {
            name: "mendix",
            image: "mendix/runtime-base:latest",
            args: ["x".repeat(10_000)],
            env: [
              { name: "LICENSE_ID", valueFrom: { secretKeyRef: { name: "license", key: "LICENSE_ID" } } },
              { name: "LICENSE_KEY", valueFrom: { secretKeyRef: { name: "license", key: "LICENSE_KEY" } } },
            ],
            resources: { limits: { cpu: "2", memory: "4Gi" }, requests: { cpu: "1" } },
          },
        ],
        volumes: [
          { name: "data", persistentVolumeClaim: { claimName: "crm-data" } },
          { name: "tmp", emptyDir: {} },
        ],
      },
    },
  },
  status: { replicas: 0, conditions: [{ type: "Available", status: "True" }] },
} as KubeObject;

describe("workloadForCache", () => {
  it("keeps everything the controllers read and drops the rest", () => {
    const shaped = workloadForCache(deployment);
    const w = deployment as Workload;
    const s = shaped as Workload;
    expect(licenseInjected(s, "license")).toBe(licenseInjected(w, "license"));
    expect(hasLicenseEnv(s)).toBe(hasLicenseEnv(w));
    expect(replicasBeforeStop(s)).toBe(3);
    expect(s.spec?.replicas).toBe(0);
    expect(workloadShape("Deployment", shaped)).toEqual(workloadShape("Deployment", deployment));
    expect(workloadShape("Deployment", shaped)).toMatchObject({ cpuLimitCores: 2, claims: ["crm-data"] });
    expect(JSON.stringify(shaped).length).toBeLessThan(JSON.stringify(deployment).length / 10);
    expect(shaped).not.toHaveProperty("status");
  });
});
