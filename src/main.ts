// Entry point: read the configuration, build the manager, run until SIGTERM/SIGINT, then shut down cleanly.

import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { KubeConfig } from "@kubernetes/client-node";
import { type Config, ConfigError, helpText, loadConfig } from "./config.ts";
import { registerAlertPolicyController } from "./controllers/alert-policy.ts";
import { registerMendixAppController } from "./controllers/mendix-app.ts";
import { ALERT_POLICIES, MENDIX_APPS, TECHNICAL_CONTACTS } from "./controllers/resources.ts";
import { secretValue } from "./controllers/secrets.ts";
import { registerTechnicalContactController } from "./controllers/technical-contact.ts";
import { CombinedSource, MetricsApiSource, PrometheusSource } from "./metrics/sources.ts";
import { RecipientCap } from "./notify/cap.ts";
import { AlertmanagerChannel, type Channel, EmailChannel, WebhookChannel } from "./notify/channels.ts";
import { Deliverer } from "./notify/deliver.ts";
import { NotificationSender } from "./notify/sender.ts";
import { settledWithin } from "./runtime/backoff.ts";
import { systemClock } from "./runtime/clock.ts";
import type { Logger } from "./runtime/log.ts";
import { createLogger } from "./runtime/log.ts";
import { Manager, OPERATOR_USER_AGENT } from "./runtime/manager.ts";
import { startWebhook } from "./webhook/server.ts";

const IN_CLUSTER_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

function inClusterNamespace(): string | undefined {
  try {
    return readFileSync(IN_CLUSTER_NAMESPACE_FILE, "utf8").trim() || undefined;
  } catch {
    return undefined; // not running in a pod
  }
}

