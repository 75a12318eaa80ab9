import { describe, expect, it } from "vitest";
import type { RuleStatus } from "../api/alert-policy.ts";
import {
  type AlertEvent,
  alertMessage,
  announcedWhileFiring,
  DEFAULT_THRESHOLDS,
  effectiveRule,
  levelFor,
  NO_DATA_GRACE_MS,
  remembered,
  type StepInput,
  selects,
  step,
} from "./alerts.ts";

const T0 = Date.parse("2026-11-27T10:00:00Z");
const MIN = 60_000;
const cpu = effectiveRule({
  name: "cpu",
  metric: "CPU",
  warningPercent: 75,
  criticalPercent: 85,
  for: "2m",
  clearMarginPercent: 5,
});
const disk = effectiveRule({ name: "disk", metric: "Disk" });

/** One step of the machine: app crm's CPU rule at `minute`, from `previous`. */
function at(minute: number, value: number | undefined, previous?: RuleStatus, opts: Partial<StepInput> = {}) {
  return step({
    rule: cpu,
    app: "crm",
    previous,
    value,
    nowMs: T0 + minute * MIN,
    repeatIntervalMs: 60 * MIN,
    sendResolved: true,
    muted: false,
    ...opts,
  });
}

/** Runs samples [minute, value] through the machine, returning the notifications and the last status. */
function run(samples: [number, number | undefined][], opts: Partial<StepInput> = {}, start?: RuleStatus) {
  let status = start;
  const events: [number, AlertEvent, string][] = [];
  for (const [minute, value] of samples) {
    const r = at(minute, value, status, opts);
    status = r.status;
    if (r.notify) events.push([minute, r.notify.event, r.notify.severity]);
  }
  return { events, status };
}

describe("defaults", () => {
  it("are Mendix's: disk 75/85, memory 90/95, CPU 75/85 with for 5m and a 5 point margin", () => {
    expect(disk).toMatchObject({ warning: 75, critical: 85, forMs: 0 });
    expect(effectiveRule({ name: "m", metric: "Memory" })).toMatchObject({ warning: 90, critical: 95 });
    expect(effectiveRule({ name: "c", metric: "CPU" })).toMatchObject({
      warning: 75,
      critical: 85,
      forMs: 5 * MIN,
      clearMargin: 5,
    });
  });
});

