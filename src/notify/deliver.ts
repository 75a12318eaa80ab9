// Delivers one notification to every recipient on every channel that reaches them, each target on its own:
// retried with jittered backoff when the failure is temporary, given up past the retry budget.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { Backoff, sleep as defaultSleep, settledWithin } from "../runtime/backoff.ts";
import type { Logger } from "../runtime/log.ts";
import type { RecipientCap } from "./cap.ts";
import { type Channel, DeliveryError } from "./channels.ts";
import { type ChannelName, type Notification, type Recipient, targetKey } from "./message.ts";

export interface RetryPolicy {
  /** Attempts per target before it counts as failed (the retry budget). */
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
}

/** 13 attempts: waits of 1, 2, 4 ... 64 s, then 2 min x5 (each 50-100% by jitter): 6-12 minutes in all, past
 * the 5 minutes SMTP greylisting and an Alertmanager or receiver restart usually take. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 13,
  initialBackoffMs: 1000,
  maxBackoffMs: 120_000,
};

const MAX_RETRY_AFTER_MS = 300_000;

/** A delivery run ended by stop() (shutdown): its record stays Pending for the next leader. Not a failure. */
export class DeliveryStopped extends Error {
  constructor() {
    super("the operator is stopping; the delivery resumes later");
    this.name = "DeliveryStopped";
  }
}

export interface TargetOutcome {
  target: string;
  channel: ChannelName;
  recipient: string;
  ok: boolean;
  attempts: number;
  error?: string;
  /** Not sent: the recipient's cap is reached; the target waits for a digest. */
  held?: boolean;
}

export interface NotifyMetrics {
  notifications: Counter<"channel" | "kind" | "result">;
  attempts: Counter<"channel" | "result">;
  duration: Histogram<"channel">;
  oldestPending: Gauge;
}

const metricsByRegistry = new WeakMap<Registry, NotifyMetrics>();

export function notifyMetrics(registry: Registry): NotifyMetrics {
  let m = metricsByRegistry.get(registry);
  if (!m) {
    const registers = [registry];
    m = {
      notifications: new Counter({
        name: "mxops_notifications_total",
        help: 'Notifications per target (recipient and channel), by outcome: sent, or failed past the retry budget; channel "none", result "unreachable": not sent, no configured channel reaches any recipient.',
        labelNames: ["channel", "kind", "result"],
        registers,
      }),
      attempts: new Counter({
        name: "mxops_notification_attempts_total",
        help: "Delivery attempts by outcome: success, retry (temporary failure) or failure (final).",
        labelNames: ["channel", "result"],
        registers,
      }),
      duration: new Histogram({
        name: "mxops_notification_duration_seconds",
        help: "Duration of one delivery attempt.",
        labelNames: ["channel"],
        buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        registers,
      }),
      oldestPending: new Gauge({
        name: "mxops_notification_oldest_pending_seconds",
        help: "Age of the oldest notification recorded but not yet delivered (0 when none).",
        registers,
      }),
    };
    metricsByRegistry.set(registry, m);
  }
  return m;
}

export interface DelivererOptions {
  channels: Channel[];
  policy?: RetryPolicy;
  registry: Registry;
  log: Logger;
  /** Injected in tests to run backoff without waiting. */
  sleep?: (ms: number) => Promise<void>;
  /** The per-recipient cap (email and webhook; Alertmanager groups alerts itself). */
  cap?: RecipientCap;
  clock?: () => number;
}

export class Deliverer {
  private readonly channels: Channel[];
  private readonly policy: RetryPolicy;
  private readonly metrics: NotifyMetrics;
  private readonly log: Logger;
  private readonly sleep: (ms: number) => Promise<void>;
  /** Aborted by stop(): no attempt starts after it, and backoff waits end at once. */
  private readonly stopping = new AbortController();
  private readonly cap: RecipientCap | undefined;
  private readonly clock: () => number;

