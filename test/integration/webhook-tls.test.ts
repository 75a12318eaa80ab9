// The webhook serves TLS only, from a certificate directory (cert-manager style) that it reloads on rotation.

import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:tls";
import { afterAll, describe, expect, it } from "vitest";
import { ALERT_POLICIES, MENDIX_APPS, TECHNICAL_CONTACTS } from "../../src/controllers/resources.ts";
import { SECRETS } from "../../src/controllers/secrets.ts";
import type { KubeObject } from "../../src/runtime/client.ts";
import { KubeClient } from "../../src/runtime/client.ts";
import { Informer } from "../../src/runtime/informer.ts";
import {
  createCertificateAuthority,
  loadCertificateAuthority,
  pemCertificates,
} from "../../src/runtime/pki.ts";
import { startWebhook, VALIDATING_WEBHOOKS, type WebhookOptions } from "../../src/webhook/server.ts";
import { adminKubeconfig, eventually } from "./helpers.ts";
import { loadKubeConfig, testLog } from "./runtime-support.ts";

function peerSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, ca, servername: "localhost" }, () => {
      // Verified against `ca` (rejectUnauthorized is on): a serial here means the CA trusts it.
      resolve(socket.getPeerCertificate().serialNumber.toLowerCase());
      socket.end();
    });
    socket.on("error", reject);
  });
}

/** The webhook on a free loopback port for localhost, its caches of this control plane (not started). */
const webhookOn = (client: KubeClient): WebhookOptions => ({
  port: 0,
  host: "127.0.0.1",
  hostNames: ["localhost"],
  adminGroups: [],
  apps: new Informer(client, MENDIX_APPS, { log: testLog }),
  contacts: new Informer(client, TECHNICAL_CONTACTS, { log: testLog }),
  policies: new Informer(client, ALERT_POLICIES, { log: testLog }),
  client,
  log: testLog,
});

