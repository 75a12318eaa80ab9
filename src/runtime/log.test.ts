import { Writable } from "node:stream";
import { describe, expect, it, vi } from "vitest";
import { createLogger, lazyChild } from "./log.ts";

function memoryLogger() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: createLogger({ level: "info", destination }), lines };
}

describe("lazyChild", () => {
  it("makes no child until it is used", () => {
    const { log } = memoryLogger();
    const child = vi.spyOn(log, "child");
    const lazy = lazyChild(log, { controller: "mendixapp", name: "crm" });
    expect(child).not.toHaveBeenCalled();
    lazy.info("one");
    lazy.warn("two");
    expect(child).toHaveBeenCalledTimes(1);
  });

  it("logs with the bindings, and still redacts secrets", async () => {
    const { log, lines } = memoryLogger();
    const lazy = lazyChild(log, { controller: "mendixapp", namespace: "shop", name: "crm" });
    lazy.error({ env: { LICENSE_KEY: "k-123" }, attempt: 2 }, "reconcile failed");
    await new Promise((r) => setImmediate(r));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: "error",
      controller: "mendixapp",
      namespace: "shop",
      name: "crm",
      attempt: 2,
      env: { LICENSE_KEY: "[redacted]" },
      msg: "reconcile failed",
    });
    expect(lazy.isLevelEnabled("debug")).toBe(false);
    expect(lazy.level).toBe("info");
  });
});