  constructor(opts: DelivererOptions) {
    this.cap = opts.cap;
    this.clock = opts.clock ?? Date.now;
    this.channels = opts.channels;
    this.policy = opts.policy ?? DEFAULT_RETRY_POLICY;
    this.metrics = notifyMetrics(opts.registry);
    this.log = opts.log;
    this.sleep = opts.sleep ?? ((ms) => defaultSleep(ms, this.stopping.signal));
  }

  channelNames(): ChannelName[] {
    return this.channels.map((c) => c.name);
  }

  /** The configured channels that reach `recipient` (none: nothing sent to them is delivered anywhere). */
  channelsReaching(recipient: Recipient): ChannelName[] {
    return this.channels.filter((c) => c.reaches(recipient)).map((c) => c.name);
  }

  /** Whether a digest may go to this recipient on this channel now (it counts against the cap). */
  digestAllowed(channel: ChannelName, recipientKey: string): boolean {
    return !this.cap || this.cap.admit(`${channel}:${recipientKey}`, "Warning", this.clock());
  }

  /** Sends one message on one channel, with the usual retries (digests). */
  async deliverOn(channel: ChannelName, n: Notification, recipient: Recipient): Promise<TargetOutcome> {
    const c = this.channels.find((x) => x.name === channel);
    const target = targetKey(n.id, channel, recipient.key);
    if (!c)
      return {
        target,
        channel,
        recipient: recipient.key,
        ok: false,
        attempts: 0,
        error: "channel not configured",
      };
    return await this.deliverOne(n, recipient, c, target, async () => {});
  }

  /**
   * Sends `n` to each target not in `done`, all concurrently: a slow or failing target never holds up or
   * repeats another. `onDelivered` runs after each success (to record it) before the outcome is returned.
   */
  async deliver(
    n: Notification,
    recipients: Recipient[],
    done: ReadonlySet<string>,
    onDelivered: (target: string) => Promise<void>,
  ): Promise<TargetOutcome[]> {
    const jobs: Promise<TargetOutcome>[] = [];
    // A delivered target is recorded at once while other targets are still in flight (a crash must not resend
    // it). The last one to finish needs no write of its own: the completion, written right after, records it.
    let running = 0;
    const marked = new Set<string>();
    const mark = async (target: string) => {
      if (running > 1) {
        await onDelivered(target);
        marked.add(target);
      }
    };
    // One mail per address: two contacts sharing a mailbox, or a member whose address differs from a
    // contact's only in case, get one copy (the first recipient's target stands for both).
    const mailed = new Set<string>();
    for (const recipient of recipients) {
      for (const channel of this.channels) {
        if (!channel.reaches(recipient)) continue;
        if (channel.name === "email" && recipient.email) {
          const address = recipient.email.toLowerCase();
          if (mailed.has(address)) continue;
          mailed.add(address);
        }
        const target = targetKey(n.id, channel.name, recipient.key);
        if (done.has(target)) continue;
        if (this.cap && channel.name !== "alertmanager" && n.kind !== "Digest") {
          if (!this.cap.admit(`${channel.name}:${recipient.key}`, n.severity, this.clock())) {
            this.log.info(
              { notification: n.id, recipient: recipient.key, channel: channel.name },
              "recipient cap reached; held for the digest",
            );
            jobs.push(
              Promise.resolve({
                target,
                channel: channel.name,
                recipient: recipient.key,
                ok: false,
                attempts: 0,
                held: true,
              }),
            );
            continue;
          }
        }
        running++;
        jobs.push(
          this.deliverOne(n, recipient, channel, target, mark).finally(() => {
            running--;
          }),
        );
      }
    }
    const settled = await Promise.allSettled(jobs);
    const interrupted = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (interrupted) {
      // Stopped mid-run: what was delivered is recorded all the same (the record stays Pending for the next
      // leader, which must not send those targets again), then the run ends without completing the record.
      for (const r of settled)
        if (r.status === "fulfilled" && r.value.ok && !marked.has(r.value.target))
          await onDelivered(r.value.target).catch(() => undefined);
      throw interrupted.reason;
    }
    return settled.map((r) => (r as PromiseFulfilledResult<TargetOutcome>).value);
  }