describe("the alert state machine", () => {
  it.each<[string, [number, number | undefined][], [number, AlertEvent, string][]]>([
    [
      "stays quiet below the thresholds",
      [
        [0, 10],
        [1, 74],
        [2, 50],
      ],
      [],
    ],
    [
      "fires a Warning only after `for`",
      [
        [0, 80],
        [1, 80],
        [2, 80],
        [3, 80],
      ],
      [[2, "Firing", "Warning"]],
    ],
    [
      "does not fire on a spike shorter than `for` (flapping)",
      [
        [0, 90],
        [1, 20],
        [2, 90],
        [3, 20],
        [4, 90],
      ],
      [],
    ],
    [
      "escalates to Critical at once, then recovers once",
      [
        [0, 80],
        [2, 80],
        [3, 90],
        [4, 95],
        [5, 10],
      ],
      [
        [2, "Firing", "Warning"],
        [3, "Escalated", "Critical"],
        [5, "Resolved", "Recovery"],
      ],
    ],
    [
      "fires Critical directly (Critical inhibits Warning)",
      [
        [0, 95],
        [2, 95],
      ],
      [[2, "Firing", "Critical"]],
    ],
    [
      "holds the severity within the clear margin (hysteresis)",
      [
        [0, 80],
        [2, 80],
        [3, 72],
        [4, 71],
        [5, 69],
      ],
      [
        [2, "Firing", "Warning"],
        [5, "Resolved", "Recovery"],
      ],
    ],
    [
      "de-escalates only below critical minus the margin",
      [
        [0, 90],
        [2, 90],
        [3, 82],
        [4, 79],
      ],
      [
        [2, "Firing", "Critical"],
        [4, "Deescalated", "Warning"],
      ],
    ],
    [
      "repeats at the repeat interval while firing",
      [
        [0, 80],
        [2, 80],
        [30, 80],
        [62, 80],
        [100, 80],
        [122, 80],
      ],
      [
        [2, "Firing", "Warning"],
        [62, "Repeat", "Warning"],
        [122, "Repeat", "Warning"],
      ],
    ],
  ])("%s", (_name, samples, expected) => {
    expect(run(samples).events).toEqual(expected);
  });

  it("keeps firing for keepFiringFor after usage drops", () => {
    const rule = { ...cpu, keepFiringForMs: 3 * MIN, forMs: 0 };
    const r = run(
      [
        [0, 80],
        [1, 10],
        [2, 80],
        [3, 10],
        [5, 10],
        [6, 10],
      ],
      { rule },
    );
    expect(r.events).toEqual([
      [0, "Firing", "Warning"],
      [6, "Resolved", "Recovery"],
    ]);
  });

  it("does not restart the `for` timer when the operator restarts in the middle of it", () => {
    const first = run([
      [0, 80],
      [1, 80],
    ]);
    expect(first.status?.state).toBe("Pending");
    const persisted = JSON.parse(JSON.stringify(first.status)) as RuleStatus; // as stored in AlertPolicy.status
    const after = run([[2, 80]], {}, persisted);
    expect(after.events).toEqual([[2, "Firing", "Warning"]]);
  });

  it("does not notify again after a restart while the state is unchanged", () => {
    const firing = run([
      [0, 80],
      [2, 80],
    ]).status as RuleStatus;
    expect(
      run(
        [
          [3, 80],
          [4, 81],
        ],
        {},
        JSON.parse(JSON.stringify(firing)),
      ).events,
    ).toEqual([]);
  });

  it("mutes notifications while silenced, not the state, and tells once when the silence ends", () => {
    const muted = run(
      [
        [0, 90],
        [2, 90],
        [3, 90],
      ],
      { muted: true },
    );
    expect(muted.events).toEqual([]);
    expect(muted.status?.state).toBe("Firing");
    expect(run([[4, 90]], {}, muted.status).events).toEqual([[4, "Firing", "Critical"]]);
  });

  it("sends no resolved notice when sendResolved is false", () => {
    expect(
      run(
        [
          [0, 90],
          [2, 90],
          [3, 10],
        ],
        { sendResolved: false },
      ).events,
    ).toEqual([[2, "Firing", "Critical"]]);
  });

  it("treats no data as Unknown, never OK, with one notice after the grace period", () => {
    const grace = NO_DATA_GRACE_MS / MIN;
    const r = run([
      [0, undefined],
      [1, undefined],
      [grace, undefined],
      [grace + 1, undefined],
      [grace + 10, undefined],
    ]);
    expect(r.status?.state).toBe("Unknown");
    expect(r.events).toEqual([[grace, "NoData", "Warning"]]);
    expect(
      run([
        [0, 80],
        [2, 80],
        [3, undefined],
      ]).status,
    ).toMatchObject({ state: "Unknown", severity: "Warning" });
  });

  it("resolves a firing alert with a Recovery when data returns low after a gap", () => {
    const r = run([
      [0, 90],
      [2, 90],
      [3, undefined],
      [4, 50],
    ]);
    expect(r.events).toEqual([
      [2, "Firing", "Critical"],
      [4, "Resolved", "Recovery"],
    ]);
    expect(r.status).toMatchObject({ state: "Inactive", severity: "Ok" });
  });

  it("goes on firing, not firing again, when data returns high after a gap", () => {
    const gap = run([
      [0, 90],
      [2, 90],
      [3, undefined],
    ]).status;
    expect(gap).toMatchObject({
      state: "Unknown",
      severity: "Critical",
      firingSince: "2026-11-27T10:02:00Z",
    });
    const back = at(4, 91, gap);
    expect(back.notify).toBeUndefined();
    expect(back.status).toMatchObject({
      state: "Firing",
      severity: "Critical",
      since: "2026-11-27T10:02:00Z",
      firingSince: "2026-11-27T10:02:00Z",
      value: 91,
      sequence: 1,
    });
    // A change of severity after the gap is announced as such, in the same alert.
    expect(at(4, 78, gap).notify).toMatchObject({ event: "Deescalated", severity: "Warning" });
    // The repeat interval runs on from the last notification.
    expect(at(62, 91, gap).notify).toMatchObject({ event: "Repeat", severity: "Critical" });
  });

  it("keeps a pending alert's gap as a plain gap: its for timer starts again", () => {
    const r = run([
      [0, 90],
      [1, undefined],
      [2, 90],
      [3, 90],
      [4, 90],
    ]);
    expect(r.events).toEqual([[4, "Firing", "Critical"]]);
  });

  it("records value, peak and a rising sequence number", () => {
    const r = run([
      [0, 80],
      [2, 83],
      [3, 91],
      [4, 88],
    ]);
    expect(r.status).toMatchObject({
      state: "Firing",
      severity: "Critical",
      value: 88,
      peak: 91,
      sequence: 2,
    });
  });

  it("numbers each alert's notifications from 1, so the next alert's first is its thread's '/1' too", () => {
    // First alert: Firing (1), Critical (2), Recovery (3); the next alert starts again at 1.
    const first = run([
      [0, 80],
      [2, 83],
      [3, 91],
      [10, 10],
    ]);
    expect(first.status).toMatchObject({ state: "Inactive", sequence: 3 });
    const next = run(
      [
        [20, 80],
        [22, 83],
      ],
      {},
      first.status,
    );
    expect(next.events).toEqual([[22, "Firing", "Warning"]]);
    expect(next.status).toMatchObject({ state: "Firing", sequence: 1, firingSince: "2026-11-27T10:22:00Z" });
  });
});

