// Flags and MXOPS_* environment variables -> one validated Config (the only place the environment is read).
import { z } from "zod";
import { parseDuration } from "./api/common.ts";

interface Setting {
  flag: string;
  env: string;
  default: string;
  description: string;
  /** Parses the raw string; throws with a message naming the rule. */
  parse: z.ZodType;
}

/** A duration of at least `min` (e.g. "1s"); the message names the minimum. */
const durationAtLeast = (min: string) => {
  const minMs = parseDuration(min) ?? 0;
  return z.string().transform((s, ctx) => {
    const ms = parseDuration(s);
    if (ms === undefined) {
      ctx.addIssue({ code: "custom", message: "must be a duration such as 30s, 5m, 1h30m" });
      return z.NEVER;
    }
    if (ms < minMs) {
      ctx.addIssue({ code: "custom", message: `must be at least ${min}` });
      return z.NEVER;
    }
    return ms;
  });
};
const duration = durationAtLeast("0s");
const bool = z
  .string()
  .toLowerCase()
  .refine((s) => ["true", "false", "1", "0", "yes", "no"].includes(s), "must be true or false")
  .transform((s) => ["true", "1", "yes"].includes(s));
const address = z
  .string()
  .refine(
    (s) =>
      s === "" ||
      s === "0" ||
      (/^(\[[^\]]+\]|[^:]*):\d{1,5}$/.test(s) && Number(s.split(":").pop()) <= 65535),
    "must be host:port, :port (port 0-65535), or 0 to disable",
  )
  .transform((s) => (s === "0" ? "" : s));
/** A whole number in [min, max]. Not z.coerce: that reads "" as 0 (an empty variable would turn a port or a cap off) and takes 1e3 or 0x10. */
const wholeNumber = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));
const port = wholeNumber(1, 65535);
const list = z.string().transform((s) =>
  s
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean),
);

