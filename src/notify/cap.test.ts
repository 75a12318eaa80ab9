import { describe, expect, it } from "vitest";
import { RecipientCap } from "./cap.ts";

const HOUR = 3_600_000;

describe("RecipientCap", () => {
  it("admits up to the limit per recipient in a sliding window", () => {
    const cap = new RecipientCap(2, HOUR);
    expect([0, 1, 2].map((t) => cap.admit("alice", "Warning", t))).toEqual([true, true, false]);
    expect(cap.admit("bob", "Warning", 3)).toBe(true);
    expect(cap.hasRoom("alice", HOUR - 1)).toBe(false);
    expect(cap.hasRoom("alice", HOUR)).toBe(true);
    expect(cap.admit("alice", "Ok", HOUR + 1)).toBe(true);
  });

  it("never holds back a critical alert, but counts it", () => {
    const cap = new RecipientCap(1, HOUR);
    expect(cap.admit("alice", "Critical", 0)).toBe(true);
    expect(cap.admit("alice", "Critical", 1)).toBe(true);
    expect(cap.admit("alice", "Warning", 2)).toBe(false);
  });

  it("is off with a limit of 0", () => {
    const cap = new RecipientCap(0, HOUR);
    expect(Array.from({ length: 100 }, (_, t) => cap.admit("alice", "Warning", t)).every(Boolean)).toBe(true);
  });
});