describe("an Inactive rule's status", () => {
  it("keeps no usage, so usage moving under the thresholds leaves it as it was (no status write)", () => {
    const first = at(0, 10).status;
    expect(first).toEqual({
      app: "crm",
      rule: "cpu",
      state: "Inactive",
      severity: "Ok",
      since: new Date(T0).toISOString().replace(/\.\d{3}Z$/, "Z"),
      sequence: 0,
    });
    let status = first;
    for (const [minute, value] of [
      [1, 12],
      [2, 9],
      [3, 60],
      [4, 74],
    ] as const)
      status = at(minute, value, status).status;
    expect(status).toBe(first);
  });

  it("drops the usage once from a status written when Inactive rules kept it", () => {
    const old: RuleStatus = {
      app: "crm",
      rule: "cpu",
      state: "Inactive",
      severity: "Ok",
      since: "2026-11-01T00:00:00Z",
      value: 10,
      sequence: 4,
      lastNotifiedAt: "2026-11-01T00:00:00Z",
    };
    const r = at(0, 11, old);
    const { value: _dropped, ...rest } = old;
    expect(r.status).toEqual(rest);
    expect(at(1, 30, r.status).status).toBe(r.status);
  });

  it("is left out of the policy's status unless it has notified before", () => {
    const fresh = at(0, 10).status;
    expect(remembered(fresh)).toBe(false);
    expect(remembered({ ...fresh, sequence: 2, lastNotifiedAt: "2026-11-01T00:00:00Z" })).toBe(true);
    expect(remembered(at(0, undefined).status)).toBe(true); // Unknown
    expect(remembered(at(0, 80).status)).toBe(true); // Pending
    // Muted while firing and resolved unannounced: nothing was sent, nothing to remember.
    const muted = run(
      [
        [0, 80],
        [2, 80],
        [3, 10],
      ],
      { muted: true },
    ).status;
    expect(muted).toMatchObject({ state: "Inactive", sequence: 0 });
    expect(remembered(muted as RuleStatus)).toBe(false);
  });

  it("tells the usage and peak in the resolved notice, and keeps neither once resolved", () => {
    const fired = run([
      [0, 80],
      [2, 80],
      [3, 95],
    ]);
    expect(fired.events.map((e) => e[1])).toEqual(["Firing", "Escalated"]);
    const resolved = at(4, 40, fired.status);
    expect(resolved.notify).toMatchObject({ event: "Resolved", value: 40, peak: 95 });
    expect(resolved.status.value).toBeUndefined();
    expect(resolved.status.peak).toBeUndefined();
    expect(resolved.status).toMatchObject({ state: "Inactive", sequence: 3 });
  });
});

