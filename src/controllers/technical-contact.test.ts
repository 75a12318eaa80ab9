import { describe, expect, it } from "vitest";
import { NotificationRecord } from "../api/common.ts";
import type { TechnicalContact } from "../api/technical-contact.ts";
import { recordIntents } from "../notify/outbox.ts";
import { nonceOfTestRecord, testNonce, testNotification } from "./technical-contact.ts";

const contact = {
  apiVersion: "mxops.dev/v1alpha1",
  kind: "TechnicalContact",
  metadata: { name: "carol", namespace: "apps", uid: "0b7c6f1e-5d2a-4c8e-9f3b-2a1d4e5f6a7b" },
  spec: { displayName: "Carol", mxid: "carol@example.com", email: "carol@example.com" },
} as unknown as TechnicalContact;

describe("test messages", () => {
  it("answers any send-test value: slashes survive, a long one is cut with a hash, the record fits its schema", () => {
    for (const value of ["1", "05/01/24", "run/42/retry", "x".repeat(1000)]) {
      const n = testNotification(contact, value, Date.parse("2026-11-27T10:00:00Z"));
      expect(n.id.length).toBeLessThanOrEqual(253);
      // What the record says it answered is what the reconcile compares status.lastTest.nonce with.
      expect(nonceOfTestRecord(n.id)).toBe(testNonce(contact, value));
      const [record] = recordIntents([], [n], new Date("2026-11-27T10:00:00Z"));
      expect(NotificationRecord.safeParse(record).success).toBe(true);
    }
    expect(testNonce(contact, "05/01/24")).toBe("05/01/24");
    expect(testNonce(contact, "x".repeat(1000))).not.toBe(testNonce(contact, `${"x".repeat(999)}y`));
  });
});
