// Sends what the outbox holds: intents are written to the owner's status before any delivery, each delivered
// target is recorded as soon as it succeeds, and pending intents found after a restart are sent again with the
// same idempotency keys (at-least-once; a duplicate only from the window between send and record).

import { createHash } from "node:crypto";
import type { Registry } from "prom-client";
import type { NotificationRecord } from "../api/common.ts";
import { isConflict, type KubeClient, type KubeObject, type ResourceType } from "../runtime/client.ts";
import { type Clock, isoSeconds, systemClock } from "../runtime/clock.ts";
import type { EventRecorder } from "../runtime/events.ts";
import type { Logger } from "../runtime/log.ts";
import { type Condition, deepEqual, mergePatch, setCondition } from "../runtime/status.ts";
import { type Deliverer, DeliveryStopped, notifyMetrics, type TargetOutcome } from "./deliver.ts";
import type { ChannelName, Notification, Recipient } from "./message.ts";
import {
  complete,
  isUrgent,
  markDelivered,
  outboxRoom,
  pendingRecords,
  recordIntents,
  releaseHeld,
  toNotification,
  urgentRoom,
} from "./outbox.ts";

interface HeldItem {
  owner: Owner;
  recordId: string;
  target: string;
  title: string;
  occurredAt: string;
}

interface HeldBook {
  channel: ChannelName;
  recipient: Recipient;
  items: Map<string, HeldItem>;
}

export interface Owner {
  rt: ResourceType;
  namespace: string;
  name: string;
}

export interface OwnerStatus {
  notifications?: NotificationRecord[];
  conditions?: Condition[];
  [key: string]: unknown;
}

export type OwnerObject = KubeObject & { status?: OwnerStatus };

export interface SubmitOptions {
  /** Resolved when delivery starts, so a contact changed meanwhile is honoured. */
  recipients: () => Promise<Recipient[]>;
  /** Adjusts the owner's status in the same write that closes the record (e.g. a test message's result). */
  onComplete?: (status: OwnerStatus, record: NotificationRecord, outcomes: TargetOutcome[]) => void;
}

interface WriteQueue {
  pending: {
    mutate: (status: OwnerStatus) => void;
    hint?: OwnerObject;
    resolve: (obj: OwnerObject | undefined) => void;
    reject: (err: unknown) => void;
  }[];
  running: boolean;
}

/**
 * Closes a delivery run in the owner's status: the record completed with the run's outcomes, and the
 * NotificationFailed condition True for this run's failures (or nobody left to send to), False once a run
 * delivers, and left as it is when only an earlier run's failures remain (a record its held targets kept
 * Pending). Returns whether it closed as Failed with nobody to send it to.
 */
function closeRun(
  status: OwnerStatus,
  record: NotificationRecord,
  outcomes: TargetOutcome[],
  now: Date,
): boolean {
  status.notifications = complete(status.notifications ?? [], record.id, outcomes, now);
  const closed = status.notifications.find((r) => r.id === record.id);
  const failedNow = outcomes.some((o) => !o.ok && !o.held);
  const failedBefore = !failedNow && !!closed?.failed?.length;
  const nobody = !failedNow && !failedBefore && closed?.state === "Failed";
  const condition = (state: "True" | "False", reason: string, message: string) => {
    status.conditions = setCondition(
      status.conditions,
      { type: "NotificationFailed", status: state, reason, message: message.slice(0, 2048) },
      now,
    );
  };
  if (failedNow || nobody)
    condition(
      "True",
      "DeliveryFailed",
      `${record.kind} ${record.id}: ${closed?.message ?? "delivery failed"}`,
    );
  else if (
    !failedBefore &&
    status.conditions?.some((c) => c.type === "NotificationFailed" && c.status === "True")
  )
    condition("False", "Delivered", `${record.kind} ${record.id} delivered`);
  return nobody;
}

export class NotificationSender {
  private readonly client: KubeClient;
  private readonly deliverer: Deliverer;
  private readonly events: EventRecorder;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly registry: Registry;
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly pendingSince = new Map<string, number>();
  private readonly writes = new Map<string, WriteQueue>();
  /** Targets held by the recipient cap, per channel and recipient, waiting for a digest. */
  private readonly held = new Map<string, HeldBook>();
  private digestTimer: NodeJS.Timeout | undefined;

  constructor(opts: {
    client: KubeClient;
    deliverer: Deliverer;
    events: EventRecorder;
    log: Logger;
    registry: Registry;
    clock?: Clock;
  }) {
    this.client = opts.client;
    this.deliverer = opts.deliverer;
    this.events = opts.events;
    this.log = opts.log;
    this.registry = opts.registry;
    this.clock = opts.clock ?? systemClock;
  }

