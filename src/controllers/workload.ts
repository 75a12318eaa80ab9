// What the operator does to an app's Deployment or StatefulSet: license env by server-side apply with its own
// field manager (so GitOps tools keep every other field), and replicas for start/stop.
import type { KubeClient, KubeObject, ResourceType } from "../runtime/client.ts";

export const DEPLOYMENTS: ResourceType = {
  group: "apps",
  version: "v1",
  plural: "deployments",
  kind: "Deployment",
  namespaced: true,
};
export const STATEFULSETS: ResourceType = {
  group: "apps",
  version: "v1",
  plural: "statefulsets",
  kind: "StatefulSet",
  namespaced: true,
};

export const LICENSE_FIELD_MANAGER = "mxops-license";
export const STATE_FIELD_MANAGER = "mxops-state";

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}

export interface Workload extends KubeObject {
  spec?: {
    replicas?: number;
    template?: { spec?: { containers?: { name: string; env?: EnvVar[] }[] } };
  };
}

interface CachedContainer {
  name: string;
  env?: EnvVar[];
  resources?: { limits?: Record<string, string> };
}
interface WorkloadSource extends KubeObject {
  spec?: {
    replicas?: number;
    ordinals?: { start?: number };
    selector?: unknown;
    template?: {
      metadata?: { labels?: Record<string, string> };
      spec?: {
        containers?: CachedContainer[];
        volumes?: { name: string; persistentVolumeClaim?: unknown }[];
      };
    };
    volumeClaimTemplates?: { metadata?: { name?: string } }[];
  };
}

/**
 * The cached shape of a Deployment or StatefulSet: what the controllers read (license env, replicas, the pod
 * selector, containers' limits, volume claims). Pod specs, status and the rest stay out of memory; every
 * write is a patch or an apply of its own fields, never the cached object sent back.
 */
export function workloadForCache(obj: KubeObject): KubeObject {
  const w = obj as WorkloadSource;
  const pod = w.spec?.template?.spec;
  const shaped: WorkloadSource = {
    apiVersion: w.apiVersion,
    kind: w.kind,
    metadata: w.metadata,
    spec: {
      replicas: w.spec?.replicas,
      ...(w.spec?.ordinals ? { ordinals: { start: w.spec.ordinals.start } } : {}),
      selector: w.spec?.selector,
      template: {
        metadata: { labels: w.spec?.template?.metadata?.labels },
        spec: {
          containers: pod?.containers?.map((c) => ({
            name: c.name,
            env: c.env,
            resources: c.resources?.limits ? { limits: c.resources.limits } : undefined,
          })),
          volumes: pod?.volumes?.filter((v) => v.persistentVolumeClaim),
        },
      },
      volumeClaimTemplates: w.spec?.volumeClaimTemplates?.map((t) => ({
        metadata: { name: t.metadata?.name },
      })),
    },
  };
  return shaped;
}

export function workloadType(kind: "Deployment" | "StatefulSet"): ResourceType {
  return kind === "Deployment" ? DEPLOYMENTS : STATEFULSETS;
}

const LICENSE_VARS = ["LICENSE_ID", "LICENSE_KEY"] as const;

/** Every container reads LICENSE_ID and LICENSE_KEY from the license Secret (never a copied value). */
export function licenseInjected(w: Workload, secretName: string): boolean {
  const containers = w.spec?.template?.spec?.containers ?? [];
  return (
    containers.length > 0 &&
    containers.every((c) =>
      LICENSE_VARS.every((v) => {
        const ref = c.env?.find((e) => e.name === v)?.valueFrom?.secretKeyRef;
        return ref?.name === secretName && ref.key === v;
      }),
    )
  );
}

export function hasLicenseEnv(w: Workload): boolean {
  return (w.spec?.template?.spec?.containers ?? []).some((c) =>
    c.env?.some((e) => LICENSE_VARS.includes(e.name as never)),
  );
}

function applyConfig(rt: ResourceType, w: Workload, spec?: unknown) {
  return {
    apiVersion: `${rt.group}/${rt.version}`,
    kind: rt.kind,
    metadata: { name: w.metadata.name, namespace: w.metadata.namespace },
    ...(spec ? { spec } : {}),
  };
}

/** Server-side apply of just the two env entries per container, owned by mxops-license. */
export async function applyLicenseEnv(
  client: KubeClient,
  rt: ResourceType,
  w: Workload,
  secretName: string,
): Promise<KubeObject> {
  const containers = (w.spec?.template?.spec?.containers ?? []).map((c) => ({
    name: c.name,
    env: LICENSE_VARS.map((v) => ({ name: v, valueFrom: { secretKeyRef: { name: secretName, key: v } } })),
  }));
  return await client.patch(
    rt,
    w.metadata.namespace,
    w.metadata.name,
    applyConfig(rt, w, { template: { spec: { containers } } }),
    "apply",
    {
      fieldManager: LICENSE_FIELD_MANAGER,
      force: true,
    },
  );
}

/** Applying an empty configuration as mxops-license removes exactly the fields it owned. */
export async function removeLicenseEnv(
  client: KubeClient,
  rt: ResourceType,
  w: Workload,
): Promise<KubeObject> {
  return await client.patch(rt, w.metadata.namespace, w.metadata.name, applyConfig(rt, w), "apply", {
    fieldManager: LICENSE_FIELD_MANAGER,
    force: true,
  });
}

/** Where a stopped workload keeps its replica count: on itself, written in the same patch that scales it to 0. */
export const REPLICAS_BEFORE_STOP = "mxops.dev/replicas-before-stop";

export function replicasBeforeStop(w: Workload): number | undefined {
  const v = w.metadata.annotations?.[REPLICAS_BEFORE_STOP];
  return v && /^\d+$/.test(v) ? Number(v) : undefined;
}

/**
 * Plain updates of replicas (not an apply: giving the field up later must not delete it). Stopping records the
 * count on the workload atomically, so no stale cache or lost status write can forget it.
 */
export async function stopWorkload(
  client: KubeClient,
  rt: ResourceType,
  w: Workload,
): Promise<{ replicas: number; object: KubeObject }> {
  const replicas = w.spec?.replicas ?? 1;
  const object = await client.patch(
    rt,
    w.metadata.namespace,
    w.metadata.name,
    { metadata: { annotations: { [REPLICAS_BEFORE_STOP]: String(replicas) } }, spec: { replicas: 0 } },
    "merge",
    { fieldManager: STATE_FIELD_MANAGER },
  );
  return { replicas, object };
}

/**
 * Ends a stop: the replicas remembered are restored and the note dropped; with `replicas` undefined (the workload
 * already runs again, its owner set replicas), only the note is dropped.
 */
export async function startWorkload(
  client: KubeClient,
  rt: ResourceType,
  w: Workload,
  replicas: number | undefined,
): Promise<KubeObject> {
  return await client.patch(
    rt,
    w.metadata.namespace,
    w.metadata.name,
    {
      metadata: { annotations: { [REPLICAS_BEFORE_STOP]: null } },
      ...(replicas !== undefined ? { spec: { replicas } } : {}),
    },
    "merge",
    { fieldManager: STATE_FIELD_MANAGER },
  );
}
