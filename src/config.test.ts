import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, SETTINGS, settingsMarkdownTable } from "./config.ts";

describe("loadConfig", () => {
  it("uses kubebuilder's ports and sensible defaults", () => {
    const c = loadConfig([], {});
    expect(c.metricsBindAddress).toBe(":8080");
    expect(c.healthProbeBindAddress).toBe(":8081");
    expect(c.leaderElect).toBe(false);
    expect(c.leaseDuration).toBe(15_000);
    expect(c.renewDeadline).toBe(10_000);
    expect(c.retryPeriod).toBe(2_000);
    expect(c.namespaces).toEqual([]);
  });

  it("reads MXOPS_* variables, and flags win over them", () => {
    const env = {
      MXOPS_METRICS_BIND_ADDRESS: "127.0.0.1:9090",
      MXOPS_NAMESPACES: "a, b",
      MXOPS_LEADER_ELECT: "true",
    };
    expect(loadConfig([], env)).toMatchObject({
      metricsBindAddress: "127.0.0.1:9090",
      namespaces: ["a", "b"],
      leaderElect: true,
    });
    const c = loadConfig(["--metrics-bind-address=:7000", "--namespaces", "c", "--leader-elect=false"], env);
    expect(c).toMatchObject({ metricsBindAddress: ":7000", namespaces: ["c"], leaderElect: false });
  });

  it("takes a bare boolean flag as true and 0 as a disabled address", () => {
    expect(loadConfig(["--leader-elect", "--metrics-bind-address=0"], {})).toMatchObject({
      leaderElect: true,
      metricsBindAddress: "",
    });
  });

  it("names the flag, the variable and the rule for bad values, all at once", () => {
    const bad = () =>
      loadConfig(["--lease-duration=soon"], {
        MXOPS_METRICS_BIND_ADDRESS: "localhost",
        MXOPS_LOG_LEVEL: "loud",
      });
    expect(bad).toThrow(ConfigError);
    expect(bad).toThrow(
      /--lease-duration \(--lease-duration \/ MXOPS_LEASE_DURATION\) = "soon": must be a duration/,
    );
    expect(bad).toThrow(/MXOPS_METRICS_BIND_ADDRESS .*"localhost": must be host:port/);
    expect(bad).toThrow(/MXOPS_LOG_LEVEL .*"loud"/);
  });

  it("refuses an empty or non-decimal number instead of reading it as 0, and ports past 65535", () => {
    // An empty variable (a Helm value left unset) must not turn the webhook or the notification cap off.
    expect(() => loadConfig([], { MXOPS_WEBHOOK_PORT: "" })).toThrow(
      /MXOPS_WEBHOOK_PORT \(--webhook-port \/ MXOPS_WEBHOOK_PORT\) = "": must be a whole number/,
    );
    expect(() => loadConfig(["--notify-hourly-cap="], {})).toThrow(
      /--notify-hourly-cap .*= "": must be a whole number/,
    );
    expect(() => loadConfig(["--webhook-port=1e3"], {})).toThrow(/"1e3": must be a whole number/);
    expect(() => loadConfig(["--webhook-port=70000"], {})).toThrow(/"70000": must be at most 65535/);
    expect(() => loadConfig(["--metrics-bind-address=:70000"], {})).toThrow(
      /--metrics-bind-address .*":70000": must be host:port, :port \(port 0-65535\)/,
    );
    expect(loadConfig([], { MXOPS_WEBHOOK_PORT: " 0 ", MXOPS_NOTIFY_HOURLY_CAP: "5" })).toMatchObject({
      webhookPort: 0,
      notifyHourlyCap: 5,
    });
  });

  it("refuses durations under a setting's minimum, and leader timings that let two leaders run", () => {
    expect(() => loadConfig(["--evaluation-interval=0s"], {})).toThrow(
      /--evaluation-interval .*"0s": must be at least 1s/,
    );
    expect(() => loadConfig(["--lease-duration=500ms"], {})).toThrow(/must be at least 1s/);
    expect(() => loadConfig(["--renew-deadline=15s"], {})).toThrow(
      /--lease-duration \(MXOPS_LEASE_DURATION\) must be longer than --renew-deadline/,
    );
    expect(() => loadConfig(["--retry-period=9s"], {})).toThrow(/must be longer than 1.2 x --retry-period/);
    expect(() => loadConfig([], { MXOPS_NOTIFY_MAX_BACKOFF: "100ms" })).toThrow(
      /--notify-max-backoff .* must not be shorter than --notify-initial-backoff/,
    );
    expect(
      loadConfig(["--lease-duration=30s", "--renew-deadline=20s", "--retry-period=5s"], {}),
    ).toMatchObject({
      leaseDuration: 30_000,
      renewDeadline: 20_000,
      retryPeriod: 5_000,
    });
  });

  it("rejects unknown flags and stray arguments", () => {
    expect(() => loadConfig(["--metrics-port=1"], {})).toThrow(/unknown flag --metrics-port/);
    expect(() => loadConfig(["run"], {})).toThrow(/unexpected argument "run"/);
  });

  it("gives every setting an MXOPS_ variable named after its flag", () => {
    for (const s of Object.values(SETTINGS))
      expect(s.env).toBe(`MXOPS_${s.flag.toUpperCase().replaceAll("-", "_")}`);
  });

  it("is documented in the README's configuration table", () => {
    const readme = readFileSync(join(import.meta.dirname, "..", "README.md"), "utf8");
    expect(readme).toContain(settingsMarkdownTable());
  });
});
