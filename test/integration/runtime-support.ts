// Pieces shared by the runtime's integration tests: kubeconfigs, a test CRD, metric readers.
import { KubeConfig } from "@kubernetes/client-node";
import type { Registry } from "prom-client";
import type { KubeObject, ResourceType } from "../../src/runtime/client.ts";
import { createLogger } from "../../src/runtime/log.ts";

export const CONFIGMAPS: ResourceType = {
  group: "",
  version: "v1",
  plural: "configmaps",
  kind: "ConfigMap",
  namespaced: true,
};
export const GADGETS: ResourceType = {
  group: "runtime.mxops.dev",
  version: "v1",
  plural: "gadgets",
  kind: "Gadget",
  namespaced: true,
};

export interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

export interface Gadget extends KubeObject {
  spec: { size: number };
  status?: { observedGeneration?: number; conditions?: import("../../src/runtime/status.ts").Condition[] };
}

export const gadgetCrd = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.runtime.mxops.dev
spec:
  group: runtime.mxops.dev
  scope: Namespaced
  names: { plural: gadgets, singular: gadget, kind: Gadget }
  versions:
    - name: v1
      served: true
      storage: true
      subresources: { status: {} }
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: { type: integer }
            status:
              type: object
              x-kubernetes-preserve-unknown-fields: true
`;

export function loadKubeConfig(file: string, server?: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  if (!server) return kc;
  const moved = new KubeConfig();
  moved.loadFromOptions({
    clusters: kc.clusters.map((c) => ({ ...c, server })),
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.currentContext,
  });
  return moved;
}

/** Logs at warn and above to stderr, so a failing test shows what the runtime saw. */
export const testLog = createLogger({ level: process.env.MXOPS_TEST_LOG_LEVEL ?? "warn" });

/** Sum of a counter's values whose labels pass `filter`. */
export async function counterSum(
  registry: Registry,
  name: string,
  filter: (labels: Record<string, string | number>) => boolean = () => true,
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values
    .filter((v) => filter(v.labels as Record<string, string | number>))
    .reduce((n, v) => n + v.value, 0);
}

export const isWrite = (labels: Record<string, string | number>) =>
  ["POST", "PUT", "PATCH", "DELETE"].includes(String(labels.method));
