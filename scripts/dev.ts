// `npm run dev`: a local control plane with the CRDs and sample apps, for trying mxops by hand. Ctrl-C stops it.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { kubectl, startControlPlane } from "../test/controlplane/controlplane.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const cp = await startControlPlane();
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log("\nstopping the control plane...");
  await cp.stop();
  process.exit(0);
};
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());

await kubectl(cp.kubeconfig, ["apply", "--server-side", "-f", join(root, "crds")]);
await kubectl(cp.kubeconfig, [
  "wait",
  "--for=condition=Established",
  "crd",
  "-l",
  "app.kubernetes.io/name=mxops",
]);
await kubectl(cp.kubeconfig, ["apply", "-f", join(root, "deploy", "samples")]);

console.log(`
mxops local control plane is up (kube-apiserver ${cp.server}).

In another shell:
  export KUBECONFIG=${cp.kubeconfig}
  kubectl get mxops -A                      # apps, contacts and alert policies
  kubectl explain mendixapp.spec            # every field, documented
  kubectl describe mxapp crm -n mendix-apps

Press Ctrl-C to stop everything.`);
setInterval(() => {}, 1 << 30);