  /**
   * Writes Pending records for `notifications` to the owner's status (ids already there are kept as they are),
   * with `also` applied in the same write: the bookkeeping that says they are due no more (reminders sent...).
   */
  async record(
    owner: Owner,
    notifications: Notification[],
    also?: (status: OwnerStatus) => void,
  ): Promise<OwnerObject | undefined> {
    return await this.update(owner, (status) => {
      status.notifications = recordIntents(status.notifications, notifications, new Date(this.clock.now()));
      also?.(status);
    });
  }

  /**
   * Records as many of `notifications` as the outbox has room for (in order; ones already recorded count as
   * recorded), calls `also` with the ids recorded so the caller can keep the rest for a later attempt in the
   * same write, and returns the object written and how many were deferred.
   */
  async recordFitting(
    owner: Owner,
    notifications: Notification[],
    also: (status: OwnerStatus, recorded: ReadonlySet<string>) => void,
    /**
     * Whether the stored status is still the one the notifications were decided from; if not (a write of ours
     * whose watch event the cache has not seen yet), nothing is written and `stale` says so, so the caller
     * decides again from the stored state rather than notify a change twice under another id.
     */
    decidedFrom?: (status: OwnerStatus) => boolean,
  ): Promise<{ object: OwnerObject | undefined; deferred: number; stale: boolean }> {
    let deferred = 0;
    let stale = false;
    const object = await this.update(owner, (status) => {
      stale = decidedFrom ? !decidedFrom(status) : false;
      if (stale) return;
      const known = new Set((status.notifications ?? []).map((r) => r.id));
      let room = outboxRoom(status.notifications);
      let urgent = urgentRoom(status.notifications);
      const fitting: Notification[] = [];
      // Critical alerts and recoveries first: room a storm's Warnings would take is theirs before it is.
      for (const n of [...notifications.filter(isUrgent), ...notifications.filter((x) => !isUrgent(x))]) {
        if (known.has(n.id)) fitting.push(n);
        else if (isUrgent(n) ? urgent > 0 : room > 0) {
          fitting.push(n);
          room--;
          urgent--;
        }
      }
      deferred = notifications.length - fitting.length;
      status.notifications = recordIntents(status.notifications, fitting, new Date(this.clock.now()));
      also(status, new Set(fitting.map((n) => n.id)));
    });
    return { object, deferred, stale };
  }

  /** The configured channels that reach `recipient`. */
  channelsReaching(recipient: Recipient): ChannelName[] {
    return this.deliverer.channelsReaching(recipient);
  }

  /**
   * The notifications some configured channel reaches (for each, `recipientsOf` tells who it goes to, as far
   * as known without reading Secrets). The rest are not recorded: a record would say Sent with nothing sent,
   * and cost a status write to close. They are counted (channel "none", result "unreachable"); the contact's
   * Reachable condition says why.
   */
  reachable(notifications: Notification[], recipientsOf: (n: Notification) => Recipient[]): Notification[] {
    return notifications.filter((n) => {
      if (recipientsOf(n).some((r) => this.deliverer.channelsReaching(r).length)) return true;
      notifyMetrics(this.registry).notifications.inc({
        channel: "none",
        kind: n.kind,
        result: "unreachable",
      });
      return false;
    });
  }

  /** Starts delivering every Pending record of `obj` not already being delivered by this process. */
  resume(owner: Owner, obj: OwnerObject, opts: (r: NotificationRecord) => SubmitOptions): void {
    for (const record of pendingRecords(obj.status?.notifications)) this.submit(owner, record, opts(record));
  }

  /**
   * Delivers a Pending `record` of `owner` in the background. `fresh`: the owner as a write of this process
   * just returned it (authoritative, so delivery need not read it again).
   */
  submit(owner: Owner, record: NotificationRecord, opts: SubmitOptions, fresh?: OwnerObject): void {
    const key = `${owner.rt.plural}/${owner.namespace}/${owner.name}/${record.id}`;
    if (this.inflight.has(key)) return;
    this.pendingSince.set(key, Date.parse(record.createdAt) || this.clock.now());
    this.updateOldestPending();
    const run = this.deliver(owner, record, opts, fresh)
      .catch((err: unknown) => {
        // The record stays Pending in status: the next reconcile (or the next leader) resumes it.
        if (err instanceof DeliveryStopped)
          this.log.info(
            { notification: record.id },
            "delivery stopped for shutdown; the next leader resumes it",
          );
        else
          this.log.error({ err, notification: record.id }, "notification delivery interrupted; will resume");
      })
      .finally(() => {
        this.inflight.delete(key);
        this.pendingSince.delete(key);
        this.updateOldestPending();
      });
    this.inflight.set(key, run);
  }

