import { describe, expect, it } from "vitest";
import { parseQuantity } from "./quantity.ts";
import { aggregateUsage, mountsClaim, type PodSample, type WorkloadShape } from "./usage.ts";

describe("parseQuantity", () => {
  it.each([
    ["250m", 0.25],
    ["1", 1],
    ["1.5", 1.5],
    ["123456789n", 0.123456789],
    ["128Mi", 128 * 2 ** 20],
    ["1Gi", 2 ** 30],
    ["1k", 1000],
    ["1e3", 1000],
  ])("%s = %d", (q, n) => {
    expect(parseQuantity(q)).toBeCloseTo(n, 9);
  });
  it("rejects nonsense", () => {
    expect(parseQuantity("1 Gi")).toBeUndefined();
    expect(parseQuantity("abc")).toBeUndefined();
  });
});

describe("aggregateUsage", () => {
  const deploy: WorkloadShape = {
    kind: "Deployment",
    name: "crm",
    matchLabels: { app: "crm" },
    cpuLimitCores: 2,
    memoryLimitBytes: 1000,
    claims: ["crm-data"],
  };
  it("matches the selector's expressions as Kubernetes does (an overlapping worker excluded)", () => {
    const pods: PodSample[] = [
      { pod: "crm-1", labels: { app: "crm" }, cpuCores: 1, memoryBytes: 500, timestamp: 1 },
      {
        pod: "worker-1",
        labels: { app: "crm", component: "worker" },
        cpuCores: 2,
        memoryBytes: 900,
        timestamp: 1,
      },
    ];
    const notWorker: WorkloadShape = {
      ...deploy,
      matchExpressions: [{ key: "component", operator: "DoesNotExist" }],
    };
    expect(aggregateUsage(notWorker, { pods })).toMatchObject({ pods: 1, cpuCores: 1 });
    const expressionsOnly: WorkloadShape = {
      ...deploy,
      matchLabels: {},
      matchExpressions: [{ key: "app", operator: "In", values: ["crm"] }],
    };
    expect(aggregateUsage(expressionsOnly, { pods })).toMatchObject({ pods: 2, cpuCores: 3 });
  });
  it("averages each ratio over the pods with a value, never taking a missing one as 0", () => {
    const u = aggregateUsage(deploy, {
      pods: [
        { pod: "crm-1", labels: { app: "crm" }, cpuCores: 1, memoryBytes: 900, timestamp: 1 },
        { pod: "crm-2", labels: { app: "crm" }, memoryBytes: 900, timestamp: 1 }, // too young for a rate
        { pod: "crm-0", labels: { app: "crm" }, cpuCores: 1, timestamp: 1 }, // gone, still in the rate window
      ],
    });
    expect(u).toMatchObject({ pods: 3, cpuCores: 2, cpuRatio: 0.5, memoryRatio: 0.9 });
    expect(
      aggregateUsage(deploy, { pods: [{ pod: "crm-1", labels: { app: "crm" }, timestamp: 1 }] }),
    ).toEqual({
      pods: 1,
      volumes: [],
      sampledAt: 1,
    });
  });
  it("says which mounted claims the disk source left out, so they are Unknown", () => {
    const twoClaims: WorkloadShape = { ...deploy, claims: ["crm-data", "crm-files"] };
    const volumes = [{ claim: "crm-data", usedBytes: 1, capacityBytes: 2, timestamp: 1 }];
    expect(aggregateUsage(twoClaims, { pods: [], volumes }).volumesWithoutData).toEqual(["crm-files"]);
    // No disk source at all: nothing to say per claim.
    expect(aggregateUsage(twoClaims, { pods: [] }).volumesWithoutData).toBeUndefined();
  });
  it("sums the workload's pods as ratios of their limits", () => {
    const u = aggregateUsage(deploy, {
      pods: [
        { pod: "crm-1", labels: { app: "crm" }, cpuCores: 1, memoryBytes: 500, timestamp: 10 },
        { pod: "crm-2", labels: { app: "crm" }, cpuCores: 2, memoryBytes: 700, timestamp: 20 },
        { pod: "other", labels: { app: "other" }, cpuCores: 9, memoryBytes: 9, timestamp: 5 },
      ],
      volumes: [
        { claim: "crm-data", usedBytes: 80, capacityBytes: 100, timestamp: 30 },
        { claim: "unrelated", usedBytes: 1, capacityBytes: 2, timestamp: 1 },
      ],
    });
    expect(u).toEqual({
      pods: 2,
      cpuCores: 3,
      cpuRatio: 0.75,
      memoryRatio: 0.6,
      volumes: [{ volume: "crm-data", usedBytes: 80, capacityBytes: 100, ratio: 0.8 }],
      sampledAt: 10,
    });
  });
  it("picks pods carrying every pair of a multi-label selector", () => {
    const canary: WorkloadShape = { ...deploy, matchLabels: { app: "crm", track: "canary" } };
    const u = aggregateUsage(canary, {
      pods: [
        { pod: "crm-1", labels: { app: "crm", track: "stable" }, cpuCores: 1, memoryBytes: 1, timestamp: 1 },
        { pod: "crm-2", labels: { app: "crm", track: "canary" }, cpuCores: 2, memoryBytes: 1, timestamp: 1 },
        { pod: "web-1", labels: { app: "web", track: "canary" }, cpuCores: 4, memoryBytes: 1, timestamp: 1 },
      ],
    });
    expect([u.pods, u.cpuCores]).toEqual([1, 2]);
  });
  it("matches a Deployment's pods by name when the source has no labels, not a Job's or DaemonSet's", () => {
    const pods: PodSample[] = [
      { pod: "crm-5d9f8b6c5d-x2k4p", cpuCores: 1, memoryBytes: 1, timestamp: 1 },
      { pod: "crm-migrate-x7k2p", cpuCores: 4, memoryBytes: 1, timestamp: 1 }, // Job crm-migrate
      { pod: "crm-agent-q8z4n", cpuCores: 4, memoryBytes: 1, timestamp: 1 }, // DaemonSet crm-agent
    ];
    expect(aggregateUsage({ ...deploy, matchLabels: {} }, { pods })).toMatchObject({ pods: 1, cpuCores: 1 });
  });
  it("matches a long-named Deployment's pods, whose generated names the API server cut to 58 + 5", () => {
    const name = "customer-relationship-management-production-europe"; // 50 characters
    const generated = (base: string, suffix = "x2k4p") => base.slice(0, 58) + suffix;
    const pods: PodSample[] = [
      { pod: generated(`${name}-5d9f8b6c5d-`), cpuCores: 1, memoryBytes: 1, timestamp: 1 },
      { pod: generated(`${name}-other-5d9f8b6c5d-`), cpuCores: 4, memoryBytes: 1, timestamp: 1 },
    ];
    expect(pods[0]?.pod).toHaveLength(63);
    expect(pods[0]?.pod).not.toContain("-x2k4p"); // the dash before the suffix was cut
    expect(aggregateUsage({ ...deploy, name, matchLabels: {} }, { pods })).toMatchObject({
      pods: 1,
      cpuCores: 1,
    });
    // A name of 58 or more: only the name's own first 58 characters are left.
    const longer = `${name}-blue-green-x`; // 63 characters
    const cut = [
      { pod: generated(`${longer}-5d9f8b6c5d-`, "q8z4n"), cpuCores: 2, memoryBytes: 1, timestamp: 1 },
    ];
    expect(aggregateUsage({ ...deploy, name: longer, matchLabels: {} }, { pods: cut })).toMatchObject({
      pods: 1,
      cpuCores: 2,
    });
  });
  it("matches pods and claims by name when the source has no labels (StatefulSet)", () => {
    const sts: WorkloadShape = {
      kind: "StatefulSet",
      name: "portal",
      matchLabels: {},
      cpuLimitCores: 1,
      claims: [],
      claimTemplates: ["data"],
    };
    const u = aggregateUsage(sts, {
      pods: [
        { pod: "portal-0", cpuCores: 0.5, memoryBytes: 1, timestamp: 1 },
        { pod: "portal-db-0", cpuCores: 5, memoryBytes: 1, timestamp: 1 },
      ],
      volumes: [{ claim: "data-portal-0", usedBytes: 1, capacityBytes: 4, timestamp: 1 }],
    });
    expect(u.cpuRatio).toBe(0.5);
    expect(u.volumes.map((v) => [v.volume, v.ratio])).toEqual([["data-portal-0", 0.25]]);
  });
  it("watches a StatefulSet's ordinary claims too, and knows which claims it mounts now", () => {
    const sts: WorkloadShape = {
      kind: "StatefulSet",
      name: "portal",
      matchLabels: {},
      claims: ["shared-files"],
      claimTemplates: ["data"],
      replicas: 2,
    };
    const u = aggregateUsage(sts, {
      pods: [],
      volumes: [
        { claim: "data-portal-0", usedBytes: 1, capacityBytes: 4, timestamp: 1 },
        { claim: "shared-files", usedBytes: 3, capacityBytes: 4, timestamp: 1 },
      ],
    });
    expect(u.volumes.map((v) => [v.volume, v.ratio])).toEqual([
      ["data-portal-0", 0.25],
      ["shared-files", 0.75],
    ]);
    // Left out by the disk source: Unknown, as a Deployment's claims are.
    expect(aggregateUsage(sts, { pods: [], volumes: [] }).volumesWithoutData).toEqual(["shared-files"]);
    expect(mountsClaim(sts, "data-portal-1")).toBe(true);
    expect(mountsClaim(sts, "data-portal-2")).toBe(false); // scaled down from 3
    expect(mountsClaim(sts, "shared-files")).toBe(true);
    expect(mountsClaim({ ...deploy, claims: ["crm-data-v2"] }, "crm-data")).toBe(false); // moved to a new claim
    // Ordinals from spec.ordinals.start: replicas 2 from 5 are 5 and 6.
    expect(mountsClaim({ ...sts, ordinalsStart: 5 }, "data-portal-6")).toBe(true);
    expect(mountsClaim({ ...sts, ordinalsStart: 5 }, "data-portal-1")).toBe(false);
  });
  it("has no ratios without pods or limits (Unknown, not zero)", () => {
    expect(aggregateUsage(deploy, { pods: [] })).toEqual({ pods: 0, volumes: [] });
    const u = aggregateUsage(
      { ...deploy, cpuLimitCores: undefined },
      { pods: [{ pod: "x", labels: { app: "crm" }, cpuCores: 1, memoryBytes: 1, timestamp: 1 }] },
    );
    expect(u.cpuRatio).toBeUndefined();
  });
});
