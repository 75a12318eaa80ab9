import { describe, expect, it } from "vitest";
import { Recent } from "./recent.ts";

/** A read that counts its calls and answers `answer()` (a promise settled at once). */
const counted = <V>(answer: () => Promise<V>) => {
  const read = () => {
    read.calls++;
    return answer();
  };
  read.calls = 0;
  return read;
};

describe("Recent", () => {
  it("reuses a kept result within the ttl and reads again after it", async () => {
    let t = 0;
    const recent = new Recent<{ ok: boolean }>({ ttlMs: 1000, keep: (v) => v.ok, now: () => t });
    const read = counted(async () => ({ ok: true }));
    expect(await recent.get("a", read)).toEqual({ ok: true });
    t = 999;
    await recent.get("a", read);
    expect(read.calls).toBe(1);
    t = 1000;
    await recent.get("a", read);
    expect(read.calls).toBe(2);
  });

  it("shares a read in flight between its callers", async () => {
    const recent = new Recent<number>({ ttlMs: 1000, keep: () => true, now: () => 0 });
    let resolve: (v: number) => void = () => {};
    const read = counted(() => new Promise<number>((r) => (resolve = r)));
    const both = Promise.all([recent.get("a", read), recent.get("a", read)]);
    resolve(7);
    expect(await both).toEqual([7, 7]);
    expect(read.calls).toBe(1);
  });

  it("keeps results per key", async () => {
    const recent = new Recent<string>({ ttlMs: 1000, keep: () => true, now: () => 0 });
    expect(await recent.get("a", async () => "A")).toBe("A");
    expect(await recent.get("b", async () => "B")).toBe("B");
    expect(await recent.get("a", async () => "other")).toBe("A");
  });

  it("reads again after a result keep refuses, and after a failed read", async () => {
    const recent = new Recent<{ ok: boolean }>({ ttlMs: 1000, keep: (v) => v.ok, now: () => 0 });
    const refused = counted(async () => ({ ok: false }));
    expect(await recent.get("a", refused)).toEqual({ ok: false });
    expect(await recent.get("a", refused)).toEqual({ ok: false });
    expect(refused.calls).toBe(2);
    const failing = counted(() => Promise.reject(new Error("unreachable")));
    await expect(recent.get("b", failing)).rejects.toThrow("unreachable");
    await expect(recent.get("b", failing)).rejects.toThrow("unreachable");
    expect(failing.calls).toBe(2);
    expect(recent.size).toBe(0);
  });

  it("sweeps expired entries once it holds sweepAt keys", async () => {
    let t = 0;
    const recent = new Recent<number>({ ttlMs: 10, keep: () => true, now: () => t, sweepAt: 3 });
    for (const k of ["a", "b", "c"]) await recent.get(k, async () => 1);
    expect(recent.size).toBe(3);
    t = 10;
    await recent.get("d", async () => 1);
    expect(recent.size).toBe(1);
  });
});