describe("disk full prediction", () => {
  it("warns early when the volume is predicted full, though under the thresholds, and clears when it is not", () => {
    const r1 = step({
      rule: disk,
      app: "crm",
      volume: "data",
      value: 60,
      nowMs: T0,
      repeatIntervalMs: 60 * MIN,
      sendResolved: true,
      muted: false,
      predictedFull: true,
    });
    expect(r1.status).toMatchObject({ state: "Firing", severity: "Warning" });
    expect(r1.notify).toMatchObject({ event: "Firing", severity: "Warning", predicted: true });
    expect(
      alertMessage("crm", disk, "data", r1.notify ?? { event: "Firing", severity: "Warning" }).title,
    ).toBe("Disk usage of crm (volume data) is predicted to fill up (60%)");
    const r2 = step({
      rule: disk,
      app: "crm",
      volume: "data",
      previous: r1.status,
      value: 60,
      nowMs: T0 + MIN,
      repeatIntervalMs: 60 * MIN,
      sendResolved: true,
      muted: false,
      predictedFull: false,
    });
    expect(r2.notify?.event).toBe("Resolved");
  });
});

describe("levels and messages", () => {
  it("applies the margin only when already at that severity", () => {
    expect(levelFor(cpu, 73, undefined)).toBe("Ok");
    expect(levelFor(cpu, 73, "Warning")).toBe("Warning");
    expect(levelFor(cpu, 81, "Critical")).toBe("Critical");
    expect(levelFor(cpu, 79, "Critical")).toBe("Warning");
  });

  it("names the app, metric, value, threshold, and on recovery the duration and peak", () => {
    expect(
      alertMessage("crm", cpu, undefined, { event: "Firing", severity: "Warning", value: 80 }).title,
    ).toBe("CPU usage of crm is warning (80%)");
    expect(
      alertMessage("crm", disk, "data", { event: "Escalated", severity: "Critical", value: 90 }).body,
    ).toBe("Disk usage of crm (volume data) is 90% (critical threshold 85%).");
    expect(alertMessage("crm", disk, "data", { event: "NoData", severity: "Warning" }).title).toBe(
      "No Disk data for crm (volume data)",
    );
    expect(
      alertMessage("crm", cpu, undefined, {
        event: "Resolved",
        severity: "Recovery",
        value: 10,
        peak: 95,
        firingForMs: 12 * MIN,
      }).body,
    ).toMatch(/fired for 12 minute\(s\) and peaked at 95%/);
  });
});

describe("appSelector", () => {
  it("matches labels and expressions like a Kubernetes label selector", () => {
    const labels = { tier: "critical", team: "sales" };
    expect(selects({ matchLabels: { tier: "critical" } }, labels)).toBe(true);
    expect(
      selects({ matchExpressions: [{ key: "team", operator: "In", values: ["sales", "ops"] }] }, labels),
    ).toBe(true);
    expect(
      selects({ matchExpressions: [{ key: "team", operator: "NotIn", values: ["sales"] }] }, labels),
    ).toBe(false);
    expect(selects({ matchExpressions: [{ key: "env", operator: "DoesNotExist" }] }, labels)).toBe(true);
    expect(
      selects(
        { matchLabels: { tier: "critical" }, matchExpressions: [{ key: "env", operator: "Exists" }] },
        labels,
      ),
    ).toBe(false);
    expect(selects(undefined, labels)).toBe(false);
  });
});

