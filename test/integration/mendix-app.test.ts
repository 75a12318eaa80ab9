// The contact and license rules end to end: objects applied with kubectl, the operator as a process, a real
// SMTP server; status, conditions, Events, the workload and the mails are checked.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../controlplane/controlplane.ts";
import { type SmtpSink, startSmtpSink } from "../support/smtp.ts";
import { adminKubeconfig, eventually, kubectl, newNamespace } from "./helpers.ts";
import { installCrds, type OperatorProcess, startOperator } from "./operator.ts";

const k = (args: string[], input?: string) => kubectl(adminKubeconfig(), args, input);
/** kubectl apply of several manifests at once, as one stream. */
const applyAll = (...manifests: string[]) => k(["apply", "-f", "-"], manifests.join("---"));
/** A merge patch of app crm, as a user would make it. */
const patchApp = (ns: string, json: string) =>
  k(["patch", "mxapp", "crm", "-n", ns, "--type=merge", "-p", json]);
const DAY = 86_400_000;
const inDays = (d: number) => new Date(Date.now() + d * DAY).toISOString().slice(0, 10);

interface AppStatus {
  observedGeneration?: number;
  conditions?: { type: string; status: string; reason: string; message: string }[];
  contacts?: {
    count: number;
    primary?: string;
    missing?: string[];
    withoutMxid?: string[];
    noneSince?: string;
    defaultContactNotified?: boolean;
  };
  license?: {
    state: string;
    daysRemaining?: number;
    remindersSent?: number[];
    renewal?: string;
    expandVia?: string;
    message?: string;
  };
  workload?: { kind?: string; name?: string; licenseInjected?: boolean; rememberedReplicas?: number };
  maintenance?: { nextWindowStart?: string; lastNoticeFor?: string };
}

const contact = (ns: string, name: string, mxid?: string) => `
apiVersion: mxops.dev/v1alpha1
kind: TechnicalContact
metadata: {name: ${name}, namespace: ${ns}}
spec:
  displayName: ${name[0]?.toUpperCase()}${name.slice(1)}
  email: ${name}@example.com
${mxid ? `  mxid: ${mxid}\n` : ""}`;

const licenseSecret = (
  ns: string,
  name = "crm-license",
  id = "3f1c2b8e-7d4a-4e2b-9c61-0a5d8e7f1b23",
  key = "placeholder-license-key-for-tests",
) => `
apiVersion: v1
kind: Secret
metadata: {name: ${name}, namespace: ${ns}}
stringData: {LICENSE_ID: "${id}", LICENSE_KEY: "${key}"}
`;

const deployment = (ns: string, name = "crm", replicas = 2) => `
apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: ${ns}}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      containers:
        - {name: mendix, image: "mendix/runtime-base:latest", env: [{name: RUNTIME_PARAMS, value: "x"}]}
        - {name: sidecar, image: "busybox:latest"}
`;

const app = (
  ns: string,
  o: {
    name?: string;
    hosting?: string;
    contacts: string[];
    expiresAt?: string;
    secret?: string;
    state?: string;
    extra?: string;
  },
) => `
apiVersion: mxops.dev/v1alpha1
kind: MendixApp
metadata: {name: ${o.name ?? "crm"}, namespace: ${ns}}
spec:
  hosting: ${o.hosting ?? "OnPremises"}
  technicalContacts: [${o.contacts.map((c) => `{name: ${c}}`).join(", ")}]
  workloadRef: {kind: Deployment, name: crm}
  state: ${o.state ?? "Running"}
  license:
    secretRef: {name: ${o.secret ?? "crm-license"}}
    expiresAt: "${o.expiresAt ?? inDays(200)}"
${o.extra ?? ""}`;

/** Sets crm's license expiry to `days` from today, as a user would (a merge patch). */
const setExpiry = (ns: string, days: number) =>
  patchApp(ns, JSON.stringify({ spec: { license: { expiresAt: inDays(days) } } }));

async function appStatus(ns: string, name = "crm"): Promise<AppStatus> {
  return (
    (JSON.parse(await k(["get", "mxapp", name, "-n", ns, "-o", "json"])) as { status?: AppStatus }).status ??
    {}
  );
}