describe("webhook TLS", () => {
  const dir = mkdtempSync(join(tmpdir(), "mxops-webhook-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("serves the mounted certificate, refuses plain HTTP, and picks up a rotated certificate", async () => {
    const ca = createCertificateAuthority("rotation-test-ca");
    const write = () => {
      const c = ca.issueServing("localhost", ["localhost"], ["127.0.0.1"]);
      writeFileSync(join(dir, "tls.key"), c.keyPem);
      writeFileSync(join(dir, "tls.crt"), c.certPem);
    };
    write();
    const client = new KubeClient(loadKubeConfig(adminKubeconfig()));
    const webhook = await startWebhook({ ...webhookOn(client), certDir: dir });
    try {
      const first = await peerSerial(webhook.port, ca.certPem);
      await expect(
        fetch(`http://127.0.0.1:${webhook.port}/validate-mxops-dev-v1alpha1-alertpolicy`, {
          method: "POST",
          body: "{}",
        }),
      ).rejects.toThrow();
      write(); // cert-manager renews the Secret; the kubelet updates the mounted files
      const second = await eventually(
        async () => {
          const s = await peerSerial(webhook.port, ca.certPem);
          return s !== first ? s : undefined;
        },
        { what: "the rotated certificate", timeoutMs: 15_000, intervalMs: 500 },
      );
      expect(second).not.toBe(first);
    } finally {
      await webhook.close();
    }
  });

  it("renews a shared certificate that is about to expire: a new CA (the old one still trusted), then the same CA", async () => {
    const client = new KubeClient(loadKubeConfig(adminKubeconfig()));
    const suffix = Math.random().toString(36).slice(2, 8);
    const ref = { namespace: "default", name: `webhook-tls-renewal-${suffix}` };
    const vwc = `renewal-test-${suffix}`;
    type TlsSecret = KubeObject & { data: Record<string, string> };
    const b64 = (v: string) => Buffer.from(v).toString("base64");
    const unb64 = (v = "") => Buffer.from(v, "base64").toString("utf8");
    const serialOf = (pem: string) => new X509Certificate(pem).serialNumber.toLowerCase();
    // What an install of before this change left: a certificate with 14 of its 74 minutes left, no CA key.
    const oldCa = createCertificateAuthority("old-webhook-ca");
    const expiring = oldCa.issueServing("localhost", ["localhost"], ["127.0.0.1"], 0.01);
    await client.create<TlsSecret>(SECRETS, {
      metadata: ref,
      type: "kubernetes.io/tls",
      data: {
        "tls.crt": b64(expiring.certPem),
        "tls.key": b64(expiring.keyPem),
        "ca.crt": b64(oldCa.certPem),
      },
    });
    // A configuration no request matches (failurePolicy Ignore), only to receive the CA bundle.
    await client.create(VALIDATING_WEBHOOKS, {
      metadata: { name: vwc },
      webhooks: [
        {
          name: "renewal.test.mxops.dev",
          clientConfig: { url: "https://127.0.0.1:1/validate", caBundle: b64(oldCa.certPem) },
          rules: [
            {
              apiGroups: ["test.invalid"],
              apiVersions: ["v1"],
              operations: ["CREATE"],
              resources: ["nothings"],
            },
          ],
          sideEffects: "None",
          admissionReviewVersions: ["v1"],
          failurePolicy: "Ignore",
        },
      ],
    } as KubeObject);
    const bundleOf = async () =>
      unb64(
        (
          await client.get<KubeObject & { webhooks: { clientConfig: { caBundle?: string } }[] }>(
            VALIDATING_WEBHOOKS,
            undefined,
            vwc,
          )
        )?.webhooks[0]?.clientConfig.caBundle,
      );
    const webhook = await startWebhook({
      ...webhookOn(client),
      certSecret: ref,
      configurationName: vwc,
      renewCheckMs: 200,
    });
    try {
      // At start: renewed under a new CA whose key is kept; the bundle is the new CA and then the old one.
      const renewed = (await client.get<TlsSecret>(SECRETS, ref.namespace, ref.name))?.data ?? {};
      expect(unb64(renewed["ca.key"])).toContain("PRIVATE KEY");
      const bundle = pemCertificates(unb64(renewed["ca.crt"]));
      expect(bundle).toHaveLength(2);
      expect(bundle[1]?.trim()).toBe(oldCa.certPem.trim());
      expect(pemCertificates(await bundleOf())).toEqual(bundle);
      const newCaPem = bundle[0] ?? "";
      expect(await peerSerial(webhook.port, newCaPem)).toBe(serialOf(unb64(renewed["tls.crt"])));
      expect(new X509Certificate(unb64(renewed["tls.crt"])).validTo).toMatch(
        String(new Date(Date.now() + 365 * 86_400_000).getUTCFullYear()),
      );

      // Running: the Secret's certificate is about to expire again (say it is months later); it is renewed under
      // the same CA, so the configuration's bundle stays as it is, and the new certificate is served.
      const same = loadCertificateAuthority(newCaPem, unb64(renewed["ca.key"]));
      const soon = same.issueServing("localhost", ["localhost"], ["127.0.0.1"], 0.01);
      const secret = await client.get<TlsSecret>(SECRETS, ref.namespace, ref.name);
      await client.replace<TlsSecret>(SECRETS, {
        ...(secret as TlsSecret),
        data: { ...secret?.data, "tls.crt": b64(soon.certPem), "tls.key": b64(soon.keyPem) },
      });
      const again = await eventually(
        async () => {
          const d = (await client.get<TlsSecret>(SECRETS, ref.namespace, ref.name))?.data ?? {};
          const serial = serialOf(unb64(d["tls.crt"]));
          return serial !== serialOf(soon.certPem) && (await peerSerial(webhook.port, newCaPem)) === serial
            ? d
            : undefined;
        },
        { what: "the renewed certificate served", timeoutMs: 15_000, intervalMs: 200 },
      );
      expect(unb64(again["ca.crt"])).toBe(unb64(renewed["ca.crt"]));
      expect(pemCertificates(await bundleOf())).toEqual(bundle);

      // The Secret deleted (a way to force a new certificate): a new CA, and the one the replicas serve from
      // stays in the bundle, so that their certificates are trusted until each picks up the new one.
      await client.delete(SECRETS, ref.namespace, ref.name);
      const regenerated = await eventually(
        async () => (await client.get<TlsSecret>(SECRETS, ref.namespace, ref.name))?.data,
        { what: "the Secret written again", timeoutMs: 15_000, intervalMs: 200 },
      );
      const afterDeletion = pemCertificates(unb64(regenerated["ca.crt"]));
      expect(afterDeletion).toHaveLength(2);
      expect(afterDeletion[0]?.trim()).not.toBe(newCaPem.trim());
      expect(afterDeletion[1]?.trim()).toBe(newCaPem.trim());
      await eventually(
        async () => (pemCertificates(await bundleOf())[1]?.trim() === newCaPem.trim() ? true : undefined),
        { what: "the bundle with both CAs", timeoutMs: 15_000, intervalMs: 200 },
      );
    } finally {
      await webhook.close();
      await client.delete(SECRETS, ref.namespace, ref.name);
      await client.delete(VALIDATING_WEBHOOKS, undefined, vwc);
    }
  });

  it("reads a review whose UTF-8 is split between two TLS records", async () => {
    const ca = createCertificateAuthority("split-test-ca");
    const c = ca.issueServing("localhost", ["localhost"], ["127.0.0.1"]);
    writeFileSync(join(dir, "tls.key"), c.keyPem);
    writeFileSync(join(dir, "tls.crt"), c.certPem);
    const client = new KubeClient(loadKubeConfig(adminKubeconfig()));
    const webhook = await startWebhook({ ...webhookOn(client), certDir: dir });
    try {
      // Kubernetes' clean-up deleting a policy: allowed whatever it is; the answer echoes the uid.
      const uid = "réview-1";
      const body = Buffer.from(
        JSON.stringify({
          apiVersion: "admission.k8s.io/v1",
          kind: "AdmissionReview",
          request: {
            uid,
            kind: { group: "mxops.dev", version: "v1alpha1", kind: "AlertPolicy" },
            namespace: "apps",
            name: "p",
            operation: "DELETE",
            userInfo: { username: "system:serviceaccount:kube-system:namespace-controller" },
            oldObject: { metadata: { name: "p", namespace: "apps" }, spec: {} },
          },
        }),
      );
      const cut = body.indexOf(Buffer.from("é")) + 1; // inside the two bytes of "é"
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(
          { host: "127.0.0.1", port: webhook.port, ca: ca.certPem, servername: "localhost" },
          () => {
            socket.write(
              `POST /validate-mxops-dev-v1alpha1-alertpolicy HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
            );
            socket.write(body.subarray(0, cut));
            setTimeout(() => socket.write(body.subarray(cut)), 100);
          },
        );
        let got = "";
        socket.on("data", (d: Buffer) => {
          got += d.toString("utf8");
        });
        socket.on("end", () => resolve(got));
        socket.on("error", reject);
      });
      // The JSON of the answer, whether sent with a length or in chunks.
      const json = JSON.parse(answer.slice(answer.indexOf("{"), answer.lastIndexOf("}") + 1)) as {
        response: { uid: string; allowed: boolean };
      };
      expect(json.response).toMatchObject({ uid, allowed: true });
    } finally {
      await webhook.close();
    }
  });
});