describe("announcedWhileFiring", () => {
  it("is true only for a notification since the alert began firing, at the severity it has now", () => {
    const firingSince = "2026-11-27T10:00:00Z";
    const told = { severity: "Warning" as const, notifiedSeverity: "Warning" as const };
    const after = "2026-11-27T10:05:00Z";
    expect(announcedWhileFiring({ ...told, firingSince, lastNotifiedAt: after })).toBe(true);
    expect(announcedWhileFiring({ ...told, firingSince, lastNotifiedAt: firingSince })).toBe(true);
    // Told of an earlier episode, or never: Alertmanager was not told of this one.
    expect(announcedWhileFiring({ ...told, firingSince, lastNotifiedAt: "2026-11-27T09:00:00Z" })).toBe(
      false,
    );
    expect(announcedWhileFiring({ ...told, firingSince })).toBe(false);
    expect(announcedWhileFiring({ ...told, since: firingSince, lastNotifiedAt: after })).toBe(true);
    // A state stored before notifiedSeverity was recorded (an upgrade): announced as it is.
    expect(announcedWhileFiring({ severity: "Critical", firingSince, lastNotifiedAt: after })).toBe(true);
    // Escalated while muted: Alertmanager had it as a warning, so it is not posted as critical.
    expect(announcedWhileFiring({ ...told, severity: "Critical", firingSince, lastNotifiedAt: after })).toBe(
      false,
    );
  });

  it("is what a firing notification records, and an escalation while muted leaves", () => {
    const rule = effectiveRule({ name: "cpu", metric: "CPU", for: "0s" });
    const at = Date.parse("2026-11-27T10:00:00Z");
    const input = { rule, app: "crm", repeatIntervalMs: 4 * 3_600_000, sendResolved: true };
    const fired = step({ ...input, value: 80, nowMs: at, muted: false });
    expect(fired.status).toMatchObject({ state: "Firing", severity: "Warning", notifiedSeverity: "Warning" });
    expect(announcedWhileFiring(fired.status)).toBe(true);
    const escalated = step({ ...input, previous: fired.status, value: 95, nowMs: at + 60_000, muted: true });
    expect(escalated.status).toMatchObject({ severity: "Critical", notifiedSeverity: "Warning" });
    expect(announcedWhileFiring(escalated.status)).toBe(false);
  });
});

describe("the CRD's threshold rule", () => {
  it("uses the defaults effectiveRule uses", async () => {
    const { AlertRule } = await import("../api/alert-policy.ts");
    const rules = (AlertRule.meta()?.["x-kubernetes-validations"] ?? []) as { rule: string }[];
    const threshold = rules.find((r) => r.rule.includes("warningPercent"))?.rule ?? "";
    const { CPU, Memory, Disk } = DEFAULT_THRESHOLDS;
    expect(CPU).toMatchObject({ warning: Disk.warning, critical: Disk.critical }); // the rule's "otherwise"
    expect(threshold).toBe(
      `(has(self.warningPercent) ? self.warningPercent : (self.metric == 'Memory' ? ${Memory.warning}.0 : ${CPU.warning}.0)) < ` +
        `(has(self.criticalPercent) ? self.criticalPercent : (self.metric == 'Memory' ? ${Memory.critical}.0 : ${CPU.critical}.0))`,
    );
  });
});

describe("NoData after a mute", () => {
  it("waits the grace from when the mute ended, not from when the data went missing", () => {
    const rule = effectiveRule({ name: "cpu", metric: "CPU" });
    const since = Date.parse("2026-11-27T08:00:00Z"); // stopped for hours: no pods, no data
    const previous: RuleStatus = {
      app: "crm",
      rule: "cpu",
      state: "Unknown",
      severity: "Ok",
      since: new Date(since).toISOString(),
      sequence: 0,
    };
    const unmutedAt = Date.parse("2026-11-27T12:00:00Z");
    const at = (nowMs: number, lastMutedMs?: number) =>
      step({
        rule,
        app: "crm",
        previous,
        nowMs,
        repeatIntervalMs: 4 * 3_600_000,
        sendResolved: true,
        muted: false,
        lastMutedMs,
      });
    // Running again; the first evaluation after the mute: no notice yet.
    expect(at(unmutedAt + 30_000, unmutedAt).notify).toBeUndefined();
    expect(at(unmutedAt + NO_DATA_GRACE_MS - 1000, unmutedAt).notify).toBeUndefined();
    expect(at(unmutedAt + NO_DATA_GRACE_MS, unmutedAt).notify?.event).toBe("NoData");
    // Never muted lately: the grace counts from when the data went missing, as before.
    expect(at(unmutedAt).notify?.event).toBe("NoData");
  });
});
