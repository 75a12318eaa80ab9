import { describe, expect, it } from "vitest";
import type { KubeClient, KubeObject } from "./client.ts";
import { ManualClock } from "./clock.ts";
import { cutToBytes, EventRecorder } from "./events.ts";
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

describe("EventRecorder when a write fails", () => {
  it("creates the Event again after a failed create, instead of counting repeats on one that does not exist", async () => {
    const clock = new ManualClock(Date.parse("2026-12-06T05:00:00Z"));
    let fail = true;
    const created: KubeObject[] = [];
    const patched: string[] = [];
    const client = {
      create: async (_rt: unknown, obj: KubeObject) => {
        if (fail) throw new Error("429 Too Many Requests");
        created.push(obj);
        return obj;
      },
      patch: async (_rt: unknown, _ns: string, name: string) => {
        patched.push(name);
        return {};
      },
    } as unknown as KubeClient;
    const events = new EventRecorder({ client, controller: "c", instance: "t", log: silentLogger(), clock });
    events.event(app("shop"), "Warning", "ContactNotFound", "Reconcile", "contact bob not found");
    await events.flush();
    fail = false;
    clock.advance(1000);
    events.event(app("shop"), "Warning", "ContactNotFound", "Reconcile", "contact bob not found");
    await events.flush();
    expect(created).toHaveLength(1);
    expect(patched).toEqual([]);
  });

  it("cuts a note to 1,024 bytes of UTF-8, as the API server counts, never inside a character", () => {
    const note = "é".repeat(1000); // 2,000 bytes
    const cut = cutToBytes(note, 1024);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(1024);
    expect(cut).toBe("é".repeat(512));
    expect(cutToBytes(`${"a".repeat(1022)}😀`, 1024)).toBe("a".repeat(1022));
    expect(cutToBytes("short", 1024)).toBe("short");
  });
});