/** Every setting, in the order of the README table. */
export const SETTINGS = {
  kubeconfig: {
    flag: "kubeconfig",
    env: "MXOPS_KUBECONFIG",
    default: "",
    description:
      "Kubeconfig file; empty: $KUBECONFIG, then ~/.kube/config, then the in-cluster service account.",
    parse: z.string(),
  },
  namespaces: {
    flag: "namespaces",
    env: "MXOPS_NAMESPACES",
    default: "",
    description: "Comma-separated namespaces to watch; empty watches all namespaces.",
    parse: list,
  },
  metricsBindAddress: {
    flag: "metrics-bind-address",
    env: "MXOPS_METRICS_BIND_ADDRESS",
    default: ":8080",
    description: "Where /metrics is served (host:port; 0 disables).",
    parse: address,
  },
  healthProbeBindAddress: {
    flag: "health-probe-bind-address",
    env: "MXOPS_HEALTH_PROBE_BIND_ADDRESS",
    default: ":8081",
    description: "Where /healthz and /readyz are served (host:port; 0 disables).",
    parse: address,
  },
  webhookPort: {
    flag: "webhook-port",
    env: "MXOPS_WEBHOOK_PORT",
    default: "9443",
    description: "HTTPS port of the validating admission webhook; 0 disables it.",
    parse: wholeNumber(0, 65535),
  },
  webhookCertDir: {
    flag: "webhook-cert-dir",
    env: "MXOPS_WEBHOOK_CERT_DIR",
    default: "",
    description:
      "Directory with tls.crt and tls.key (e.g. a cert-manager Secret), reloaded on rotation; empty: generate one at start.",
    parse: z.string(),
  },
  webhookCertSecret: {
    flag: "webhook-cert-secret",
    env: "MXOPS_WEBHOOK_CERT_SECRET",
    default: "",
    description:
      "namespace/name of a Secret where replicas share a generated webhook certificate (created if missing); empty: each replica generates its own.",
    parse: z
      .string()
      .refine((s) => s === "" || /^[a-z0-9-]+\/[a-z0-9.-]+$/.test(s), "must be namespace/name"),
  },
  webhookHostNames: {
    flag: "webhook-host-names",
    env: "MXOPS_WEBHOOK_HOST_NAMES",
    default: "mxops-webhook.mxops-system.svc,mxops-webhook.mxops-system.svc.cluster.local,localhost",
    description: "DNS names of a generated webhook certificate (the webhook Service's names).",
    parse: list,
  },
  webhookConfigurationName: {
    flag: "webhook-configuration-name",
    env: "MXOPS_WEBHOOK_CONFIGURATION_NAME",
    default: "",
    description:
      "ValidatingWebhookConfiguration that gets the generated certificate's CA bundle; empty: none (so that an operator run outside the cluster never rewrites the installed one). The manifests and the chart set it.",
    parse: z.string(),
  },
  adminGroups: {
    flag: "admin-groups",
    env: "MXOPS_ADMIN_GROUPS",
    default: "",
    description: "Groups treated as cluster admins by the webhook, besides system:masters (comma-separated).",
    parse: list,
  },
  leaderElect: {
    flag: "leader-elect",
    env: "MXOPS_LEADER_ELECT",
    default: "false",
    description:
      "Elect a leader through a Lease so only one replica reconciles (the deploy manifests set true).",
    parse: bool,
  },
  leaderElectionNamespace: {
    flag: "leader-election-namespace",
    env: "MXOPS_LEADER_ELECTION_NAMESPACE",
    default: "",
    description:
      "Namespace of the leader Lease; empty: the pod's namespace, else the kubeconfig context's, else default.",
    parse: z.string(),
  },
  leaderElectionId: {
    flag: "leader-election-id",
    env: "MXOPS_LEADER_ELECTION_ID",
    default: "mxops-operator",
    description: "Name of the leader Lease.",
    parse: z.string().min(1),
  },
  leaseDuration: {
    flag: "lease-duration",
    env: "MXOPS_LEASE_DURATION",
    default: "15s",
    description: "How long followers wait before taking over a Lease that is not renewed.",
    parse: durationAtLeast("1s"),
  },
  renewDeadline: {
    flag: "renew-deadline",
    env: "MXOPS_RENEW_DEADLINE",
    default: "10s",
    description: "How long the leader retries renewing before it gives leadership up.",
    parse: durationAtLeast("100ms"),
  },
  retryPeriod: {
    flag: "retry-period",
    env: "MXOPS_RETRY_PERIOD",
    default: "2s",
    description: "How often leader election is attempted or renewed.",
    parse: durationAtLeast("100ms"),
  },
  maxConcurrentReconciles: {
    flag: "max-concurrent-reconciles",
    env: "MXOPS_MAX_CONCURRENT_RECONCILES",
    default: "16",
    description:
      "Workers of the MendixApp controller (one app is never reconciled by two at once). A reconcile mostly waits on the API server: 16 converged 1,000 new apps twice as fast as 4 (BENCHMARKS.md).",
    parse: wholeNumber(1, 256),
  },
  resyncPeriod: {
    flag: "resync-period",
    env: "MXOPS_RESYNC_PERIOD",
    default: "10m",
    description:
      "Every app is reconciled again this often even without changes (Secrets and workloads are not watched).",
    parse: duration,
  },
  cacheSyncTimeout: {
    flag: "cache-sync-timeout",
    env: "MXOPS_CACHE_SYNC_TIMEOUT",
    default: "2m",
    description:
      "How long the watch caches may take to fill at start; then the process exits 1 (releasing the Lease), so that a replica that cannot list does not lead while reconciling nothing (controller-runtime's CacheSyncTimeout).",
    parse: durationAtLeast("1s"),
  },
  usageSource: {
    flag: "usage-source",
    env: "MXOPS_USAGE_SOURCE",
    default: "metrics-api",
    description:
      "CPU and memory from metrics-api (metrics.k8s.io, metrics-server) or prometheus. Disk always comes from --prometheus-url (kubelet_volume_stats_*); without it disk rules are Unknown.",
    parse: z.enum(["metrics-api", "prometheus"]),
  },
  prometheusUrl: {
    flag: "prometheus-url",
    env: "MXOPS_PROMETHEUS_URL",
    default: "",
    description:
      "Prometheus HTTP API base URL (instant queries on /api/v1/query). Credentials in it (https://user:password@host) are sent as basic auth and never logged; set the variable from a Secret then.",
    parse: z.string().refine((s) => s === "" || /^https?:\/\//.test(s), "must be an http:// or https:// URL"),
  },
  evaluationInterval: {
    flag: "evaluation-interval",
    env: "MXOPS_EVALUATION_INTERVAL",
    default: "30s",
    description: "How often every AlertPolicy is evaluated.",
    parse: durationAtLeast("1s"),
  },
  gracefulShutdownTimeout: {
    flag: "graceful-shutdown-timeout",
    env: "MXOPS_GRACEFUL_SHUTDOWN_TIMEOUT",
    default: "30s",
    description: "How long in-flight reconciles may run after SIGTERM before they are aborted.",
    parse: duration,
  },
  smtpHost: {
    flag: "smtp-host",
    env: "MXOPS_SMTP_HOST",
    default: "",
    description: "SMTP server for email notifications; empty disables email.",
    parse: z.string(),
  },
  smtpPort: {
    flag: "smtp-port",
    env: "MXOPS_SMTP_PORT",
    default: "587",
    description: "SMTP port.",
    parse: port,
  },
  smtpTls: {
    flag: "smtp-tls",
    env: "MXOPS_SMTP_TLS",
    default: "starttls",
    description:
      "starttls (upgrade, required), tls (implicit TLS on any port) or none (a relay without TLS).",
    parse: z.enum(["starttls", "tls", "none"]),
  },
  smtpFrom: {
    flag: "smtp-from",
    env: "MXOPS_SMTP_FROM",
    default: "mxops@localhost",
    description: "Sender address of notification mails.",
    parse: z.string().min(3),
  },
  defaultContact: {
    flag: "default-contact",
    env: "MXOPS_DEFAULT_CONTACT",
    default: "",
    description:
      "Email address of the cluster's default technical contact: told (once) when none of an app's technical contacts has existed for --default-contact-after; empty: nobody.",
    parse: z.string().refine((s) => s === "" || /^[^@\s]+@[^@\s]+$/.test(s), "must be an email address"),
  },
  defaultContactAfter: {
    flag: "default-contact-after",
    env: "MXOPS_DEFAULT_CONTACT_AFTER",
    default: "5m",
    description:
      "How long an app must have no existing technical contact before the default contact is told (a contact applied a little after its app is no news).",
    parse: duration,
  },
  smtpCredentialsSecret: {
    flag: "smtp-credentials-secret",
    env: "MXOPS_SMTP_CREDENTIALS_SECRET",
    default: "",
    description: "namespace/name of a Secret with keys username and password for SMTP AUTH; empty: no AUTH.",
    parse: z
      .string()
      .refine((s) => s === "" || /^[a-z0-9-]+\/[a-z0-9.-]+$/.test(s), "must be namespace/name"),
  },
  smtpCaFile: {
    flag: "smtp-ca-file",
    env: "MXOPS_SMTP_CA_FILE",
    default: "",
    description: "PEM file of a private CA the SMTP server's certificate chains to.",
    parse: z.string(),
  },
  alertmanagerUrl: {
    flag: "alertmanager-url",
    env: "MXOPS_ALERTMANAGER_URL",
    default: "",
    description:
      "Alertmanager base URL (alerts go to /api/v2/alerts); empty disables forwarding. Credentials in it are sent as basic auth and never logged.",
    parse: z.string().refine((s) => s === "" || /^https?:\/\//.test(s), "must be an http:// or https:// URL"),
  },
  notifyMaxAttempts: {
    flag: "notify-max-attempts",
    env: "MXOPS_NOTIFY_MAX_ATTEMPTS",
    default: "13",
    description:
      "Delivery attempts per recipient and channel before a notification counts as failed; with the default backoff 13 retry for 6-12 minutes (past SMTP greylisting).",
    parse: wholeNumber(1, 100),
  },
  notifyInitialBackoff: {
    flag: "notify-initial-backoff",
    env: "MXOPS_NOTIFY_INITIAL_BACKOFF",
    default: "1s",
    description:
      "First retry delay; doubles (jittered) up to --notify-max-backoff. Retry-After is honoured up to 5 minutes (or --notify-max-backoff, if longer).",
    parse: durationAtLeast("10ms"),
  },
  notifyMaxBackoff: {
    flag: "notify-max-backoff",
    env: "MXOPS_NOTIFY_MAX_BACKOFF",
    default: "2m",
    description: "Longest retry delay.",
    parse: durationAtLeast("10ms"),
  },
  notifyHourlyCap: {
    flag: "notify-hourly-cap",
    env: "MXOPS_NOTIFY_HOURLY_CAP",
    default: "20",
    description:
      "Messages per recipient and channel per --notify-cap-window; more go out as one digest when there is room again. Critical alerts are never held. 0: no cap.",
    parse: wholeNumber(0, 100000),
  },
  notifyCapWindow: {
    flag: "notify-cap-window",
    env: "MXOPS_NOTIFY_CAP_WINDOW",
    default: "1h",
    description: "The window of --notify-hourly-cap.",
    parse: durationAtLeast("1s"),
  },
  logLevel: {
    flag: "log-level",
    env: "MXOPS_LOG_LEVEL",
    default: "info",
    description: "trace, debug, info, warn, error or fatal.",
    parse: z.enum(["trace", "debug", "info", "warn", "error", "fatal"]),
  },
} satisfies Record<string, Setting>;

type Settings = typeof SETTINGS;
export type Config = { [K in keyof Settings]: z.output<Settings[K]["parse"]> };

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Parses `--flag value`, `--flag=value` and bare boolean `--flag`; rejects unknown flags. */
function parseFlags(argv: string[]): Map<string, string> {
  const byFlag = new Map(Object.values(SETTINGS).map((s: Setting) => [s.flag, s]));
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (!arg.startsWith("--"))
      throw new ConfigError(`unexpected argument "${arg}"; settings are given as --name=value`);
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    const setting = byFlag.get(name);
    if (!setting) throw new ConfigError(`unknown flag --${name}; see --help`);
    if (inline !== undefined) {
      out.set(name, inline);
    } else if (setting.parse === bool && (argv[i + 1] === undefined || argv[i + 1]?.startsWith("--"))) {
      out.set(name, "true");
    } else {
      const next = argv[++i];
      if (next === undefined) throw new ConfigError(`--${name} needs a value`);
      out.set(name, next);
    }
  }
  return out;
}

/** Flags win over MXOPS_* variables, which win over defaults. Errors name the flag, the variable and the rule. */
export function loadConfig(argv: string[], env: Record<string, string | undefined>): Config {
  const flags = parseFlags(argv);
  const config: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, setting] of Object.entries(SETTINGS) as [string, Setting][]) {
    const fromFlag = flags.get(setting.flag);
    const raw = fromFlag ?? env[setting.env] ?? setting.default;
    const result = setting.parse.safeParse(raw);
    if (result.success) config[key] = result.data;
    else {
      const source =
        fromFlag !== undefined
          ? `--${setting.flag}`
          : env[setting.env] !== undefined
            ? setting.env
            : "default";
      problems.push(
        `${source} (--${setting.flag} / ${setting.env}) = "${raw}": ${result.error.issues.map((i) => i.message).join("; ")}`,
      );
    }
  }
  if (!problems.length) problems.push(...crossChecks(config as Config));
  if (problems.length) throw new ConfigError(`invalid configuration:\n  ${problems.join("\n  ")}`);
  return config as Config;
}

