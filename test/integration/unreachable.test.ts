// Notifications nothing reaches: an operator without SMTP, a contact with only an email address. Nothing is
// recorded as sent, the contact says why, a counter tells how many were not sent; a webhook added later works.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../controlplane/controlplane.ts";
import { type HttpReceiver, startHttpReceiver } from "../support/http-receiver.ts";
import { adminKubeconfig, eventually, kubectl, newNamespace } from "./helpers.ts";
import { installCrds, type OperatorProcess, startOperator } from "./operator.ts";

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}
interface Status {
  observedGeneration?: number;
  conditions?: Condition[];
  contacts?: { notified?: string[] };
  notifications?: { id: string; kind: string; state: string; delivered?: string[] }[];
}

const k = (args: string[], input?: string) => kubectl(adminKubeconfig(), args, input);
const statusOf = async (kind: string, ns: string, name: string): Promise<Status> =>
  (JSON.parse(await k(["get", kind, name, "-n", ns, "-o", "json"])) as { status?: Status }).status ?? {};
const condition = (s: Status, type: string) => s.conditions?.find((c) => c.type === type);

const contact = (ns: string, name: string, webhook?: string) => `
apiVersion: mxops.dev/v1alpha1
kind: TechnicalContact
metadata: {name: ${name}, namespace: ${ns}}
spec:
  displayName: ${name}
  email: ${name}@example.com
  mxid: ${name}@example.com
${webhook ? `  channels: {webhook: {url: "${webhook}/hooks/${name}", secretRef: {name: ${name}-webhook}}}\n` : ""}${
  webhook
    ? `---\napiVersion: v1\nkind: Secret\nmetadata: {name: ${name}-webhook, namespace: ${ns}}\nstringData: {secret: whsec_c2lnbmluZy1rZXk=}\n`
    : ""
}`;

const app = (ns: string, contacts: string[]) => `
apiVersion: mxops.dev/v1alpha1
kind: MendixApp
metadata: {name: shop, namespace: ${ns}}
spec:
  hosting: OnPremises
  technicalContacts: [${contacts.map((c) => `{name: ${c}}`).join(", ")}]
`;

describe("notifications no channel reaches (no SMTP configured)", () => {
  let op: OperatorProcess | undefined;
  let hooks: HttpReceiver;
  let metricsPort = 0;
  beforeAll(async () => {
    await installCrds();
    hooks = await startHttpReceiver();
  });
  afterAll(async () => {
    op?.child.kill("SIGKILL");
    await hooks?.close();
  });

  it("records nothing as sent, says so on the contact, counts it, and delivers once a channel reaches", async () => {
    const ns = await newNamespace("unreach");
    metricsPort = await freePort();
    op = startOperator([`--namespaces=${ns}`], { MXOPS_METRICS_BIND_ADDRESS: `127.0.0.1:${metricsPort}` });
    await k(["apply", "-f", "-"], contact(ns, "alice"));
    await k(["apply", "-f", "-"], app(ns, ["alice"]));

    const settled = await eventually(
      async () => {
        const s = await statusOf("mendixapp", ns, "shop");
        return s.contacts?.notified?.includes("alice") ? s : undefined;
      },
      { what: "the app reconciled with alice notified (as far as anything reaches her)" },
    );
    // The assignment notice reached no one: no record claims it was sent.
    expect(settled.notifications ?? []).toEqual([]);
    expect(condition(settled, "ContactAssigned")?.status).toBe("True");
    const alice = await eventually(
      async () => {
        const s = await statusOf("technicalcontact", ns, "alice");
        return condition(s, "Reachable") ? s : undefined;
      },
      { what: "alice's Reachable condition" },
    );
    expect(condition(alice, "Reachable")).toMatchObject({ status: "False", reason: "NoChannel" });
    expect(condition(alice, "Reachable")?.message).toMatch(/--smtp-host \(MXOPS_SMTP_HOST\)/);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(
      /mxops_notifications_total\{channel="none",kind="ContactAssigned",result="unreachable"\} 1\n/,
    );

    // Bob has a webhook: his assignment is recorded, delivered, and closed as Sent.
    await k(["apply", "-f", "-"], contact(ns, "bob", hooks.url));
    await k(["apply", "-f", "-"], app(ns, ["alice", "bob"]));
    const sent = await eventually(
      async () => {
        const s = await statusOf("mendixapp", ns, "shop");
        const r = s.notifications?.find((x) => x.kind === "ContactAssigned");
        return r?.state === "Sent" ? r : undefined;
      },
      { what: "bob's assignment notice sent" },
    );
    expect(sent.delivered).toEqual([`${sent.id}/webhook/contact:bob`]);
    expect(hooks.received.filter((r) => r.path === "/hooks/bob")).toHaveLength(1);
    const bob = await statusOf("technicalcontact", ns, "bob");
    expect(condition(bob, "Reachable")).toMatchObject({
      status: "True",
      reason: "ChannelConfigured",
      message: "notifications reach this contact by webhook",
    });

    // Carol's webhook has no secretRef: every attempt would fail unsigned, so it reaches nobody and says so.
    await k(
      ["apply", "-f", "-"],
      `apiVersion: mxops.dev/v1alpha1
kind: TechnicalContact
metadata: {name: carol, namespace: ${ns}}
spec: {displayName: carol, email: carol@example.com, channels: {webhook: {url: "${hooks.url}/hooks/carol"}}}
`,
    );
    const carol = await eventually(
      async () => {
        const c = condition(await statusOf("technicalcontact", ns, "carol"), "Reachable");
        return c ? c : undefined;
      },
      { what: "carol's Reachable condition" },
    );
    expect(carol).toMatchObject({ status: "False", reason: "NoChannel" });
    expect(carol.message).toMatch(/spec\.channels\.webhook with its secretRef/);
  });
});
