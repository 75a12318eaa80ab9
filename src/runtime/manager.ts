// Wires the runtime together: one client, registry and cache set; controllers run only on the leader.

import type { Server } from "node:http";
import type { KubeConfig } from "@kubernetes/client-node";
import { collectDefaultMetrics, type Registry } from "prom-client";
import { KubeClient, type KubeObject } from "./client.ts";
import { Controller, type ControllerOptions } from "./controller.ts";
import { EventRecorder } from "./events.ts";
import { type Check, closeServer, serveMetrics, serveProbes } from "./http.ts";
import { InformerFactory, type InformerOptions } from "./informer.ts";
import { LeaderElector } from "./leader.ts";
import type { Logger } from "./log.ts";
import { newRegistry } from "./metrics.ts";

/** The operator's user agent, and so the field manager of its writes in managedFields. */
export const OPERATOR_USER_AGENT = "mxops-operator";

export interface LeaderElectionConfig {
  enabled: boolean;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

export interface ManagerOptions {
  kubeConfig: KubeConfig;
  log: Logger;
  registry?: Registry;
  /** Namespaces to watch; empty means all. */
  namespaces?: string[];
  /** "host:port" of /metrics; empty disables. */
  metricsAddr?: string;
  /** "host:port" of /healthz and /readyz; empty disables. */
  probeAddr?: string;
  leaderElection: LeaderElectionConfig;
  gracefulShutdownMs?: number;
  /** How long the caches may take to fill before start() gives up (stops, releasing the Lease, and throws). */
  cacheSyncTimeoutMs?: number;
  informer?: Partial<Omit<InformerOptions, "log" | "registry" | "namespaces">>;
  /** Reporting controller of Events, e.g. "mxops.dev/operator". */
  eventsController?: string;
  userAgent?: string;
}

export class Manager {
  readonly client: KubeClient;
  readonly registry: Registry;
  readonly log: Logger;
  readonly informers: InformerFactory;
  readonly events: EventRecorder;
  readonly elector: LeaderElector | undefined;
  private readonly opts: ManagerOptions;
  private readonly controllers: Controller<KubeObject>[] = [];
  private readonly readyChecks: Record<string, Check> = {};
  private readonly servers: Server[] = [];
  private readonly electionAbort = new AbortController();
  private election: Promise<void> | undefined;
  private stopped = false;
  /** Called when leadership is lost after renewals failed; default: log and exit(1) so the pod restarts clean. */
  onLeadershipLost: () => void;
  readonly ports: { metrics?: number; probes?: number } = {};

  constructor(opts: ManagerOptions) {
    this.opts = opts;
    this.log = opts.log;
    this.registry = opts.registry ?? newRegistry();
    // process_* and nodejs_* (memory, CPU, event-loop lag), as every Prometheus-instrumented process has.
    collectDefaultMetrics({ register: this.registry });
    this.client = new KubeClient(opts.kubeConfig, { registry: this.registry, userAgent: opts.userAgent });
    this.informers = new InformerFactory(this.client, {
      ...opts.informer,
      namespaces: opts.namespaces,
      log: opts.log.child({ component: "informer" }),
      registry: this.registry,
    });
    this.events = new EventRecorder({
      client: this.client,
      controller: opts.eventsController ?? "mxops.dev/operator",
      instance: opts.leaderElection.identity,
      log: opts.log.child({ component: "events" }),
    });
    if (opts.leaderElection.enabled) {
      this.elector = new LeaderElector({
        client: this.client,
        ...opts.leaderElection,
        log: opts.log.child({ component: "leader-election" }),
        registry: this.registry,
      });
    }
    this.readyChecks["informers-synced"] = () => this.informers.hasSynced();
    this.onLeadershipLost = () => {
      this.log.fatal("leadership lost; exiting so that a fresh process campaigns again");
      process.exit(1);
    };
  }

