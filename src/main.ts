// Entry point: read the configuration, build the manager, run until SIGTERM/SIGINT, then shut down cleanly.
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { KubeConfig } from "@kubernetes/client-node";
import { ConfigError, helpText, loadConfig } from "./config.ts";
import { createLogger } from "./runtime/log.ts";
import { Manager } from "./runtime/manager.ts";

const IN_CLUSTER_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

function inClusterNamespace(): string | undefined {
  try {
    return readFileSync(IN_CLUSTER_NAMESPACE_FILE, "utf8").trim() || undefined;
  } catch {
    return undefined; // not running in a pod
  }
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(helpText());
    return 0;
  }
  const config = loadConfig(argv, process.env);
  const log = createLogger({ level: config.logLevel });

  const kubeConfig = new KubeConfig();
  if (config.kubeconfig) kubeConfig.loadFromFile(config.kubeconfig);
  else kubeConfig.loadFromDefault(); // $KUBECONFIG, ~/.kube/config, then in-cluster
  const contextNamespace = kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace;
  // In a pod the hostname is the pod name: unique per replica, and readable in the Lease.
  const identity = `${hostname()}_${process.pid}`;

  const manager = new Manager({
    kubeConfig,
    log,
    namespaces: config.namespaces,
    metricsAddr: config.metricsBindAddress,
    probeAddr: config.healthProbeBindAddress,
    gracefulShutdownMs: config.gracefulShutdownTimeout,
    leaderElection: {
      enabled: config.leaderElect,
      namespace: config.leaderElectionNamespace || inClusterNamespace() || contextNamespace || "default",
      name: config.leaderElectionId,
      identity,
      leaseDurationMs: config.leaseDuration,
      renewDeadlineMs: config.renewDeadline,
      retryPeriodMs: config.retryPeriod,
    },
    userAgent: "mxops-operator",
  });

  let stopping: Promise<void> | undefined;
  const shutdown = (signal: string) => {
    if (stopping) return;
    log.info({ signal }, "shutting down");
    stopping = manager.stop();
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));

  log.info(
    {
      server: kubeConfig.getCurrentCluster()?.server,
      namespaces: config.namespaces.length ? config.namespaces : "all",
      leaderElection: config.leaderElect,
      metrics: config.metricsBindAddress || "off",
      probes: config.healthProbeBindAddress || "off",
    },
    "starting mxops",
  );
  await manager.start();
  await new Promise<void>((resolve) => {
    const wait = setInterval(() => {
      if (stopping) {
        clearInterval(wait);
        void stopping.then(resolve);
      }
    }, 100);
  });
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError) process.stderr.write(`${err.message}\n`);
    else process.stderr.write(`mxops failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  },
);
