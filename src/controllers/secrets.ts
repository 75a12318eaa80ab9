// Reading single Secret values at the moment they are needed (never cached, never logged).
import type { KubeClient, KubeObject, ResourceType } from "../runtime/client.ts";

export const SECRETS: ResourceType = {
  group: "",
  version: "v1",
  plural: "secrets",
  kind: "Secret",
  namespaced: true,
};

interface Secret extends KubeObject {
  data?: Record<string, string>;
}

/** The decoded value of `key` in Secret `namespace/name`, or undefined when the Secret or key is missing. */
export async function secretValue(
  client: KubeClient,
  namespace: string,
  name: string,
  key: string,
): Promise<string | undefined> {
  const secret = await client.get<Secret>(SECRETS, namespace, name);
  const encoded = secret?.data?.[key];
  return encoded === undefined ? undefined : Buffer.from(encoded, "base64").toString("utf8");
}
