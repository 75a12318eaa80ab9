// An object the schema should have refused (e.g. written before a CRD update): say why in its status.
import type { z } from "zod";
import type { KubeObject, ResourceType } from "../runtime/client.ts";
import type { Manager } from "../runtime/manager.ts";
import { type Condition, patchStatusIfChanged, setCondition } from "../runtime/status.ts";

export async function reportInvalidSpec(
  manager: Manager,
  rt: ResourceType,
  obj: KubeObject & { status?: { conditions?: Condition[] } },
  error: z.ZodError,
  now: Date,
): Promise<void> {
  const generation = obj.metadata.generation;
  const problems = error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
  manager.log.warn(
    { kind: rt.kind, namespace: obj.metadata.namespace, name: obj.metadata.name, problems },
    "object cannot be used",
  );
  await patchStatusIfChanged(manager.client, rt, obj, (current) => ({
    ...current,
    observedGeneration: generation,
    conditions: setCondition(
      current?.conditions,
      {
        type: "Ready",
        status: "False",
        reason: "InvalidSpec",
        message: problems.slice(0, 2048),
        observedGeneration: generation,
      },
      now,
    ),
  }));
}
