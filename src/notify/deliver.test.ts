import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../runtime/log.ts";
import { type Channel, DeliveryError } from "./channels.ts";
import { Deliverer } from "./deliver.ts";
import type { Notification, Recipient } from "./message.ts";
import { NotificationSender } from "./sender.ts";

/** A channel whose sends finish when the test says so. */
function gatedChannel(name: "email" | "webhook") {
  const gates = new Map<string, () => void>();
  const channel: Channel = {
    name,
    reaches: () => true,
    send: (_n, _r, deliveryId) => new Promise<void>((resolve) => gates.set(deliveryId, resolve)),
  };
  return { channel, gates };
}

/** A channel that reaches everyone and counts its sends; `onSend` (given the count so far) may throw to fail one. */
function countingChannel(name: "email" | "webhook", onSend: (sends: number) => void = () => undefined) {
  const counted = {
    sends: 0,
    channel: {
      name,
      reaches: () => true,
      send: async () => {
        counted.sends++;
        onSend(counted.sends);
      },
    } as Channel,
  };
  return counted;
}

const notification: Notification = {
  id: "reminder/uid/2030-01-01/30",
  kind: "LicenseReminder",
  severity: "Warning",
  title: "t",
  body: "b",
  occurredAt: "2026-11-27T00:00:00Z",
};
const alice: Recipient = { key: "contact:alice", displayName: "Alice", email: "alice@example.com" };
const tick = () => new Promise((r) => setImmediate(r));

describe("Deliverer", () => {
  it("records a delivered target at once while others are in flight, and leaves the last to the completion", async () => {
    const email = gatedChannel("email");
    const webhook = gatedChannel("webhook");
    const d = new Deliverer({
      channels: [email.channel, webhook.channel],
      registry: new Registry(),
      log: silentLogger(),
    });
    const marked: string[] = [];
    const run = d.deliver(notification, [alice], new Set(), async (t) => {
      marked.push(t);
    });
    await tick();
    expect(email.gates.size).toBe(1);
    expect(webhook.gates.size).toBe(1);
    [...email.gates.values()][0]?.();
    await tick();
    expect(marked).toHaveLength(1); // the webhook is still in flight: a crash now must not resend the email
    [...webhook.gates.values()][0]?.();
    const outcomes = await run;
    expect(marked).toHaveLength(1); // the completion write records the webhook target
    expect(outcomes.map((o) => o.ok)).toEqual([true, true]);
  });

  it("retries recording a delivered target, never by sending the message again", async () => {
    const counting = countingChannel("email");
    const webhook = gatedChannel("webhook"); // a second target, so the first is recorded on its own
    const d = new Deliverer({
      channels: [counting.channel, webhook.channel],
      registry: new Registry(),
      log: silentLogger(),
      sleep: async () => undefined,
    });
    let writes = 0;
    const run = d.deliver(notification, [alice], new Set(), async () => {
      writes++;
      if (writes < 3) throw new Error("429 Too Many Requests"); // the status write fails twice
    });
    await tick();
    await tick();
    [...webhook.gates.values()][0]?.();
    const outcomes = await run;
    expect(counting.sends).toBe(1);
    expect(writes).toBe(3);
    expect(outcomes.map((o) => o.ok)).toEqual([true, true]);
  });

  it("after stop() starts no attempt: a retry waiting on its backoff ends without sending", async () => {
    const failing = countingChannel("email", () => {
      throw new Error("451 try again later");
    });
    // The real backoff wait (30-60 s, past the test's timeout), which stop() must cut short.
    const d = new Deliverer({
      channels: [failing.channel],
      registry: new Registry(),
      log: silentLogger(),
      policy: { maxAttempts: 8, initialBackoffMs: 60_000, maxBackoffMs: 60_000 },
    });
    const run = d.deliver(notification, [alice], new Set(), async () => undefined);
    await tick();
    expect(failing.sends).toBe(1);
    d.stop();
    await expect(run).rejects.toThrow(/stopping; the delivery resumes later/);
    expect(failing.sends).toBe(1);
  });

  it("on stop() waits for a send in progress and records it, though the run ends without completing", async () => {
    const email = gatedChannel("email");
    const failingHook = countingChannel("webhook", () => {
      throw new Error("HTTP 503");
    });
    const d = new Deliverer({
      channels: [email.channel, failingHook.channel],
      registry: new Registry(),
      log: silentLogger(),
      policy: { maxAttempts: 8, initialBackoffMs: 60_000, maxBackoffMs: 60_000 },
    });
    const marked: string[] = [];
    const run = d.deliver(notification, [alice], new Set(), async (t) => {
      marked.push(t);
    });
    run.catch(() => undefined);
    await tick();
    expect(email.gates.size).toBe(1); // the mail is with the server
    let stopped = false;
    const stopping = d.stop().then(() => {
      stopped = true;
    });
    await tick();
    expect(stopped).toBe(false); // waits for the mail in progress
    [...email.gates.values()][0]?.();
    await stopping;
    await expect(run).rejects.toThrow(/stopping/);
    expect(marked).toEqual([`${notification.id}/email/contact:alice`]);
    expect(failingHook.sends).toBe(1);
  });

  it("mails an address once, however many recipients share it", async () => {
    const to: string[] = [];
    const mail: Channel = {
      name: "email",
      reaches: (r) => !!r.email,
      send: async (_n, r) => {
        to.push(r.email ?? "");
      },
    };
    const d = new Deliverer({ channels: [mail], registry: new Registry(), log: silentLogger() });
    const backup: Recipient = { key: "contact:alice-backup", displayName: "Ops", email: "Alice@Example.com" };
    const member: Recipient = { key: "user:ALICE@example.com", displayName: "a", email: "ALICE@example.com" };
    const bob: Recipient = { key: "contact:bob", displayName: "Bob", email: "bob@example.com" };
    const outcomes = await d.deliver(
      notification,
      [alice, backup, member, bob],
      new Set(),
      async () => undefined,
    );
    expect(to).toEqual(["alice@example.com", "bob@example.com"]);
    expect(outcomes.map((o) => o.recipient)).toEqual(["contact:alice", "contact:bob"]);
    // Resumed after alice's copy went out: the others sharing her address stay skipped.
    to.length = 0;
    await d.deliver(
      notification,
      [alice, backup, bob],
      new Set([outcomes[0]?.target ?? ""]),
      async () => undefined,
    );
    expect(to).toEqual(["bob@example.com"]);
  });

  it("honours Retry-After only up to 5 minutes (or the longest backoff, if longer)", async () => {
    const busy = countingChannel("webhook", (sends) => {
      if (sends < 3) throw new DeliveryError("429 Too Many Requests", true, 86_400_000); // "tomorrow"
    });
    const waits: number[] = [];
    const d = new Deliverer({
      channels: [busy.channel],
      registry: new Registry(),
      log: silentLogger(),
      policy: { maxAttempts: 5, initialBackoffMs: 10, maxBackoffMs: 120_000 },
      sleep: async (ms) => {
        waits.push(ms);
      },
    });
    const [outcome] = await d.deliver(notification, [alice], new Set(), async () => undefined);
    expect(outcome).toMatchObject({ ok: true, attempts: 3 });
    expect(waits).toEqual([300_000, 300_000]);
  });

  it("writes nothing per target for a single target: the completion records it", async () => {
    const email = gatedChannel("email");
    const d = new Deliverer({ channels: [email.channel], registry: new Registry(), log: silentLogger() });
    const marked: string[] = [];
    const run = d.deliver(notification, [alice], new Set(), async (t) => {
      marked.push(t);
    });
    await tick();
    [...email.gates.values()][0]?.();
    const outcomes = await run;
    expect(marked).toEqual([]);
    expect(outcomes).toMatchObject([{ ok: true, channel: "email", recipient: "contact:alice" }]);
  });
});