  /** Checks every `everyMs` whether held targets can go out as a digest. */
  startDigests(everyMs: number): void {
    this.digestTimer = setInterval(
      () =>
        void this.sendDigests().catch((err: unknown) =>
          this.log.warn(
            { err: (err as Error).message },
            "digest round interrupted; the held items stay held",
          ),
        ),
      everyMs,
    );
    this.digestTimer.unref();
  }

  stop(): void {
    if (this.digestTimer) clearInterval(this.digestTimer);
  }

  heldCount(): number {
    return [...this.held.values()].reduce((n, b) => n + b.items.size, 0);
  }

  /** One digest per channel and recipient whose cap has room again, carrying every target held for them. */
  async sendDigests(): Promise<void> {
    // One round at a time: a round retrying a digest for minutes must not be joined by the next, which would
    // send the same held items again.
    if (this.digesting) return;
    this.digesting = true;
    try {
      await this.digestRound();
    } finally {
      this.digesting = false;
    }
  }

  private digesting = false;

  private async digestRound(): Promise<void> {
    for (const [key, book] of [...this.held]) {
      if (book.items.size === 0) {
        this.held.delete(key);
        continue;
      }
      if (!this.deliverer.digestAllowed(book.channel, book.recipient.key)) continue;
      const items = [...book.items.values()];
      const digest: Notification = {
        id: `digest/${createHash("sha256")
          .update(items.map((i) => i.target).join("\n"))
          .digest("hex")
          .slice(0, 24)}`,
        kind: "Digest",
        severity: "Warning",
        title: `${items.length} notification(s) held back by the hourly limit`,
        body: [
          `These notifications exceeded your hourly limit and are summarised here (critical alerts are never held back):`,
          ...items.map((i) => `- ${i.occurredAt} ${i.title} [${i.recordId}]`),
        ].join("\n"),
        occurredAt: isoSeconds(this.clock.now()),
      };
      const outcome = await this.deliverer.deliverOn(book.channel, digest, book.recipient);
      if (!outcome.ok) continue; // stays held; the next round tries again
      for (const item of items) {
        book.items.delete(item.target);
        await this.update(item.owner, (status) => {
          status.notifications = releaseHeld(
            status.notifications ?? [],
            item.recordId,
            item.target,
            new Date(this.clock.now()),
          );
        }).catch((err: unknown) => {
          this.log.warn(
            { err: (err as Error).message, target: item.target },
            "could not record a digest delivery",
          );
        });
      }
    }
  }

