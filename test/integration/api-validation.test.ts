// The CRDs as the real API server enforces them: samples apply, invalid manifests are refused with
// an error naming the field and the rule, valid edge cases pass.

import { readdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { TechnicalContactSpec } from "../../src/api/technical-contact.ts";
import { adminKubeconfig, kubectl, newNamespace } from "./helpers.ts";
import { installCrds } from "./operator.ts";

const root = join(import.meta.dirname, "..", "..");
type Obj = Record<string, unknown>;

function contact(spec: Obj = {}, name = "alice"): Obj {
  return {
    apiVersion: "mxops.dev/v1alpha1",
    kind: "TechnicalContact",
    metadata: { name },
    spec: { displayName: "Alice", email: "alice@example.com", ...spec },
  };
}
function app(spec: Obj = {}, name = "crm"): Obj {
  return {
    apiVersion: "mxops.dev/v1alpha1",
    kind: "MendixApp",
    metadata: { name },
    spec: { hosting: "OnPremises", technicalContacts: [{ name: "alice" }], ...spec },
  };
}
function policy(spec: Obj = {}, name = "p"): Obj {
  return {
    apiVersion: "mxops.dev/v1alpha1",
    kind: "AlertPolicy",
    metadata: { name },
    spec: { appRef: { name: "crm" }, rules: [{ name: "disk", metric: "Disk" }], ...spec },
  };
}
const withoutSpecField = (o: Obj, field: string): Obj => {
  const spec = { ...(o.spec as Obj) };
  delete spec[field];
  return { ...o, spec };
};
const rule = (r: Obj) => ({ rules: [{ name: "cpu", metric: "CPU", ...r }] });
const maintenance = (m: Obj) => ({
  hosting: "MendixCloud",
  maintenance: { dayOfWeek: "Sunday", startTime: "02:00", duration: "2h", ...m },
});

/** [case, manifest, what the error must say: the field and the rule] */
const invalid: [string, Obj, RegExp][] = [
  [
    "contact without displayName",
    withoutSpecField(contact(), "displayName"),
    /spec\.displayName: Required value/,
  ],
  ["contact without email", withoutSpecField(contact(), "email"), /spec\.email: Required value/],
  ["contact with a malformed email", contact({ email: "not-an-email" }), /spec\.email.*should match/],
  // Go's mail.ParseAddress (the CRD's old "email" format) took these; the operator cannot mail them.
  [
    "contact email with a display name",
    contact({ email: "Alice <alice@example.com>" }),
    /spec\.email.*should match/,
  ],
  ["contact email with a space", contact({ email: "alice smith@example.com" }), /spec\.email.*should match/],
  ["contact with a malformed mxid", contact({ mxid: "alice" }), /spec\.mxid.*should match/],
  [
    "contact with a too long displayName",
    contact({ displayName: "x".repeat(300) }),
    /spec\.displayName: Too long/,
  ],
  ["contact with an unknown field", contact({ phone: "123" }), /unknown field "spec\.phone"/],
  [
    "contact with a duplicate identity",
    contact({ identities: { users: ["a@example.com", "a@example.com"] } }),
    /spec\.identities\.users\[1\]: Duplicate value/,
  ],
  [
    "contact webhook with a non-http URL",
    contact({ channels: { webhook: { url: "ftp://hooks.example.com/x" } } }),
    /spec\.channels\.webhook\.url.*must be an http:\/\/ or https:\/\/ URL/,
  ],
  [
    "app with an unknown hosting",
    app({ hosting: "Cloud" }),
    /spec\.hosting: Unsupported value: "Cloud": supported values: "MendixCloud", "OnPremises"/,
  ],
  [
    "MendixCloud app with two contacts",
    app({ hosting: "MendixCloud", technicalContacts: [{ name: "alice" }, { name: "bob" }] }),
    /spec\.technicalContacts: Invalid value.*a MendixCloud app must have exactly one technical contact/,
  ],
  [
    "app without technicalContacts",
    withoutSpecField(app(), "technicalContacts"),
    /spec\.technicalContacts: Required value/,
  ],
  [
    "app with an empty technicalContacts",
    app({ technicalContacts: [] }),
    /spec\.technicalContacts.*should have at least 1 items/,
  ],
  [
    "app naming one contact twice",
    app({ technicalContacts: [{ name: "alice" }, { name: "alice" }] }),
    /spec\.technicalContacts\[1\]: Duplicate value/,
  ],
  [
    "app with an invalid contact name",
    app({ technicalContacts: [{ name: "Alice Smith" }] }),
    /spec\.technicalContacts\[0\]\.name.*should match/,
  ],
  [
    "app with a DaemonSet workload",
    app({ workloadRef: { kind: "DaemonSet", name: "x" } }),
    /spec\.workloadRef\.kind: Unsupported value: "DaemonSet"/,
  ],
  [
    "app with an unknown state",
    app({ state: "Paused" }),
    /spec\.state: Unsupported value: "Paused": supported values: "Running", "Stopped"/,
  ],
  [
    "license without secretRef",
    app({ license: { expiresAt: "2027-01-01" } }),
    /spec\.license\.secretRef: Required value/,
  ],
  [
    "license with a malformed expiresAt",
    app({ license: { secretRef: { name: "l" }, expiresAt: "31-12-2027" } }),
    /spec\.license\.expiresAt.*must be of type date/,
  ],
  [
    "license with negative users",
    app({ license: { secretRef: { name: "l" }, users: { named: -1 } } }),
    /spec\.license\.users\.named.*should be greater than or equal to 0/,
  ],
  [
    "maintenance longer than 3h",
    app(maintenance({ duration: "4h" })),
    /spec\.maintenance\.duration.*must be at most 3h/,
  ],
  [
    "maintenance of 3h01m",
    app(maintenance({ duration: "3h1m" })),
    /spec\.maintenance\.duration.*must be at most 3h/,
  ],
  [
    "maintenance starting at 25:00",
    app(maintenance({ startTime: "25:00" })),
    /spec\.maintenance\.startTime.*must be HH:MM in 24-hour UTC time/,
  ],
  [
    "maintenance starting at 2:30",
    app(maintenance({ startTime: "2:30" })),
    /spec\.maintenance\.startTime.*must be HH:MM/,
  ],
  [
    "maintenance with a prose duration",
    app(maintenance({ duration: "2 hours" })),
    /spec\.maintenance\.duration.*must be a duration such as 90s, 5m, 1h30m/,
  ],
  [
    "maintenance on Funday",
    app(maintenance({ dayOfWeek: "Funday" })),
    /spec\.maintenance\.dayOfWeek: Unsupported value: "Funday"/,
  ],
  [
    "maintenance with noticeHours 0",
    app(maintenance({ noticeHours: 0 })),
    /spec\.maintenance\.noticeHours.*should be greater than or equal to 1/,
  ],
  [
    "permission with an unknown right",
    app({ permissions: [{ subject: { kind: "User", name: "dave" }, rights: ["Admin"] }] }),
    /spec\.permissions\[0\]\.rights\[0\]: Unsupported value: "Admin"/,
  ],
  [
    "permission with no rights",
    app({ permissions: [{ subject: { kind: "User", name: "dave" }, rights: [] }] }),
    /spec\.permissions\[0\]\.rights.*should have at least 1 items/,
  ],
  [
    "permission for a ServiceAccount subject",
    app({ permissions: [{ subject: { kind: "ServiceAccount", name: "x" }, rights: ["Deploy"] }] }),
    /spec\.permissions\[0\]\.subject\.kind: Unsupported value: "ServiceAccount"/,
  ],
  [
    "permissions naming one subject twice",
    app({
      permissions: [
        { subject: { kind: "User", name: "dave" }, rights: ["Deploy"] },
        { subject: { kind: "User", name: "dave" }, rights: ["API"] },
      ],
    }),
    /spec\.permissions.*each subject \(kind and name\) may appear only once/,
  ],
  [
    "policy with appRef and appSelector",
    policy({ appSelector: { matchLabels: { tier: "critical" } } }),
    /spec: Invalid value.*set exactly one of appRef and appSelector/,
  ],
  [
    "policy with neither appRef nor appSelector",
    withoutSpecField(policy(), "appRef"),
    /spec: Invalid value.*set exactly one of appRef and appSelector/,
  ],
  [
    "rule with warning above critical",
    policy(rule({ warningPercent: 90, criticalPercent: 80 })),
    /spec\.rules\[0\]\.warningPercent.*warningPercent must be lower than criticalPercent/,
  ],
  [
    "rule whose warning alone is above its metric's default critical",
    policy(rule({ warningPercent: 90 })),
    /spec\.rules\[0\]\.warningPercent.*warningPercent must be lower than criticalPercent \(where one is not set, its default/,
  ],
  [
    "Disk rule whose critical alone is below its default warning",
    policy({ rules: [{ name: "disk", metric: "Disk", criticalPercent: 70 }] }),
    /spec\.rules\[0\]\.warningPercent.*warningPercent must be lower than criticalPercent/,
  ],
  [
    "rule with warning equal to critical",
    policy(rule({ warningPercent: 80, criticalPercent: 80 })),
    /spec\.rules\[0\]\.warningPercent.*warningPercent must be lower than criticalPercent/,
  ],
  [
    "rule with criticalPercent over 100",
    policy(rule({ criticalPercent: 150 })),
    /spec\.rules\[0\]\.criticalPercent.*should be less than or equal to 100/,
  ],
  [
    "rule on an unknown metric",
    policy(rule({ metric: "Network" })),
    /spec\.rules\[0\]\.metric: Unsupported value: "Network": supported values: "CPU", "Disk", "Memory"/,
  ],
  ["policy without rules", policy({ rules: [] }), /spec\.rules.*should have at least 1 items/],
  [
    "policy with two rules of one name",
    policy({
      rules: [
        { name: "cpu", metric: "CPU" },
        { name: "cpu", metric: "Memory" },
      ],
    }),
    /spec\.rules\[1\]: Duplicate value/,
  ],
  ["rule with a prose for", policy(rule({ for: "5 minutes" })), /spec\.rules\[0\]\.for.*must be a duration/],
  [
    "prediction on a CPU rule",
    policy(rule({ predictFullWithin: "96h" })),
    /spec\.rules\[0\]\.predictFullWithin.*predictFullWithin applies to Disk rules only/,
  ],
  [
    "policy silenced until 'tomorrow'",
    policy({ silencedUntil: "tomorrow" }),
    /spec\.silencedUntil.*must be of type date-time/,
  ],
  [
    "policy repeating every '1d'",
    policy({ repeatInterval: "1d" }),
    /spec\.repeatInterval.*must be a duration/,
  ],
  [
    "rule with a clear margin of 60",
    policy(rule({ clearMarginPercent: 60 })),
    /spec\.rules\[0\]\.clearMarginPercent.*should be less than or equal to 50/,
  ],
  [
    "rule with an invalid name",
    policy({ rules: [{ name: "CPU Rule", metric: "CPU" }] }),
    /spec\.rules\[0\]\.name.*should match/,
  ],
];

const valid: [string, Obj][] = [
  ["contact without MxID", contact({}, "no-mxid")],
  [
    "contact on an internal mail domain",
    contact({ email: "ops@corp", mxid: "ops@corp.example" }, "internal"),
  ],
  // Whatever the two engines make of a Unicode space, they make the same (JavaScript's \s would refuse it).
  ["contact email with a no-break space", contact({ email: "ops\u00a0team@example.com" }, "nbsp")],
  [
    "OnPremises app with 16 contacts",
    app({ technicalContacts: Array.from({ length: 16 }, (_, i) => ({ name: `c${i}` })) }, "many"),
  ],
  ["MendixCloud app with exactly one contact", app({ hosting: "MendixCloud" }, "cloud")],
  [
    "maintenance of exactly 3h at 23:59",
    app(maintenance({ duration: "3h", startTime: "23:59" }), "edge-window"),
  ],
  [
    "maintenance of 1h30m at 00:00",
    app(maintenance({ duration: "1h30m", startTime: "00:00" }), "edge-window2"),
  ],
  ["rule with thresholds 0 and 100", policy(rule({ warningPercent: 0, criticalPercent: 100 }), "edge-rule")],
  ["policy with no thresholds (Mendix defaults)", policy({}, "defaults")],
  [
    "policy by label selector",
    {
      ...withoutSpecField(policy({ appSelector: { matchLabels: { tier: "critical" } } }), "appRef"),
      metadata: { name: "sel" },
    },
  ],
  [
    "disk rule with a prediction",
    policy({ rules: [{ name: "disk", metric: "Disk", predictFullWithin: "96h" }] }, "predict"),
  ],
];

async function apply(ns: string, obj: Obj, dryRun = true): Promise<string> {
  const args = ["apply", "-n", ns, "-f", "-", ...(dryRun ? ["--dry-run=server"] : [])];
  return await kubectl(adminKubeconfig(), args, YAML.stringify(obj));
}

async function refusal(ns: string, obj: Obj): Promise<string> {
  try {
    await apply(ns, obj);
  } catch (e) {
    return String((e as Error).message);
  }
  return "(accepted)";
}

describe("CRDs on the real API server", () => {
  let ns: string;
  beforeAll(async () => {
    await installCrds();
    ns = await newNamespace("api");
  });

  it("accept every sample with kubectl apply", async () => {
    const dir = join(root, "deploy", "samples");
    expect(readdirSync(dir).length).toBeGreaterThan(3);
    const out = await kubectl(adminKubeconfig(), ["apply", "-f", dir]);
    expect(out).toMatch(/mendixapp\.mxops\.dev\/crm created|mendixapp\.mxops\.dev\/crm unchanged|configured/);
    const apps = JSON.parse(
      await kubectl(adminKubeconfig(), ["get", "mxapp", "-n", "mendix-apps", "-o", "json"]),
    );
    expect(apps.items.map((a: { metadata: { name: string } }) => a.metadata.name).sort()).toEqual([
      "crm",
      "portal",
    ]);
    // Defaults are applied by the API server.
    const crm = apps.items.find((a: { metadata: { name: string } }) => a.metadata.name === "crm");
    expect(crm.spec.state).toBe("Running");
  });

  it(`refuse ${invalid.length} invalid manifests, naming the field and the rule`, async () => {
    expect(invalid.length).toBeGreaterThanOrEqual(30);
    const results = await Promise.all(invalid.map(async ([, obj]) => await refusal(ns, obj)));
    const mismatches = invalid
      .map(([name, , pattern], i) => ({ name, pattern, got: results[i] ?? "" }))
      .filter((r) => !r.pattern.test(r.got))
      .map((r) => `${r.name}: expected ${r.pattern}, got: ${r.got}`);
    expect(mismatches).toEqual([]);
  });

  it("accept valid edge cases", async () => {
    const results = await Promise.all(valid.map(async ([, obj]) => await refusal(ns, obj)));
    const refused = valid.map(([name], i) => [name, results[i]]).filter(([, r]) => r !== "(accepted)");
    expect(refused).toEqual([]);
  });

  it("and the operator reads what the API server accepts, and refuses what it refuses (contacts)", () => {
    for (const [name, obj] of valid.filter(([, o]) => o.kind === "TechnicalContact"))
      expect(TechnicalContactSpec.safeParse(obj.spec).success, name).toBe(true);
    for (const [name, obj] of invalid.filter(([n]) => /email|mxid/.test(n)))
      expect(TechnicalContactSpec.safeParse(obj.spec).success, name).toBe(false);
  });

  it("let an MxID be set once, then refuse changing or removing it", async () => {
    await apply(ns, contact({}, "late-mxid"), false);
    await apply(ns, contact({ mxid: "alice.devries@example.com" }, "late-mxid"), false);
    const change = await refusal(ns, contact({ mxid: "someone.else@example.com" }, "late-mxid"));
    expect(change).toMatch(/spec\.mxid.*mxid cannot be changed or removed once set/);
    const removal = await refusal(ns, contact({}, "late-mxid"));
    expect(removal).toMatch(/spec\.mxid.*mxid cannot be changed or removed once set/);
  });

  it("list all three kinds under the mxops category with useful columns", async () => {
    const out = await kubectl(adminKubeconfig(), ["get", "mxops", "-n", "mendix-apps"]);
    expect(out).toMatch(/mendixapp\.mxops\.dev\/crm\s+OnPremises\s+alice\s/);
    expect(out).toMatch(/technicalcontact\.mxops\.dev\/alice\s+Alice de Vries\s+alice@example\.com/);
    expect(out).toMatch(/alertpolicy\.mxops\.dev\/crm-defaults\s+crm/);
    const header = out.split("\n").find((l) => l.includes("HOSTING")) ?? "";
    for (const col of ["HOSTING", "CONTACT", "CONTACTS", "LICENSE", "DAYS LEFT", "READY", "AGE"]) {
      expect(header).toContain(col);
    }
  });

  it("explain technicalContacts usefully", async () => {
    const out = await kubectl(adminKubeconfig(), ["explain", "mendixapp.spec.technicalContacts"]);
    expect(out).toMatch(/a MendixCloud app has exactly one/);
    expect(out).toMatch(/name\s+<string> -required-/);
  });
});