  addController<P extends KubeObject>(opts: Omit<ControllerOptions<P>, "log" | "registry">): Controller<P> {
    const ctrl = new Controller<P>({ ...opts, log: this.log, registry: this.registry });
    this.controllers.push(ctrl as unknown as Controller<KubeObject>);
    return ctrl;
  }

  addReadyCheck(name: string, check: Check): void {
    this.readyChecks[name] = check;
  }

  isLeader(): boolean {
    return this.elector ? this.elector.isLeader() : true;
  }

  /** Serves probes and metrics, fills the caches, then (as leader) starts the controllers. Resolves once synced. */
  async start(): Promise<void> {
    // Stopped before it started (a SIGTERM during start-up): nothing is opened, so nothing keeps the process up.
    if (this.stopped) return;
    if (this.opts.metricsAddr) {
      const { server, port } = await serveMetrics(this.opts.metricsAddr, this.registry);
      this.servers.push(server);
      this.ports.metrics = port;
    }
    if (this.opts.probeAddr) {
      const { server, port } = await serveProbes(this.opts.probeAddr, {
        healthz: { ping: () => true },
        readyz: this.readyChecks,
      });
      this.servers.push(server);
      this.ports.probes = port;
    }
    if (this.stopped) {
      // stop() ran while the listeners opened: it closed those it saw, these are closed here.
      await Promise.all(this.servers.map(closeServer));
      return;
    }
    this.informers.start();
    const started = Date.now();
    const timeoutMs = this.opts.cacheSyncTimeoutMs ?? 120_000;
    const synced = this.informers
      .waitForSync(AbortSignal.any([this.electionAbort.signal, AbortSignal.timeout(timeoutMs)]))
      .then((ok) => {
        if (ok) this.log.info({ ms: Date.now() - started, objects: this.cacheSize() }, "caches synced");
        return ok;
      });
    // The campaign runs while the caches fill, as controller-runtime's manager does: a new leader starts its
    // controllers once both are done, and does not wait for the Lease's round trips after a full sync.
    this.election = this.elector?.run(
      this.electionAbort.signal,
      () =>
        void synced.then(
          (ok) => ok && this.startControllers(),
          () => undefined,
        ),
      () => {
        // Another replica may lead from now on: no graceful wait (controller-runtime skips it too). In-flight
        // reconciles are aborted and the process exits; whatever they left half done is level-based and
        // redone by the new leader, and pending notifications are resumed by it under the same keys.
        for (const c of this.controllers) void c.stop(0);
        this.onLeadershipLost();
      },
    );
    if (!(await synced) && !this.electionAbort.signal.aborted) {
      const waiting = this.informers
        .all()
        .filter((i) => !i.hasSynced())
        .map((i) => i.name);
      this.log.fatal({ waiting, timeoutMs }, "watch caches did not fill in time; stopping");
      await this.stop();
      throw new Error(`watch caches of ${waiting.join(", ")} did not fill within ${timeoutMs} ms`);
    }
    if (!this.elector) this.startControllers();
  }

  private cacheSize(): number {
    return this.informers.all().reduce((n, i) => n + i.size(), 0);
  }

  private startControllers(): void {
    if (this.stopped) return;
    for (const c of this.controllers) c.start();
    this.log.info({ controllers: this.controllers.map((c) => c.name) }, "controllers started");
  }

  /**
   * Stops taking work, lets in-flight reconciles finish (within the grace period), runs `beforeRelease` (work
   * only the leader may do, such as deliveries, stops there), then releases the Lease.
   */
  async stop(beforeRelease?: () => void | Promise<void>): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const grace = this.opts.gracefulShutdownMs ?? 30_000;
    await Promise.all(this.controllers.map((c) => c.stop(grace)));
    await beforeRelease?.();
    this.electionAbort.abort();
    await this.election;
    await this.events.flush();
    await this.informers.stop();
    await Promise.all(this.servers.map(closeServer));
    this.log.info("stopped");
  }
}
