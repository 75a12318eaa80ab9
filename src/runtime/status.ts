// Status conditions and status writes that happen only when something changed.
import { isConflict, type KubeClient, type KubeObject, type ResourceType } from "./client.ts";
import { isoSeconds } from "./clock.ts";

export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export type ConditionInput = Omit<Condition, "lastTransitionTime">;

/**
 * Returns `conditions` with `input` set. lastTransitionTime moves only when the status changes, so
 * re-applying the same condition (or a new message) never churns it.
 */
export function setCondition(
  conditions: Condition[] | undefined,
  input: ConditionInput,
  now: Date,
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === input.type);
  const existing = i >= 0 ? list[i] : undefined;
  const lastTransitionTime =
    existing && existing.status === input.status ? existing.lastTransitionTime : isoSeconds(now);
  const next: Condition = { ...input, lastTransitionTime };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

export function findCondition(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** Structural equality of JSON values (key order ignored; undefined members treated as absent). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(ao), ...Object.keys(bo)]);
  for (const k of keys) {
    if (ao[k] === undefined && bo[k] === undefined) continue;
    if (!deepEqual(ao[k], bo[k])) return false;
  }
  return true;
}

/** An RFC 7386 JSON merge patch turning `from` into `to` (removed members become null). */
export function mergePatch(from: unknown, to: unknown): unknown {
  if (
    from === null ||
    to === null ||
    typeof from !== "object" ||
    typeof to !== "object" ||
    Array.isArray(from) ||
    Array.isArray(to)
  ) {
    return to === undefined ? null : to;
  }
  const patch: Record<string, unknown> = {};
  const f = from as Record<string, unknown>;
  const t = to as Record<string, unknown>;
  for (const k of new Set([...Object.keys(f), ...Object.keys(t)])) {
    if (t[k] === undefined) {
      if (f[k] !== undefined) patch[k] = null;
    } else if (!deepEqual(f[k], t[k])) {
      patch[k] = mergePatch(f[k], t[k]);
    }
  }
  return patch;
}

/**
 * The object each status write returned, by the copy it was computed from (a cache's object). Weak: an
 * entry lives as long as that copy, i.e. until the watch brings the cache the new version.
 */
const writtenOver = new WeakMap<object, KubeObject>();

/**
 * Writes the status `desired(current)` returns, only when it differs from the current one. Sends a merge
 * patch of just the differences, guarded by the object's resourceVersion; on a conflict re-reads the object
 * and computes again from the fresh status (so fields other writers own, like an outbox, are never rolled
 * back). Returns whether it wrote, and the latest object.
 */
export async function patchStatusIfChanged<T extends KubeObject & { status?: unknown }>(
  client: KubeClient,
  rt: ResourceType,
  obj: T,
  desired: (current: T["status"]) => NonNullable<T["status"]>,
  attempts = 5,
): Promise<{ written: boolean; object: T }> {
  // A cache copy we already wrote over (its watch event not in yet, e.g. a resync right after our write):
  // start from what our write returned, not from the stale copy (which would only earn a 409 and a GET).
  let current = (writtenOver.get(obj) as T | undefined) ?? obj;
  for (let attempt = 1; ; attempt++) {
    const status = desired(current.status);
    if (deepEqual(current.status ?? {}, status)) return { written: false, object: current };
    const patch = {
      metadata: { resourceVersion: current.metadata.resourceVersion },
      status: mergePatch(current.status ?? {}, status),
    };
    try {
      const object = await client.patch<T>(
        rt,
        current.metadata.namespace,
        current.metadata.name,
        patch,
        "merge",
        {
          subresource: "status",
        },
      );
      writtenOver.set(obj, object);
      return { written: true, object };
    } catch (err) {
      if (!isConflict(err) || attempt >= attempts) throw err;
      const fresh = await client.get<T>(rt, current.metadata.namespace, current.metadata.name);
      if (!fresh) throw err;
      current = fresh;
    }
  }
}