  private async deliverOne(
    n: Notification,
    recipient: Recipient,
    channel: Channel,
    target: string,
    onDelivered: (target: string) => Promise<void>,
  ): Promise<TargetOutcome> {
    const backoff = new Backoff({ initialMs: this.policy.initialBackoffMs, maxMs: this.policy.maxBackoffMs });
    const base = { target, channel: channel.name, recipient: recipient.key };
    const log = this.log.child({
      notification: n.id,
      kind: n.kind,
      channel: channel.name,
      recipient: recipient.key,
    });
    for (let attempt = 1; ; attempt++) {
      // Stopped (shutdown, before the Lease is released): the record stays Pending and the next leader
      // resumes it under the same keys, rather than both sending it.
      if (this.stopping.signal.aborted) throw new DeliveryStopped();
      const started = performance.now();
      try {
        const sending = channel.send(n, recipient, target);
        this.inflight.add(sending);
        try {
          await sending;
        } finally {
          this.inflight.delete(sending);
        }
        this.metrics.duration.observe({ channel: channel.name }, (performance.now() - started) / 1000);
        this.metrics.attempts.inc({ channel: channel.name, result: "success" });
        this.metrics.notifications.inc({ channel: channel.name, kind: n.kind, result: "sent" });
        log.info({ attempt }, "notification delivered");
      } catch (err) {
        this.metrics.duration.observe({ channel: channel.name }, (performance.now() - started) / 1000);
        const e = err instanceof DeliveryError ? err : new DeliveryError((err as Error).message, true);
        const final = !e.retryable || attempt >= this.policy.maxAttempts;
        this.metrics.attempts.inc({ channel: channel.name, result: final ? "failure" : "retry" });
        if (final) {
          this.metrics.notifications.inc({ channel: channel.name, kind: n.kind, result: "failed" });
          log.warn({ attempt, err: e.message, retryable: e.retryable }, "notification failed; giving up");
          return { ...base, ok: false, attempts: attempt, error: e.message };
        }
        // Retry-After is honoured up to 5 minutes (or the longest backoff, if longer): "come back tomorrow" must
        // not park the record for a day.
        const wait = Math.max(
          backoff.next(),
          Math.min(e.retryAfterMs ?? 0, Math.max(this.policy.maxBackoffMs, MAX_RETRY_AFTER_MS)),
        );
        log.info({ attempt, err: e.message, retryInMs: wait }, "notification attempt failed; retrying");
        await this.sleep(wait);
        continue;
      }
      // Sent. Recording it (a status write) may fail (a 429 in an alert storm, a timeout): that is retried on
      // its own, never by sending the message again.
      const recorded = await this.recording(() => onDelivered(target));
      if (!recorded.ok)
        log.warn(
          { err: (recorded.err as Error).message },
          "notification delivered, but recording it failed; it stays pending in the status",
        );
      return { ...base, ok: true, attempts: attempt };
    }
  }

  /**
   * Runs `write`, a status write that records what was delivered, until it succeeds, with the delivery backoff and
   * attempt budget: a failed record is retried on its own, never by sending the message again. Not ok when the
   * budget ran out (the record stays Pending, and a resume sends what it does not list as delivered).
   */
  async recording<T>(write: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; err: unknown }> {
    const backoff = new Backoff({ initialMs: this.policy.initialBackoffMs, maxMs: this.policy.maxBackoffMs });
    for (let attempt = 1; ; attempt++) {
      try {
        return { ok: true, value: await write() };
      } catch (err) {
        if (attempt >= this.policy.maxAttempts) return { ok: false, err };
        await this.sleep(backoff.next());
      }
    }
  }

  /** Sends in progress (stop waits for them: a message handed to a server is recorded before the Lease goes). */
  private readonly inflight = new Set<Promise<void>>();

  /**
   * No new attempts from now on (retries waiting on a backoff end without sending); resolves once the sends in
   * progress have finished, or after `waitMs`.
   */
  async stop(waitMs = 15_000): Promise<void> {
    this.stopping.abort();
    await settledWithin(Promise.allSettled([...this.inflight]), waitMs);
  }

  close(): void {
    this.stopping.abort();
    for (const c of this.channels) c.close?.();
  }
}
