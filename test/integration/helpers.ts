// Shared pieces of integration tests: the run's kubeconfig, a namespace per test, kubectl.
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { inject } from "vitest";
import { kubectl, writeUserKubeconfig } from "../controlplane/controlplane.ts";

export { KubectlError, kubectl } from "../controlplane/controlplane.ts";

export function adminKubeconfig(): string {
  return inject("kubeconfig");
}

/** Creates a fresh namespace named after the test; returns its name. */
export async function newNamespace(prefix = "t"): Promise<string> {
  const name = `${prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .slice(0, 40)}-${randomBytes(3).toString("hex")}`;
  await kubectl(adminKubeconfig(), ["create", "namespace", name]);
  return name;
}

/** Polls until `check` returns a value other than undefined, or fails with the last error seen. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  { timeoutMs = 20_000, intervalMs = 100, what = "condition" } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      lastError = e;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`${what} not reached within ${timeoutMs} ms${lastError ? `: ${String(lastError)}` : ""}`);
}

let userDir: string | undefined;

/** A kubeconfig acting as `user` in `groups`: a client certificate on the local control plane. */
export function userKubeconfig(user: string, groups: string[] = []): string {
  userDir ??= mkdtempSync(join(inject("scratchDir"), "users-"));
  return writeUserKubeconfig(inject("userAuth"), userDir, user, groups);
}

/** TechnicalContact carol, with email and a signed webhook to `webhookUrl` (its Secret included), as YAML. */
export function contactYaml(ns: string, webhookUrl: string) {
  return `
apiVersion: v1
kind: Secret
metadata: {name: carol-webhook, namespace: ${ns}}
stringData: {secret: whsec_c2lnbmluZy1rZXk=}
---
apiVersion: mxops.dev/v1alpha1
kind: TechnicalContact
metadata: {name: carol, namespace: ${ns}}
spec:
  displayName: Carol Smit
  email: carol@example.com
  mxid: carol.smit@example.com
  channels:
    email: {enabled: true}
    webhook: {url: "${webhookUrl}/hooks/carol", secretRef: {name: carol-webhook}}
`;
}