async function notificationChannels(config: Config, manager: Manager, log: Logger): Promise<Channel[]> {
  const channels: Channel[] = [new WebhookChannel()];
  if (config.smtpHost) {
    let auth: { user: string; pass: string } | undefined;
    if (config.smtpCredentialsSecret) {
      const [namespace = "", name = ""] = config.smtpCredentialsSecret.split("/");
      const user = await secretValue(manager.client, namespace, name, "username");
      const pass = await secretValue(manager.client, namespace, name, "password");
      if (user === undefined || pass === undefined) {
        throw new ConfigError(
          `--smtp-credentials-secret (MXOPS_SMTP_CREDENTIALS_SECRET) = "${config.smtpCredentialsSecret}": the Secret must exist and hold keys username and password`,
        );
      }
      auth = { user, pass };
    }
    channels.push(
      new EmailChannel({
        host: config.smtpHost,
        port: config.smtpPort,
        tls: config.smtpTls,
        from: config.smtpFrom,
        auth,
        ca: config.smtpCaFile ? readFileSync(config.smtpCaFile, "utf8") : undefined,
      }),
    );
  } else {
    log.warn("no --smtp-host (MXOPS_SMTP_HOST): email notifications are disabled");
  }
  if (config.alertmanagerUrl) channels.push(new AlertmanagerChannel({ url: config.alertmanagerUrl }));
  return channels;
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
    cacheSyncTimeoutMs: config.cacheSyncTimeout,
    leaderElection: {
      enabled: config.leaderElect,
      namespace: config.leaderElectionNamespace || inClusterNamespace() || contextNamespace || "default",
      name: config.leaderElectionId,
      identity,
      leaseDurationMs: config.leaseDuration,
      renewDeadlineMs: config.renewDeadline,
      retryPeriodMs: config.retryPeriod,
    },
    userAgent: OPERATOR_USER_AGENT,
  });

  const channels = await notificationChannels(config, manager, log);
  const deliverer = new Deliverer({
    channels,
    policy: {
      maxAttempts: config.notifyMaxAttempts,
      initialBackoffMs: config.notifyInitialBackoff,
      maxBackoffMs: config.notifyMaxBackoff,
    },
    registry: manager.registry,
    log: log.child({ component: "notify" }),
    cap: new RecipientCap(config.notifyHourlyCap, config.notifyCapWindow),
  });
  const sender = new NotificationSender({
    client: manager.client,
    deliverer,
    events: manager.events,
    log: log.child({ component: "notify" }),
    registry: manager.registry,
  });
  sender.startDigests(Math.max(250, Math.min(config.notifyCapWindow / 12, 60_000)));
  if (config.usageSource === "prometheus" && !config.prometheusUrl) {
    throw new ConfigError(
      '--usage-source (MXOPS_USAGE_SOURCE) = "prometheus" needs --prometheus-url (MXOPS_PROMETHEUS_URL)',
    );
  }
  const prometheus = config.prometheusUrl ? new PrometheusSource(config.prometheusUrl) : undefined;
  const metricsApi = new MetricsApiSource(manager.client);
  const source =
    config.usageSource === "prometheus" && prometheus
      ? prometheus
      : prometheus
        ? new CombinedSource(metricsApi, prometheus)
        : metricsApi;
  const alertmanager = channels.find((c): c is AlertmanagerChannel => c instanceof AlertmanagerChannel);
  registerAlertPolicyController(manager, {
    sender,
    clock: systemClock,
    source,
    intervalMs: config.evaluationInterval,
    alertmanager: !!config.alertmanagerUrl,
    firing: alertmanager
      ? (ns, policy, alerts, held) => alertmanager.setFiring(ns, policy, alerts, held)
      : undefined,
  });
  registerMendixAppController(manager, {
    sender,
    clock: systemClock,
    alertmanager: !!config.alertmanagerUrl,
    defaultContact: config.defaultContact || undefined,
    defaultContactAfterMs: config.defaultContactAfter,
    concurrency: config.maxConcurrentReconciles,
    resyncPeriodMs: config.resyncPeriod,
  });
  registerTechnicalContactController(manager, {
    sender,
    clock: systemClock,
    alertmanager: !!config.alertmanagerUrl,
  });

  let stopping: Promise<void> | undefined;
  // Declared before the signal handlers: a SIGTERM while the webhook starts must not meet it uninitialised.
  let webhook: Awaited<ReturnType<typeof startWebhook>> | undefined;
  const shutdown = (signal: string) => {
    if (stopping) return;
    log.info({ signal }, "shutting down");
    // Deliveries stop before the Lease is released (the next leader must not resume a record this one is still
    // retrying); those still retrying stay Pending in status, and the next leader resumes them with the same keys.
    stopping = manager
      .stop(async () => {
        sender.stop();
        await deliverer.stop();
        // The runs that were sending record what they delivered before the Lease is released (bounded).
        await settledWithin(sender.idle(), 5000);
      })
      .then(async () => {
        await webhook?.close();
        deliverer.close();
      });
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
  // Every replica serves the webhook (from its warm caches), leader or not.
  webhook =
    config.webhookPort > 0
      ? await startWebhook({
          port: config.webhookPort,
          certDir: config.webhookCertDir || undefined,
          certSecret: config.webhookCertSecret
            ? {
                namespace: config.webhookCertSecret.split("/")[0] ?? "",
                name: config.webhookCertSecret.split("/")[1] ?? "",
              }
            : undefined,
          hostNames: config.webhookHostNames,
          configurationName: config.webhookConfigurationName || undefined,
          adminGroups: config.adminGroups,
          apps: manager.informers.informerFor(MENDIX_APPS),
          contacts: manager.informers.informerFor(TECHNICAL_CONTACTS),
          policies: manager.informers.informerFor(ALERT_POLICIES),
          client: manager.client,
          log: log.child({ component: "webhook" }),
        })
      : undefined;
  manager.addReadyCheck("webhook", () => config.webhookPort === 0 || webhook !== undefined);
  // A SIGTERM while the webhook started: nothing more starts (the manager's start returns at once).
  if (!stopping) await manager.start();
  await new Promise<void>((resolve) => {
    const wait = setInterval(() => {
      if (stopping) {
        clearInterval(wait);
        void stopping.then(resolve);
      }
    }, 100);
  });
  // Closed here too: a shutdown that began while the webhook started did not have it to close.
  await webhook?.close();
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
