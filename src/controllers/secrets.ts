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
 * `check`'s verdict on Secret `namespace/name`, read first from the API server's watch cache: what a
 * controller's informer would hold, without an etcd read for every reconcile and without caching Secrets here.
 * A copy that fails the check (missing, a key missing) may only be behind a Secret written a moment ago
 * (`kubectl apply` of a Secret and its app together): that verdict is given on a read from etcd instead.
 */
export async function checkSecretFromCache<V extends { ok: boolean }>(
  client: KubeClient,
  namespace: string,
  name: string,
  check: (data: SecretData | undefined) => V,
): Promise<V> {
  const cached = check(decoded(await client.get<Secret>(SECRETS, namespace, name, { resourceVersion: "0" })));
  return cached.ok ? cached : check(await secretData(client, namespace, name));
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