const condition = (s: AppStatus, type: string) => s.conditions?.find((c) => c.type === type);

/**
 * A cluster policy (as Kyverno or Gatekeeper would) refusing updates of namespace `ns`'s Deployments for which
 * `expression` is false, in force once an update of Deployment crm is refused; returns its name.
 */
async function refuseDeploymentUpdates(ns: string, name: string, expression: string, message: string) {
  await applyAll(`
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: ${name}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [UPDATE], resources: [deployments]}]
  validations: [{expression: ${JSON.stringify(expression)}, message: ${JSON.stringify(message)}}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: ${name}}
spec:
  policyName: ${name}
  validationActions: [Deny]
  matchResources: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ${ns}}}}
`);
  await until("the policy in force", async () =>
    k(["annotate", "deployment", "crm", "-n", ns, `probe=${Date.now()}`, "--overwrite"]).then(
      () => false,
      (e: Error) => e.message.includes(message),
    ),
  );
  return name;
}
const liftPolicy = (name: string) =>
  k(["delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name]);

async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  return await eventually(async () => (await check()) || undefined, { what, timeoutMs, intervalMs: 200 });
}

async function deploymentJson(ns: string, name = "crm") {
  return JSON.parse(
    await k(["get", "deployment", name, "-n", ns, "-o", "json", "--show-managed-fields"]),
  ) as {
    spec: {
      replicas: number;
      template: {
        spec: {
          containers: {
            name: string;
            env?: {
              name: string;
              value?: string;
              valueFrom?: { secretKeyRef?: { name: string; key: string } };
            }[];
          }[];
        };
      };
    };
    metadata: { managedFields: { manager: string; operation: string }[] };
  };
}

async function eventReasons(ns: string): Promise<string[]> {
  const out = JSON.parse(await k(["get", "events.v1.events.k8s.io", "-n", ns, "-o", "json"])) as {
    items: { reason: string }[];
  };
  return out.items.map((e) => e.reason);
}

describe("MendixApp rules end to end", () => {
  let smtp: SmtpSink;
  let op: OperatorProcess;
  let metricsPort: number;
  const ns: Record<string, string> = {};
  const scenarios = [
    "activate",
    "mxid",
    "missing",
    "secrets",
    "reminders",
    "maintenance",
    "startstop",
    "change",
    "delete",
    "locked",
    "moved",
    "gitops",
  ];

  const start = () => {
    op = startOperator([`--namespaces=${Object.values(ns).join(",")}`], {
      MXOPS_SMTP_HOST: "127.0.0.1",
      MXOPS_SMTP_PORT: String(smtp.port),
      MXOPS_SMTP_TLS: "none",
      MXOPS_NOTIFY_INITIAL_BACKOFF: "100ms",
      MXOPS_METRICS_BIND_ADDRESS: `127.0.0.1:${metricsPort}`,
      MXOPS_DEFAULT_CONTACT: "platform-team@example.com",
      MXOPS_DEFAULT_CONTACT_AFTER: "2s",
    });
    return op;
  };
  const mailsTo = (ns: string, to: string, subject: RegExp) =>
    smtp.mails.filter(
      (m) => m.to.includes(to) && subject.test(m.headers.subject ?? "") && m.decoded.includes(ns),
    );

  beforeAll(async () => {
    await installCrds();
    smtp = await startSmtpSink({ mode: "plain" });
    metricsPort = await freePort();
    for (const s of scenarios) ns[s] = await newNamespace(`app-${s}`);
    start();
  });

  afterAll(async () => {
    await op?.stop();
    await smtp?.close();
  });

  it("activates the license from the Secret by reference when the primary contact has an MxID", async () => {
    const n = ns.activate ?? "";
    await k(
      ["apply", "-f", "-"],
      contact(n, "alice", "alice.devries@example.com") +
        "---" +
        licenseSecret(n) +
        "---" +
        deployment(n) +
        "---" +
        app(n, { contacts: ["alice"] }),
    );
    const s = await until("an active license", async () => {
      const st = await appStatus(n);
      return condition(st, "Ready")?.status === "True" && st;
    });
    expect(s.license).toMatchObject({
      state: "Active",
      daysRemaining: 200,
      renewal: "TechnicalContact",
      expandVia: "AccountExecutive",
    });
    expect(condition(s, "ContactAssigned")).toMatchObject({ status: "True" });
    expect(condition(s, "Licensed")).toMatchObject({ status: "True", reason: "Active" });
    expect(s.workload?.licenseInjected).toBe(true);
    expect(s.observedGeneration).toBe(1);

    const d = await deploymentJson(n);
    for (const c of d.spec.template.spec.containers) {
      const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e]));
      expect(env.LICENSE_ID?.valueFrom?.secretKeyRef).toEqual({ name: "crm-license", key: "LICENSE_ID" });
      expect(env.LICENSE_KEY?.valueFrom?.secretKeyRef).toEqual({ name: "crm-license", key: "LICENSE_KEY" });
      expect(env.LICENSE_KEY?.value).toBeUndefined(); // never a copy of the key
    }
    expect(d.spec.template.spec.containers[0]?.env?.find((e) => e.name === "RUNTIME_PARAMS")?.value).toBe(
      "x",
    );
    expect(d.metadata.managedFields.map((f) => `${f.manager}/${f.operation}`)).toContain(
      "mxops-license/Apply",
    );
    expect(JSON.stringify(d)).not.toContain("placeholder-license-key-for-tests");

    // Someone else's change (here: the license env removed by hand) is reconciled: the env comes back. Only
    // the echoes of the operator's own workload writes are skipped.
    const envOf = (dep: Awaited<ReturnType<typeof deploymentJson>>) =>
      (dep.spec.template.spec.containers[0]?.env ?? []).map((e) => e.name);
    const index = envOf(d).indexOf("LICENSE_KEY");
    await k([
      "patch",
      "deployment",
      "crm",
      "-n",
      n,
      "--type=json",
      "-p",
      JSON.stringify([{ op: "remove", path: `/spec/template/spec/containers/0/env/${index}` }]),
    ]);
    await until("the license env back", async () => envOf(await deploymentJson(n)).includes("LICENSE_KEY"));

    const tc = JSON.parse(await k(["get", "tc", "alice", "-n", n, "-o", "json"])) as {
      status?: { assignedApps?: string[]; assignedAppCount?: number };
    };
    await until("alice's assignedApps", async () => {
      const t = JSON.parse(await k(["get", "tc", "alice", "-n", n, "-o", "json"])) as typeof tc;
      return t.status?.assignedApps?.[0] === "crm" && t.status.assignedAppCount === 1;
    });
    await until(
      "the 'you are now the contact' mail",
      async () => mailsTo(n, "alice@example.com", /You are now the technical contact of crm/).length === 1,
    );
    expect(await eventReasons(n)).toContain("LicenseActivated");
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toContain(`mxops_license_state{namespace="${n}",app="crm",state="Active"} 1`);
    expect(metrics).toContain(`mxops_license_state{namespace="${n}",app="crm",state="Expired"} 0`);
    expect(metrics).toContain(`mxops_license_days_remaining{namespace="${n}",app="crm"} 200`);
    expect(metrics).toContain(`mxops_app_info{namespace="${n}",app="crm",hosting="OnPremises"} 1`);
    expect(metrics).toContain(`mxops_app_technical_contacts{namespace="${n}",app="crm"} 1`);
    expect(metrics).toMatch(
      new RegExp(`mxops_license_expiry_timestamp_seconds\\{namespace="${n}",app="crm"\\} \\d+`),
    );

    // Expired: trial mode again, and loud about it; the env stays (no restart; a renewed Secret applies).
    await setExpiry(n, -2);
    const expired = await until("the expired license", async () => {
      const st = await appStatus(n);
      return st.license?.state === "Expired" && condition(st, "Ready")?.status === "False" && st;
    });
    expect(condition(expired, "Licensed")).toMatchObject({ status: "False", reason: "Expired" });
    expect(condition(expired, "Ready")?.reason).toBe("LicenseExpired");
    expect(condition(expired, "Ready")?.message).toMatch(/expired on .*trial mode/);
    expect(envOf(await deploymentJson(n))).toContain("LICENSE_KEY");
    await until("the LicenseExpired Event", async () => (await eventReasons(n)).includes("LicenseExpired"));
  });

  it("keeps the license pending while the primary contact has no MxID, then activates it by itself", async () => {
    const n = ns.mxid ?? "";
    await k(
      ["apply", "-f", "-"],
      contact(n, "bob") +
        "---" +
        licenseSecret(n) +
        "---" +
        deployment(n) +
        "---" +
        app(n, { contacts: ["bob"] }),
    );
    const s = await until("PendingMxID", async () => {
      const st = await appStatus(n);
      return condition(st, "Licensed")?.reason === "PendingMxID" && st;
    });
    expect(condition(s, "Licensed")).toMatchObject({ status: "False", reason: "PendingMxID" });
    expect(condition(s, "Licensed")?.message).toMatch(/TechnicalContact "bob" has no MxID\. Set spec\.mxid/);
    expect(s.contacts?.withoutMxid).toEqual(["bob"]);
    expect((await deploymentJson(n)).spec.template.spec.containers[0]?.env?.map((e) => e.name)).toEqual([
      "RUNTIME_PARAMS",
    ]);
    await until("a LicensePendingMxID event", async () =>
      (await eventReasons(n)).includes("LicensePendingMxID"),
    );

    await k([
      "patch",
      "tc",
      "bob",
      "-n",
      n,
      "--type=merge",
      "-p",
      '{"spec":{"mxid":"bob.jansen@example.com"}}',
    ]);
    await until(
      "activation after the MxID is set",
      async () => (await appStatus(n)).license?.state === "Active",
    );
    const env = (await deploymentJson(n)).spec.template.spec.containers[0]?.env?.map((e) => e.name);
    expect(env).toEqual(expect.arrayContaining(["LICENSE_ID", "LICENSE_KEY"]));
  });

  it("marks an app whose contact does not exist, and recovers when it appears", async () => {
    const n = ns.missing ?? "";
    await k(
      ["apply", "-f", "-"],
      `${licenseSecret(n)}---${deployment(n)}---${app(n, { contacts: ["ghost"] })}`,
    );
    const s = await until("ContactNotFound", async () => {
      const st = await appStatus(n);
      return condition(st, "ContactAssigned")?.reason === "ContactNotFound" && st;
    });
    expect(condition(s, "ContactAssigned")?.message).toMatch(/not found in this namespace: ghost/);
    expect(condition(s, "Ready")).toMatchObject({ status: "False", reason: "ContactNotFound" });
    expect(s.contacts?.missing).toEqual(["ghost"]);
    await until("a ContactNotFound event", async () => (await eventReasons(n)).includes("ContactNotFound"));
    // Rule 1: after --default-contact-after (2s here) the cluster's default contact is told, once.
    const toDefault = () =>
      mailsTo(n, "platform-team@example.com", /^\[Warning\] crm has no technical contact$/);
    await until("the default contact's notice", async () => toDefault().length === 1);
    expect(toDefault()[0]?.decoded).toMatch(/none of ghost exists as a TechnicalContact/);
    const told = await appStatus(n);
    expect(told.contacts).toMatchObject({ defaultContactNotified: true, noneSince: s.contacts?.noneSince });
    expect(told.contacts?.noneSince).toMatch(/^\d{4}-\d\d-\d\dT/);
    await new Promise((r) => setTimeout(r, 3000));
    expect(toDefault()).toHaveLength(1);

    await k(["apply", "-f", "-"], contact(n, "ghost", "ghost@example.com"));
    const found = await until("the contact to be found", async () => {
      const st = await appStatus(n);
      return condition(st, "ContactAssigned")?.status === "True" && st;
    });
    expect(found.contacts?.noneSince).toBeUndefined();
    expect(found.contacts?.defaultContactNotified).toBeUndefined();
  });

  it("says exactly what is wrong with a license Secret", async () => {
    const n = ns.secrets ?? "";
    await applyAll(
      contact(n, "alice", "alice@example.com"),
      deployment(n),
      licenseSecret(n, "not-uuid", "12345"),
      licenseSecret(n, "no-key", undefined, ""),
      app(n, { name: "a1", contacts: ["alice"], secret: "not-uuid" }),
      app(n, { name: "a2", contacts: ["alice"], secret: "no-key" }),
      app(n, { name: "a3", contacts: ["alice"], secret: "absent" }),
    );
    for (const [name, reason] of [
      ["a1", "LicenseIdNotUUID"],
      ["a2", "LicenseKeyMissing"],
      ["a3", "LicenseSecretNotFound"],
    ]) {
      const s = await until(`${name}: ${reason}`, async () => {
        const st = await appStatus(n, name);
        return condition(st, "Licensed")?.reason === reason && st;
      });
      expect(s.license?.state).toBe("Unlicensed");
      expect(condition(s, "Licensed")?.message).toMatch(/trial mode: at most 6 concurrent users/);
    }
  });

  it("sends each renewal reminder once, to every contact, also across an operator restart", async () => {
    const n = ns.reminders ?? "";
    await applyAll(
      contact(n, "alice", "alice@example.com"),
      contact(n, "bob"),
      licenseSecret(n),
      deployment(n),
      app(n, { contacts: ["alice", "bob"], expiresAt: inDays(20) }),
    );
    await until(
      "the 30-day reminder to both contacts",
      async () =>
        mailsTo(n, "alice@example.com", /License of crm expires in 20 day/).length === 1 &&
        mailsTo(n, "bob@example.com", /License of crm expires in 20 day/).length === 1,
    );
    const s = await appStatus(n);
    expect(s.license).toMatchObject({ state: "Expiring", daysRemaining: 20, remindersSent: [90, 30] });

    expect(await op.stop()).toBe(0);
    start();
    await until("the operator to be back", async () =>
      op.logs().some((l) => l.msg === "controllers started"),
    );
    await new Promise((r) => setTimeout(r, 2000));
    expect(mailsTo(n, "alice@example.com", /License of crm expires/)).toHaveLength(1);

    // Into the next boundary (15 days): one more reminder each.
    await setExpiry(n, 10);
    await until(
      "the 15-day reminder",
      async () => mailsTo(n, "bob@example.com", /License of crm expires in 10 day/).length === 1,
    );
    expect(mailsTo(n, "alice@example.com", /License of crm expires/)).toHaveLength(2);
    expect((await appStatus(n)).license?.remindersSent).toEqual([90, 30, 15]);

    // Renewed (a new expiry date): a new license, whose reminders go out again from the first.
    await setExpiry(n, 60);
    await until(
      "the renewed license's 90-day reminder",
      async () => mailsTo(n, "alice@example.com", /License of crm expires in 60 day/).length === 1,
    );
    const renewed = await appStatus(n);
    expect(renewed.license).toMatchObject({ state: "Active", daysRemaining: 60, remindersSent: [90] });
  });

  it("notifies a Mendix Cloud app's contact ahead of maintenance once, and sends it no renewal reminders", async () => {
    const n = ns.maintenance ?? "";
    const soon = new Date(Date.now() + 2 * 3_600_000);
    const day = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"][
      soon.getUTCDay()
    ];
    const hhmm = soon.toISOString().slice(11, 16);
    const extra = `  maintenance: {dayOfWeek: ${day}, startTime: "${hhmm}", duration: 2h, noticeHours: 48}\n`;
    await applyAll(
      contact(n, "carol", "carol@example.com"),
      licenseSecret(n),
      deployment(n),
      app(n, { hosting: "MendixCloud", contacts: ["carol"], expiresAt: inDays(5), extra }),
    );
    await until(
      "the maintenance notice",
      async () => mailsTo(n, "carol@example.com", /Maintenance of crm on/).length === 1,
    );
    const s = await until("lastNoticeFor", async () => {
      const st = await appStatus(n);
      // lastNoticeFor comes with the outbox entry, the license fields with the reconcile's status write.
      return st.maintenance?.lastNoticeFor && st.license?.renewal ? st : undefined;
    });
    expect(s.maintenance?.lastNoticeFor).toBe(s.maintenance?.nextWindowStart);
    expect(s.license).toMatchObject({
      state: "Expiring",
      renewal: "Mendix",
      expandVia: "CustomerSuccessManager",
    });
    expect(s.license?.remindersSent).toBeUndefined();
    await new Promise((r) => setTimeout(r, 1500));
    expect(mailsTo(n, "carol@example.com", /Maintenance of crm/)).toHaveLength(1);
    expect(mailsTo(n, "carol@example.com", /License of crm expires/)).toHaveLength(0);
  });

  it("scales a Stopped app to 0 and restores the replicas when it runs again", async () => {
    const n = ns.startstop ?? "";
    await applyAll(
      contact(n, "alice", "alice@example.com"),
      licenseSecret(n),
      deployment(n, "crm", 3),
      app(n, { contacts: ["alice"] }),
    );
    await until("activation", async () => (await appStatus(n)).license?.state === "Active");
    await patchApp(n, '{"spec":{"state":"Stopped"}}');
    await until("0 replicas", async () => (await deploymentJson(n)).spec.replicas === 0);
    await until("remembered replicas", async () => (await appStatus(n)).workload?.rememberedReplicas === 3);
    await patchApp(n, '{"spec":{"state":"Running"}}');
    await until("3 replicas again", async () => (await deploymentJson(n)).spec.replicas === 3);
  });

  it("hands its old workload back (license env removed, a stop undone) when the app is pointed at another", async () => {
    const n = ns.startstop ?? "";
    await patchApp(n, '{"spec":{"state":"Stopped"}}');
    await until("0 replicas", async () => (await deploymentJson(n)).spec.replicas === 0);
    await applyAll(deployment(n, "crm-v2", 1));
    await patchApp(n, '{"spec":{"state":"Running","workloadRef":{"kind":"Deployment","name":"crm-v2"}}}');
    const envOf = async (name: string) =>
      (await deploymentJson(n, name)).spec.template.spec.containers.flatMap((c) =>
        (c.env ?? []).map((e) => e.name),
      );
    await until("the license on crm-v2", async () => (await envOf("crm-v2")).includes("LICENSE_ID"));
    await until("crm handed back", async () => !(await envOf("crm")).includes("LICENSE_ID"));
    expect((await deploymentJson(n, "crm")).spec.replicas).toBe(3);
    const s = await appStatus(n);
    expect(s.workload).toMatchObject({ kind: "Deployment", name: "crm-v2", licenseInjected: true });
  });

  it("announces a change of technical contact to the new and the old contact", async () => {
    const n = ns.change ?? "";
    await applyAll(
      contact(n, "alice", "alice@example.com"),
      contact(n, "bob", "bob@example.com"),
      licenseSecret(n),
      deployment(n),
      app(n, { contacts: ["alice"] }),
    );
    await until(
      "alice's welcome",
      async () => mailsTo(n, "alice@example.com", /You are now the technical contact/).length === 1,
    );
    // The first assignment comes with the app: its condition says so, no "changed" Event.
    expect(await eventReasons(n)).not.toContain("TechnicalContactChanged");
    await patchApp(n, '{"spec":{"technicalContacts":[{"name":"bob"}]}}');
    await until(
      "bob's welcome and alice's farewell",
      async () =>
        mailsTo(n, "bob@example.com", /You are now the technical contact of crm/).length === 1 &&
        mailsTo(n, "alice@example.com", /You are no longer the technical contact of crm/).length === 1,
    );
    await until("a TechnicalContactChanged event", async () =>
      (await eventReasons(n)).includes("TechnicalContactChanged"),
    );
    await until("assignedApps to follow", async () => {
      const get = async (c: string) =>
        (
          JSON.parse(await k(["get", "tc", c, "-n", n, "-o", "json"])) as {
            status?: { assignedAppCount?: number };
          }
        ).status?.assignedAppCount;
      return (await get("alice")) === 0 && (await get("bob")) === 1;
    });
  });

  it("keeps the license and says nothing new when its contact is replaced (deleted and created again), and keeps it on a handover to a contact without MxID", async () => {
    const n = ns.change ?? "";
    const generation = async () =>
      (
        JSON.parse(await k(["get", "deployment", "crm", "-n", n, "-o", "json"])) as {
          metadata: { generation: number };
        }
      ).metadata.generation;
    const before = await generation();
    const bobMails = () =>
      smtp.mails.filter((m) => m.to.includes("bob@example.com") && m.decoded.includes(n)).length;
    const mailsBefore = bobMails();
    // kubectl replace --force: bob is deleted and created again (Argo CD Replace=true, Flux force).
    await k(["replace", "--force", "-f", "-"], contact(n, "bob", "bob@example.com"));
    await new Promise((r) => setTimeout(r, 3000)); // reconciles of the missing and the returned contact
    expect(await generation()).toBe(before); // the license env was never taken out (no rollout)
    expect(bobMails()).toBe(mailsBefore); // neither "no longer" nor "now" again
    // Handed over to carol, who has no MxID yet: the running app keeps its license, and the status says so.
    await applyAll(contact(n, "carol"));
    await patchApp(n, '{"spec":{"technicalContacts":[{"name":"carol"}]}}');
    const licensed = await until("the kept license's warning", async () => {
      const c = condition(await appStatus(n), "Licensed");
      return c?.message?.includes('TechnicalContact "carol" has no MxID') ? c : undefined;
    });
    expect(licensed.status).toBe("True");
    expect(await generation()).toBe(before);
    await until("a LicensePendingMxID event", async () =>
      (await eventReasons(n)).includes("LicensePendingMxID"),
    );
  });

  it("with its workload's updates refused by a policy, still hands the contact role over and says why it is not Ready", async () => {
    const n = ns.locked ?? "";
    const person = (name: string) => `
apiVersion: mxops.dev/v1alpha1
kind: TechnicalContact
metadata: {name: ${name}, namespace: ${n}}
spec: {displayName: ${name}, email: ${name}@example.com, mxid: ${name}@example.com, identities: {users: [${name}@example.com]}}
`;
    await applyAll(
      person("alice"),
      person("carol"),
      licenseSecret(n),
      deployment(n, "crm", 2),
      app(n, { contacts: ["alice"] }),
    );
    await until("activation", async () => (await appStatus(n)).workload?.licenseInjected === true);
    const bindingUsers = async () =>
      (
        JSON.parse(await k(["get", "rolebinding", `mxops-crm-technical-contact`, "-n", n, "-o", "json"])) as {
          subjects?: { name: string }[];
        }
      ).subjects?.map((s) => s.name);
    expect(await bindingUsers()).toEqual(["alice@example.com"]);
    // A cluster policy (as Kyverno or Gatekeeper would) that refuses every change to this namespace's Deployments.
    const policy = await refuseDeploymentUpdates(
      n,
      `mxops-test-locked-${n}`,
      "false",
      "deployments are frozen for the audit",
    );
    try {
      await patchApp(n, '{"spec":{"state":"Stopped","technicalContacts":[{"name":"carol"}]}}');
      // Stopping fails, the rest goes on: carol gets the role, alice loses it, and the status says why.
      await until("the role handed over", async () => (await bindingUsers())?.join() === "carol@example.com");
      const ready = await until("Ready=False", async () => {
        const c = condition(await appStatus(n), "Ready");
        return c?.reason === "WorkloadUpdateFailed" ? c : undefined;
      });
      expect(ready.status).toBe("False");
      expect(ready.message).toMatch(/updating Deployment crm failed: .*frozen for the audit/);
      expect((await appStatus(n)).contacts?.primary).toBe("carol");
      expect((await deploymentJson(n)).spec.replicas).toBe(2);
    } finally {
      await liftPolicy(policy);
    }
    // Lifted: the retry goes through.
    await until("0 replicas", async () => (await deploymentJson(n)).spec.replicas === 0, 60_000);
    await until("Ready again", async () => condition(await appStatus(n), "Ready")?.status === "True");
  });

  it("on deletion removes the license env and leaves the workload running", async () => {
    const n = ns.delete ?? "";
    await applyAll(
      contact(n, "alice", "alice@example.com"),
      licenseSecret(n),
      deployment(n, "crm", 2),
      app(n, { contacts: ["alice"] }),
    );
    await until("activation", async () => (await appStatus(n)).workload?.licenseInjected === true);
    await k(["delete", "mxapp", "crm", "-n", n, "--timeout=30s"]);
    const d = await deploymentJson(n);
    expect(d.spec.replicas).toBe(2);
    for (const c of d.spec.template.spec.containers)
      expect((c.env ?? []).map((e) => e.name)).not.toContain("LICENSE_ID");
    expect(d.spec.template.spec.containers[0]?.env?.map((e) => e.name)).toEqual(["RUNTIME_PARAMS"]);
    await expect(k(["get", "mxapp", "crm", "-n", n])).rejects.toThrow(/NotFound/);
  });
  it("on deletion also hands back the workload it was moved away from, once a refusing policy lets it", async () => {
    const n = ns.moved ?? "";
    await applyAll(
      contact(n, "alice", "alice@example.com"),
      licenseSecret(n),
      deployment(n, "crm", 2),
      deployment(n, "crm-v2", 1),
      app(n, { contacts: ["alice"] }),
    );
    await until("activation", async () => (await appStatus(n)).workload?.licenseInjected === true);
    const envOf = async (name: string) =>
      (await deploymentJson(n, name)).spec.template.spec.containers.flatMap((c) =>
        (c.env ?? []).map((e) => e.name),
      );
    // A policy refuses changes to crm only: the app is pointed at crm-v2, but crm cannot be handed back yet.
    const policy = await refuseDeploymentUpdates(
      n,
      `mxops-test-moved-${n}`,
      "object.metadata.name != 'crm'",
      "crm is frozen",
    );
    let lifted = false;
    try {
      // (crm-v2 gets the license only once crm is handed back: one license, one workload.)
      await patchApp(n, '{"spec":{"workloadRef":{"kind":"Deployment","name":"crm-v2"}}}');
      await until("the hand-back refused", async () => {
        const c = condition(await appStatus(n), "Ready");
        return c?.reason === "WorkloadUpdateFailed";
      });
      expect((await appStatus(n)).workload?.name).toBe("crm"); // still naming the workload it could not hand back
      expect(await envOf("crm")).toContain("LICENSE_ID");
      // Deleted now: the app waits for crm, it does not leave crm with the license.
      await k(["delete", "mxapp", "crm", "-n", n, "--wait=false"]);
      await new Promise((r) => setTimeout(r, 2000));
      await k(["get", "mxapp", "crm", "-n", n]);
      await liftPolicy(policy);
      lifted = true;
    } finally {
      if (!lifted) await liftPolicy(policy);
    }
    await until(
      "the app gone",
      async () =>
        k(["get", "mxapp", "crm", "-n", n]).then(
          () => false,
          (e: Error) => /NotFound/.test(e.message),
        ),
      60_000,
    );
    expect(await envOf("crm")).not.toContain("LICENSE_ID");
    expect(await envOf("crm-v2")).not.toContain("LICENSE_ID");
    expect((await deploymentJson(n, "crm")).spec.replicas).toBe(2);
  });

  it("forgets a stop its workload's owner undid with the change to Running, so a later scale to 0 stays", async () => {
    const n = ns.gitops ?? "";
    await applyAll(
      contact(n, "alice", "alice@example.com"),
      licenseSecret(n),
      deployment(n, "crm", 3),
      app(n, { contacts: ["alice"], state: "Stopped" }),
    );
    await until("0 replicas", async () => (await deploymentJson(n)).spec.replicas === 0);
    await until("remembered replicas", async () => (await appStatus(n)).workload?.rememberedReplicas === 3);
    // A GitOps sync applies both manifests, the Deployment with its replicas and the app Running, and the
    // operator sees both at once (here: while it was restarting; otherwise a matter of timing).
    await op.stop();
    await applyAll(deployment(n, "crm", 3), app(n, { contacts: ["alice"] }));
    start();
    const note = async () =>
      (
        JSON.parse(await k(["get", "deployment", "crm", "-n", n, "-o", "json"])) as {
          metadata: { annotations?: Record<string, string> };
        }
      ).metadata.annotations?.["mxops.dev/replicas-before-stop"];
    await until("the stop forgotten", async () => (await note()) === undefined);
    await until(
      "the status without it",
      async () => (await appStatus(n)).workload?.rememberedReplicas === undefined,
    );
    // Someone scales the running app's workload to 0 (a drill): the operator leaves it there.
    await k(["scale", "deployment", "crm", "-n", n, "--replicas=0"]);
    await new Promise((r) => setTimeout(r, 3000));
    expect((await deploymentJson(n)).spec.replicas).toBe(0);
  });
});
