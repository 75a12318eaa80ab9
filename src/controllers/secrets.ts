// Reading single Secret values at the moment they are needed (never cached here, never logged).
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

type SecretData = Record<string, string>;

const decoded = (secret: Secret | undefined): SecretData | undefined =>
  secret
    ? Object.fromEntries(
        Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
      )
    : undefined;

/** The decoded data of Secret `namespace/name`, or undefined when it does not exist. */
export async function secretData(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<SecretData | undefined> {
  return decoded(await client.get<Secret>(SECRETS, namespace, name));
}

/**
 * Like `secretData`, read first from the API server's watch cache: what a controller's informer would hold,
 * without an etcd read for every reconcile and without caching Secrets here. When that copy does not pass
 * `usable` (missing, or a key missing), it may only be behind a Secret written a moment ago (`kubectl apply`
 * of a Secret and its app together): the verdict then comes from a read from etcd.
 */
export async function secretDataFromCache(
  client: KubeClient,
  namespace: string,
  name: string,
  usable: (data: SecretData | undefined) => boolean,
): Promise<SecretData | undefined> {
  const cached = decoded(await client.get<Secret>(SECRETS, namespace, name, { resourceVersion: "0" }));
  return usable(cached) ? cached : await secretData(client, namespace, name);
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