  /** Resolves when every delivery started so far has finished (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.inflight.size) await Promise.all([...this.inflight.values()]);
  }

  inflightCount(): number {
    return this.inflight.size;
  }

  private updateOldestPending(): void {
    const oldest = Math.min(...this.pendingSince.values());
    notifyMetrics(this.registry).oldestPending.set(
      Number.isFinite(oldest) ? Math.max(0, (this.clock.now() - oldest) / 1000) : 0,
    );
  }

  private async deliver(
    owner: Owner,
    submitted: NotificationRecord,
    opts: SubmitOptions,
    fresh?: OwnerObject,
  ): Promise<void> {
    // A copy from a cache may be stale: only the stored record says what is still to do.
    const current = fresh ?? (await this.client.get<OwnerObject>(owner.rt, owner.namespace, owner.name));
    const record = current?.status?.notifications?.find((r) => r.id === submitted.id);
    if (record?.state !== "Pending") return;
    // The newest copy this process knows: writes below try it first and read again only on a conflict.
    let latest: OwnerObject | undefined = current;
    const recipients = await opts.recipients();
    const outcomes = await this.deliverer.deliver(
      toNotification(record),
      recipients,
      // Delivered targets are done; so are failed ones (a record Pending only for its held targets): a resume
      // must not send or count them again.
      new Set([...(record.delivered ?? []), ...(record.failed ?? [])]),
      async (target) => {
        latest =
          (await this.update(
            owner,
            (status) => {
              status.notifications = markDelivered(status.notifications ?? [], record.id, target);
            },
            latest,
          )) ?? latest;
      },
    );
    // A target held before and delivered now (its record resumed once the cap had room) is no digest's any more.
    for (const o of outcomes.filter((x) => x.ok && !x.held))
      this.held.get(`${o.channel}:${o.recipient}`)?.items.delete(o.target);
    for (const o of outcomes.filter((x) => x.held)) {
      const recipient = recipients.find((r) => r.key === o.recipient);
      if (!recipient) continue;
      const bookKey = `${o.channel}:${o.recipient}`;
      const book = this.held.get(bookKey) ?? { channel: o.channel, recipient, items: new Map() };
      book.items.set(o.target, {
        owner,
        recordId: record.id,
        target: o.target,
        title: record.title,
        occurredAt: record.occurredAt,
      });
      this.held.set(bookKey, book);
    }
    const failed = outcomes.filter((o) => !o.ok && !o.held);
    // Closed as Failed with no target failing: nobody was left to send it to.
    let nobody = false;
    const now = new Date(this.clock.now());
    // The write that closes the record also records the targets delivered without a write of their own (a
    // single target, the last to finish): retried like those, or a failed write would send them again.
    const closing = await this.deliverer.recording(() =>
      this.update(
        owner,
        (status) => {
          nobody = closeRun(status, record, outcomes, now);
          const closed = status.notifications?.find((r) => r.id === record.id);
          if (closed) opts.onComplete?.(status, closed, outcomes);
        },
        latest,
      ),
    );
    if (!closing.ok) throw closing.err;
    const obj = closing.value;
    const delivered = outcomes.filter((o) => o.ok);
    if (obj && delivered.length && !failed.length) {
      this.events.event(
        obj,
        "Normal",
        "NotificationSent",
        "Notify",
        `${record.kind} delivered: ${delivered.map((o) => `${o.channel} to ${o.recipient}`).join(", ")}`,
      );
    }
    if (obj && (failed.length || nobody)) {
      this.events.event(
        obj,
        "Warning",
        "NotificationFailed",
        "Notify",
        `${record.kind} could not be delivered: ${
          nobody
            ? "nobody to send it to (its recipients were removed or none of their channels is on)"
            : failed.map((o) => `${o.channel} to ${o.recipient}: ${o.error}`).join("; ")
        }`,
      );
    }
    if (!recipients.length) this.log.warn({ notification: record.id }, "notification had no recipients");
  }

  /**
   * Read-modify-write of the owner's status from the API server (never the cache: the outbox must not go
   * back in time), serialized per owner in this process and guarded by resourceVersion across processes.
   * Changes that queue up behind a write to the same owner go together in the next one: an alert storm's
   * deliveries complete in a few writes, not one each.
   */
  private update(owner: Owner, mutate: (status: OwnerStatus) => void, hint?: OwnerObject) {
    const key = `${owner.rt.plural}/${owner.namespace}/${owner.name}`;
    let queue = this.writes.get(key);
    if (!queue) {
      queue = { pending: [], running: false };
      this.writes.set(key, queue);
    }
    const q = queue;
    return new Promise<OwnerObject | undefined>((resolve, reject) => {
      q.pending.push({ mutate, hint, resolve, reject });
      if (!q.running) void this.drain(key, owner, q);
    });
  }

  private async drain(key: string, owner: Owner, q: WriteQueue): Promise<void> {
    q.running = true;
    while (q.pending.length) {
      const batch = q.pending.splice(0);
      // One change may start from its caller's copy; several read the owner once.
      const hint = batch.length === 1 ? batch[0]?.hint : undefined;
      try {
        const obj = await this.updateNow(
          owner,
          (status) => {
            for (const w of batch) w.mutate(status);
          },
          hint,
        );
        for (const w of batch) w.resolve(obj);
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    q.running = false;
    if (this.writes.get(key) === q) this.writes.delete(key);
  }

  /** Read-mutate-write of the owner's status, guarded by its resourceVersion; `hint` saves the first read. */
  private async updateNow(
    owner: Owner,
    mutate: (status: OwnerStatus) => void,
    hint?: OwnerObject,
  ): Promise<OwnerObject | undefined> {
    for (let attempt = 1; ; attempt++) {
      const obj =
        attempt === 1 && hint
          ? hint
          : await this.client.get<OwnerObject>(owner.rt, owner.namespace, owner.name);
      if (!obj) return undefined; // the owner is gone: nothing left to notify about
      const before = obj.status ?? {};
      const after: OwnerStatus = structuredClone(before);
      mutate(after);
      if (deepEqual(before, after)) return obj;
      try {
        return await this.client.patch<OwnerObject>(
          owner.rt,
          owner.namespace,
          owner.name,
          { metadata: { resourceVersion: obj.metadata.resourceVersion }, status: mergePatch(before, after) },
          "merge",
          { subresource: "status" },
        );
      } catch (err) {
        if (!isConflict(err) || attempt >= 10) throw err;
      }
    }
  }
}
