// `npm run dev`: a local control plane with the CRDs and sample apps, a local SMTP inbox, and the operator
// running against them. Ctrl-C stops everything.
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { installCrds, kubectl, startControlPlane } from "../test/controlplane/controlplane.ts";
import { startSmtpSink } from "../test/support/smtp.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const inbox = join(root, ".tmp", "inbox");
const metricsAddr = process.env.MXOPS_METRICS_BIND_ADDRESS ?? "127.0.0.1:8080";
const probeAddr = process.env.MXOPS_HEALTH_PROBE_BIND_ADDRESS ?? "127.0.0.1:8081";

const cp = await startControlPlane();
mkdirSync(inbox, { recursive: true });
const smtp = await startSmtpSink({
  mode: "plain",
  reply: (mail, index) => {
    const file = join(inbox, `${String(index).padStart(4, "0")}-${mail.to.join(",")}.eml`);
    writeFileSync(file, mail.raw);
    console.log(`[inbox] ${mail.headers.subject} -> ${mail.to.join(", ")} (${file})`);
    return undefined;
  },
});

await installCrds(cp.kubeconfig);
await kubectl(cp.kubeconfig, ["apply", "-f", join(root, "deploy", "samples")]);

const operator = spawn(process.execPath, [join(root, "src", "main.ts"), "--leader-elect"], {
  env: {
    ...process.env,
    KUBECONFIG: cp.kubeconfig,
    MXOPS_LEADER_ELECTION_NAMESPACE: "default",
    MXOPS_METRICS_BIND_ADDRESS: metricsAddr,
    MXOPS_HEALTH_PROBE_BIND_ADDRESS: probeAddr,
    MXOPS_SMTP_HOST: "127.0.0.1",
    MXOPS_SMTP_PORT: String(smtp.port),
    MXOPS_SMTP_TLS: "none",
    MXOPS_SMTP_FROM: "mxops@localhost",
    // No ValidatingWebhookConfiguration is installed locally, so the webhook would only hold a port.
    MXOPS_WEBHOOK_PORT: process.env.MXOPS_WEBHOOK_PORT ?? "0",
  },
  stdio: ["ignore", "inherit", "inherit"],
});

let stopping = false;
const stop = async (code = 0) => {
  if (stopping) return;
  stopping = true;
  console.log("\nstopping the operator, the SMTP inbox and the control plane...");
  if (operator.exitCode === null) {
    operator.kill("SIGTERM");
    await new Promise((r) => operator.once("exit", r));
  }
  await smtp.close();
  await cp.stop();
  process.exit(code);
};
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
operator.on("exit", (code) => {
  if (!stopping) {
    console.error(`the operator exited (code ${code}); stopping`);
    void stop(1);
  }
});

console.log(`
mxops is running on a local control plane (kube-apiserver ${cp.server}).

In another shell:
  export KUBECONFIG=${cp.kubeconfig}
  kubectl get mxops -A                                   # apps, contacts and alert policies
  kubectl explain mendixapp.spec                         # every field, documented
  kubectl annotate tc alice -n mendix-apps mxops.dev/send-test=$(date +%s)   # a test message
  kubectl get tc alice -n mendix-apps -o jsonpath='{.status.lastTest}'

Where to look:
  inbox     ${inbox}  (every mail the operator sends, as .eml)
  metrics   http://${metricsAddr}/metrics
  probes    http://${probeAddr}/readyz

Press Ctrl-C to stop everything.`);