describe("NotificationSender.reachable", () => {
  it("keeps what some configured channel reaches and counts the rest as unreachable", async () => {
    const email: Channel = { name: "email", reaches: (r) => !!r.email, send: async () => {} };
    const webhook: Channel = { name: "webhook", reaches: (r) => !!r.webhook, send: async () => {} };
    const registry = new Registry();
    const log = silentLogger();
    const sender = (channels: Channel[]) =>
      new NotificationSender({
        client: undefined as never, // not used by reachable()
        events: undefined as never,
        deliverer: new Deliverer({ channels, registry, log }),
        log,
        registry,
      });
    const hooked: Recipient = {
      key: "contact:bob",
      displayName: "Bob",
      webhook: { url: "http://x", secret: "" },
    };
    const second: Notification = { ...notification, id: "contact-added/uid/bob/1", kind: "ContactAssigned" };
    const to = (n: Notification) => (n.id === second.id ? [hooked] : [alice]);

    expect(
      sender([email, webhook])
        .reachable([notification, second], to)
        .map((n) => n.id),
    ).toEqual([notification.id, second.id]);
    expect(sender([email]).channelsReaching(alice)).toEqual(["email"]);
    // Email off: only the webhook reaches anyone.
    expect(
      sender([webhook])
        .reachable([notification, second], to)
        .map((n) => n.id),
    ).toEqual([second.id]);
    expect(sender([]).reachable([second], () => [])).toEqual([]);
    const counted = (await registry.getSingleMetric("mxops_notifications_total")?.get())?.values;
    expect(
      counted?.filter((v) => v.labels.result === "unreachable").map((v) => [v.labels.kind, v.value]),
    ).toEqual([
      ["LicenseReminder", 1],
      ["ContactAssigned", 1],
    ]);
  });
});
