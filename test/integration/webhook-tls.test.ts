// The webhook serves TLS only, from a certificate directory (cert-manager style) that it reloads on rotation.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:tls";
import { afterAll, describe, expect, it } from "vitest";
import { ALERT_POLICIES, MENDIX_APPS, TECHNICAL_CONTACTS } from "../../src/controllers/resources.ts";
import { KubeClient } from "../../src/runtime/client.ts";
import { Informer } from "../../src/runtime/informer.ts";
import { createCertificateAuthority } from "../../src/runtime/pki.ts";
import { startWebhook } from "../../src/webhook/server.ts";
import { adminKubeconfig, eventually } from "./helpers.ts";
import { loadKubeConfig, testLog } from "./runtime-support.ts";

function peerSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, ca, servername: "localhost" }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.end();
    });
    socket.on("error", reject);
  });
}

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
    const webhook = await startWebhook({
      port: 0,
      host: "127.0.0.1",
      certDir: dir,
      hostNames: ["localhost"],
      adminGroups: [],
      apps: new Informer(client, MENDIX_APPS, { log: testLog }),
      contacts: new Informer(client, TECHNICAL_CONTACTS, { log: testLog }),
      policies: new Informer(client, ALERT_POLICIES, { log: testLog }),
      client,
      log: testLog,
    });
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
});
