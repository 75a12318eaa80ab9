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

/** The decoded data of Secret `namespace/name`, or undefined when it does not exist. */
export async function secretData(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<Record<string, string> | undefined> {
  const secret = await client.get<Secret>(SECRETS, namespace, name);
  if (!secret) return undefined;
  return Object.fromEntries(
    Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
  );
}

/** The decoded value of `key` in Secret `namespace/name`, or undefined when the Secret or key is missing. */
export async function secretValue(
  client: KubeClient,
  namespace: string,
  name: string,
  key: string,
): Promise<string | undefined> {
  return (await secretData(client, namespace, name))?.[key];
}