/** Rules between settings (client-go's leader election checks the same three). */
function crossChecks(c: Config): string[] {
  const problems: string[] = [];
  if (c.leaseDuration <= c.renewDeadline)
    problems.push(
      "--lease-duration (MXOPS_LEASE_DURATION) must be longer than --renew-deadline (MXOPS_RENEW_DEADLINE): a leader cut off from the API server must give up before a follower may take over",
    );
  if (c.renewDeadline <= 1.2 * c.retryPeriod)
    problems.push(
      "--renew-deadline (MXOPS_RENEW_DEADLINE) must be longer than 1.2 x --retry-period (MXOPS_RETRY_PERIOD), so that a renewal can be retried before the deadline",
    );
  if (c.notifyMaxBackoff < c.notifyInitialBackoff)
    problems.push(
      "--notify-max-backoff (MXOPS_NOTIFY_MAX_BACKOFF) must not be shorter than --notify-initial-backoff (MXOPS_NOTIFY_INITIAL_BACKOFF)",
    );
  return problems;
}

export function helpText(): string {
  const rows = Object.values(SETTINGS).map(
    (s: Setting) => `  --${s.flag} (${s.env}, default "${s.default}")\n      ${s.description}`,
  );
  return `mxops: the Kubernetes operator for Mendix apps\n\nSettings (flag, environment variable, default):\n${rows.join("\n")}\n`;
}

/** The README's configuration table, generated so that it cannot drift from the code. */
export function settingsMarkdownTable(): string {
  const rows = Object.values(SETTINGS).map(
    (s: Setting) =>
      `| \`--${s.flag}\` | \`${s.env}\` | ${s.default === "" ? "(empty)" : `\`${s.default}\``} | ${s.description} |`,
  );
  return ["| flag | environment variable | default | meaning |", "| --- | --- | --- | --- |", ...rows].join(
    "\n",
  );
}
