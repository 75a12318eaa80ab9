// Leader election on a coordination.k8s.io Lease, after client-go's leaderelection package.
import { Gauge, type Registry } from "prom-client";
import { sleep } from "./backoff.ts";
import {
  isAlreadyExists,
  isConflict,
  type KubeClient,
  type KubeObject,
  type ResourceType,
} from "./client.ts";
import { type Clock, systemClock } from "./clock.ts";
import type { Logger } from "./log.ts";

export const LEASES: ResourceType = {
  group: "coordination.k8s.io",
  version: "v1",
  plural: "leases",
  kind: "Lease",
  namespaced: true,
};

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease extends KubeObject {
  spec?: LeaseSpec;
}

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  log: Logger;
  registry?: Registry;
  clock?: Clock;
}

/** RFC 3339 with microseconds, as the API server's MicroTime expects. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

const gauges = new WeakMap<Registry, Gauge<"name">>();
function statusGauge(registry: Registry): Gauge<"name"> {
  let g = gauges.get(registry);
  if (!g) {
    g = new Gauge({
      name: "leader_election_master_status",
      help: "1 while this instance holds the leader Lease, 0 otherwise.",
      labelNames: ["name"],
      registers: [registry],
    });
    gauges.set(registry, g);
  }
  return g;
}

export class LeaderElector {
  private readonly opts: Required<Omit<LeaderElectionOptions, "registry">> & { registry?: Registry };
  private observed: { record: string; at: number } | undefined;
  private leading = false;

  constructor(opts: LeaderElectionOptions) {
    this.opts = {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      clock: systemClock,
      ...opts,
    };
    this.setGauge(0);
  }

  isLeader(): boolean {
    return this.leading;
  }

  /**
   * Campaigns until leader, calls `onStartedLeading`, renews until `signal` aborts (then releases the Lease
   * and resolves) or renewal fails for longer than the renew deadline (then calls `onStoppedLeading`).
   */
  async run(signal: AbortSignal, onStartedLeading: () => void, onStoppedLeading: () => void): Promise<void> {
    const { retryPeriodMs, renewDeadlineMs, clock, log } = this.opts;
    let acquired = false;
    while (!signal.aborted && !acquired) {
      acquired = await this.tryAcquireOrRenew();
      if (!acquired) await sleep(retryPeriodMs, signal);
    }
    if (!acquired) return;
    if (signal.aborted) {
      // Won in the round that the stop interrupted: given back, or the others would wait out a lease duration.
      await this.release();
      return;
    }
    this.leading = true;
    this.setGauge(1);
    log.info(
      { lease: `${this.opts.namespace}/${this.opts.name}`, identity: this.opts.identity },
      "became leader",
    );
    onStartedLeading();
    let lastRenew = clock.now();
    while (!signal.aborted) {
      await sleep(retryPeriodMs, signal);
      if (signal.aborted) break;
      // Every round must be done by the renew deadline, as client-go's renew context is: a request stuck on a
      // half-open connection must not keep this replica leading after a follower may have taken over (it
      // waits a lease duration, longer than the deadline, from the last renewal it saw).
      const left = lastRenew + renewDeadlineMs - clock.now();
      const round = left > 0 ? AbortSignal.any([signal, AbortSignal.timeout(left)]) : undefined;
      if (round && (await this.tryAcquireOrRenew(round))) {
        lastRenew = clock.now();
      } else if (!signal.aborted && clock.now() - lastRenew >= renewDeadlineMs) {
        this.leading = false;
        this.setGauge(0);
        log.error({ renewDeadlineMs }, "failed to renew the leader Lease in time; leadership lost");
        onStoppedLeading();
        return;
      }
    }
    await this.release();
  }

  private setGauge(v: number) {
    if (this.opts.registry) statusGauge(this.opts.registry).set({ name: this.opts.name }, v);
  }

  /** One round: create the Lease, renew our own, or take over an expired one. */
  async tryAcquireOrRenew(signal?: AbortSignal): Promise<boolean> {
    const { client, namespace, name, identity, leaseDurationMs, clock, log } = this.opts;
    const now = clock.now();
    const ours: LeaseSpec = {
      holderIdentity: identity,
      // Up, never down: followers must not take over before this replica's renew deadline has passed.
      leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    try {
      const lease = await client.get<Lease>(LEASES, namespace, name, { signal });
      if (!lease) {
        await client.create<Lease>(LEASES, { metadata: { name, namespace }, spec: ours }, { signal });
        this.observed = { record: JSON.stringify(ours), at: now };
        return true;
      }
      const spec = lease.spec ?? {};
      const record = JSON.stringify(spec);
      // Seen when the answer arrived, not when it was asked for (client-go's observedTime): a slow GET may read
      // a renewal made while it waited, and dating that renewal back would end the holder's lease early.
      if (this.observed?.record !== record) this.observed = { record, at: clock.now() };
      const heldByOther = !!spec.holderIdentity && spec.holderIdentity !== identity;
      // Expiry is judged by when *we* saw the record change, not by the holder's clock.
      const expiresAt = (this.observed?.at ?? now) + (spec.leaseDurationSeconds ?? 0) * 1000;
      if (heldByOther && expiresAt > now) return false;
      const next: LeaseSpec =
        spec.holderIdentity === identity
          ? {
              ...ours,
              acquireTime: spec.acquireTime ?? ours.acquireTime,
              leaseTransitions: spec.leaseTransitions ?? 0,
            }
          : { ...ours, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 };
      await client.replace<Lease>(LEASES, { ...lease, spec: next }, undefined, { signal });
      this.observed = { record: JSON.stringify(next), at: now };
      return true;
    } catch (err) {
      if (!isConflict(err) && !isAlreadyExists(err) && !signal?.aborted)
        log.warn({ err: (err as Error).message }, "leader election round failed");
      else if (this.leading && (signal?.reason as Error | undefined)?.name === "TimeoutError")
        log.warn("renewing the leader Lease took until the renew deadline; the request was cancelled");
      return false;
    }
  }

  /** Gives the Lease up so another instance takes over at once instead of waiting for expiry. */
  private async release(): Promise<void> {
    const { client, namespace, name, identity, clock, log } = this.opts;
    this.leading = false;
    this.setGauge(0);
    try {
      const lease = await client.get<Lease>(LEASES, namespace, name);
      if (!lease || lease.spec?.holderIdentity !== identity) return;
      const now = microTime(clock.now());
      await client.replace<Lease>(LEASES, {
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: "",
          leaseDurationSeconds: 1,
          renewTime: now,
          acquireTime: now,
        },
      });
      log.info("released the leader Lease");
    } catch (err) {
      log.warn({ err: (err as Error).message }, "could not release the leader Lease; it expires by itself");
    }
  }
}
