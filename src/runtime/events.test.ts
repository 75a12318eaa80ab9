import { describe, expect, it } from "vitest";
import type { KubeClient, KubeObject } from "./client.ts";
import { ManualClock } from "./clock.ts";
import { EventRecorder } from "./events.ts";
import { silentLogger } from "./log.ts";

// The names the recorder gives new Events (what it sends is checked against a real API server in
// test/integration/runtime.test.ts); the client here only keeps what it is given.
function recorder(clock: ManualClock) {
  const created: KubeObject[] = [];
  const client = {
    create: async (_rt: unknown, obj: KubeObject) => {
      created.push(obj);
      return obj;
    },
  } as unknown as KubeClient;
  const events = new EventRecorder({
    client,
    controller: "mxops.dev/test",
    instance: "t",
    log: silentLogger(),
    clock,
  });
  return { events, names: () => created.map((e) => e.metadata.name) };
}

const app = (name: string): KubeObject => ({ metadata: { name, namespace: "ns", uid: `uid-${name}` } });
// A DNS subdomain, as the API server requires of an Event's name.
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

describe("EventRecorder's Event names", () => {
  it("are the object's name and the time, distinct for events of one object within a millisecond", () => {
    const clock = new ManualClock(Date.parse("2026-12-06T05:00:00Z"));
    const { events, names } = recorder(clock);
    events.event(app("shop"), "Normal", "LicenseActivated", "Reconcile", "activated");
    events.event(app("shop"), "Warning", "ContactNotFound", "Reconcile", "contact bob not found");
    clock.advance(1);
    events.event(app("shop"), "Normal", "Other", "Reconcile", "later");
    const [a, b, c] = names();
    expect(a).toMatch(/^shop\.[0-9a-f]+$/);
    expect(new Set([a, b, c]).size).toBe(3);
  });

  it("stay valid and within 253 characters for the longest object names", () => {
    const { events, names } = recorder(new ManualClock(Date.parse("2026-12-06T05:00:00Z")));
    // Cut anywhere near the end, a name like this leaves a '-' or '.' the cut must not end a label with.
    for (let i = 0; i < 20; i++) {
      const long = `${"a".repeat(230 + i)}-b.c-d-e-f-g-h-i-j-k-l`.slice(0, 253);
      events.event(app(long), "Normal", "R", "A", "n");
    }
    for (const name of names()) {
      expect(name.length).toBeLessThanOrEqual(253);
      expect(name).toMatch(DNS_SUBDOMAIN);
    }
  });
});
