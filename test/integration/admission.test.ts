// Who may change what, on the real API server: the operator's validating webhook called by the kube-apiserver,
// users minted by the control plane (client certificates), and the RBAC the operator derives from node permissions.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../controlplane/controlplane.ts";
import { adminKubeconfig, eventually, kubectl, newNamespace, userKubeconfig } from "./helpers.ts";
import { installCrds, type OperatorProcess, startOperator } from "./operator.ts";

const admin = (args: string[], input?: string) => kubectl(adminKubeconfig(), args, input);

describe("admission and node permissions", () => {
  let ns: string;
  let op: OperatorProcess;
  let port: number;
  let vwc: string;
  const alice = () => userKubeconfig("alice@example.com", ["people"]);
  const bob = () => userKubeconfig("bob@example.com", ["people"]);
  const mallory = () => userKubeconfig("mallory@example.com", ["people"]);
  // Dave has no RBAC but what his node permissions give him.
  const dave = () => userKubeconfig("dave@example.com");

  const policy = (name: string, warning = 70) =>
    `apiVersion: mxops.dev/v1alpha1\nkind: AlertPolicy\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n  appRef: {name: crm}\n  rules: [{name: disk, metric: Disk, warningPercent: ${warning}}]\n`;
  const refusal = async (kc: string, args: string[], input?: string) => {
    try {
      await kubectl(kc, args, input);
      return "(allowed)";
    } catch (e) {
      return (e as Error).message;
    }
  };
  /** "<exit code> <stderr>" of a kubectl command: how its admission warnings are seen. */
  const exitAndStderr = (kc: string, args: string[]) =>
    new Promise<string>((resolve) => {
      const child = spawn("kubectl", ["--kubeconfig", kc, ...args]);
      let err = "";
      child.stderr.on("data", (d: Buffer) => {
        err += d.toString();
      });
      child.on("close", (code) => resolve(`${code} ${err}`));
    });
  const mergePatch = (json: string) => ["patch", "mxapp", "crm", "-n", ns, "--type=merge", "-p", json];
  const canI = async (kc: string, verb: string, what: string) =>
    (await refusal(kc, ["auth", "can-i", verb, what, "-n", ns])).includes("(allowed)");

  beforeAll(async () => {
    await installCrds();
    // metrics.k8s.io must be served for `kubectl auth can-i list pods.metrics.k8s.io` to resolve it.
    await admin(["apply", "-f", join(import.meta.dirname, "..", "fixtures", "podmetrics-crd.yaml")]);
    await admin(["wait", "--for=condition=Established", "crd/pods.metrics.k8s.io"]);
    ns = await newNamespace("admission");
    port = await freePort();
    vwc = `mxops-test-${ns}`;
    // Scoped to this test's namespace, so other tests never meet this webhook.
    const hook = (name: string, path: string, resource: string, operations: string[]) => `
  - name: ${name}.mxops.dev
    clientConfig: {url: "https://127.0.0.1:${port}${path}"}
    rules: [{apiGroups: [mxops.dev], apiVersions: [v1alpha1], operations: [${operations.join(", ")}], resources: [${resource}]}]
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ${ns}}}
    failurePolicy: Fail
    sideEffects: None
    timeoutSeconds: 5
    admissionReviewVersions: [v1]`;
    await admin(
      ["apply", "-f", "-"],
      `
apiVersion: mxops.dev/v1alpha1
kind: TechnicalContact
metadata: {name: alice, namespace: ${ns}}
spec: {displayName: Alice, email: alice@example.com, mxid: alice@example.com, identities: {users: [alice@example.com]}}
---
apiVersion: mxops.dev/v1alpha1
kind: TechnicalContact
metadata: {name: bob, namespace: ${ns}}
spec: {displayName: Bob, email: bob@example.com, mxid: bob@example.com, identities: {users: [bob@example.com]}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: crm, namespace: ${ns}}
spec:
  replicas: 1
  selector: {matchLabels: {app: crm}}
  template:
    metadata: {labels: {app: crm}}
    spec: {containers: [{name: mendix, image: "mendix/runtime-base:latest"}]}
---
apiVersion: mxops.dev/v1alpha1
kind: MendixApp
metadata: {name: crm, namespace: ${ns}}
spec:
  hosting: OnPremises
  technicalContacts: [{name: alice}]
  workloadRef: {kind: Deployment, name: crm}
  permissions:
    - subject: {kind: User, name: dave@example.com}
      rights: [Deploy, Monitoring]
    - subject: {kind: Group, name: alert-readers}
      rights: [ReceiveAlerts]
---
# Everyone in "people" may edit mxops objects as far as RBAC goes: the webhook is what stops them.
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: mxops-editor, namespace: ${ns}}
rules: [{apiGroups: [mxops.dev], resources: [alertpolicies, mendixapps, technicalcontacts], verbs: [get, list, create, update, patch, delete]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: people-edit, namespace: ${ns}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: mxops-editor}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: people}]
`,
    );
    await admin(
      ["apply", "-f", "-"],
      `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: ${vwc}}
webhooks:${hook("alertpolicies", "/validate-mxops-dev-v1alpha1-alertpolicy", "alertpolicies", ["CREATE", "UPDATE", "DELETE"])}${hook("mendixapps", "/validate-mxops-dev-v1alpha1-mendixapp", "mendixapps", ["CREATE", "UPDATE"])}${hook("technicalcontacts", "/validate-mxops-dev-v1alpha1-technicalcontact", "technicalcontacts", ["CREATE", "UPDATE", "DELETE"])}
`,
    );
    op = startOperator([`--namespaces=${ns}`], {
      MXOPS_WEBHOOK_PORT: String(port),
      MXOPS_WEBHOOK_HOST_NAMES: "localhost",
      MXOPS_WEBHOOK_CONFIGURATION_NAME: vwc,
    });
    await eventually(
      async () =>
        (
          await admin([
            "get",
            "validatingwebhookconfiguration",
            vwc,
            "-o",
            "jsonpath={.webhooks[1].clientConfig.caBundle}",
          ])
        ).length > 100
          ? true
          : undefined,
      { what: "the CA bundle in the webhook configuration" },
    );
    await eventually(
      async () =>
        (await admin(["get", "rolebinding", "mxops-crm-technical-contact", "-n", ns, "-o", "name"]))
          ? true
          : undefined,
      {
        what: "the operator's RBAC for crm",
      },
    );
  });

  afterAll(async () => {
    await op?.stop();
    if (vwc) await admin(["delete", "validatingwebhookconfiguration", vwc, "--ignore-not-found"]);
  });

  it("lets the contact and admins set alert policies and refuses everyone else, saying who may", async () => {
    expect(await refusal(alice(), ["apply", "-f", "-"], policy("by-alice"))).toBe("(allowed)");
    expect(await refusal(adminKubeconfig(), ["apply", "-f", "-"], policy("by-admin"))).toBe("(allowed)");
    const denied = await refusal(mallory(), ["apply", "-f", "-"], policy("by-mallory"));
    expect(denied).toMatch(
      /admission webhook "alertpolicies\.mxops\.dev" denied the request: mallory@example\.com may not change the alert settings of crm: only the technical contacts of crm: alice \(user alice@example\.com\), and cluster admins, may/,
    );
    expect(await refusal(mallory(), ["apply", "-f", "-"], policy("by-alice", 60))).toMatch(
      /denied the request/,
    );
    expect(await refusal(mallory(), ["delete", "mxalert", "by-alice", "-n", ns])).toMatch(
      /denied the request/,
    );
    expect(await refusal(alice(), ["delete", "mxalert", "by-alice", "-n", ns])).toBe("(allowed)");
  });

  it("checks a policy's apps before and after a change, and lets Kubernetes' clean-up and orphans go", async () => {
    const appYaml = (name: string, contact: string, extra = "") =>
      `apiVersion: mxops.dev/v1alpha1\nkind: MendixApp\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n  hosting: OnPremises\n  technicalContacts: [{name: ${contact}}]\n${extra}`;
    await admin(["apply", "-f", "-"], appYaml("hr", "bob"));
    expect(await refusal(alice(), ["apply", "-f", "-"], policy("retarget"))).toBe("(allowed)");
    // Bob may set hr's alerts, but taking crm's policy for hr changes crm's alerts: refused.
    const retarget = ["patch", "mxalert", "retarget", "-n", ns, "--type=merge", "-p"];
    expect(await refusal(bob(), [...retarget, '{"spec":{"appRef":{"name":"hr"}}}'])).toMatch(
      /bob@example\.com may not change the alert settings of crm: only the technical contacts of crm: alice/,
    );
    // Labels and annotations (a GitOps tool's tracking marks) are not alert settings.
    expect(
      await refusal(mallory(), [
        "label",
        "mxalert",
        "retarget",
        "-n",
        ns,
        "argocd.argoproj.io/instance=apps",
      ]),
    ).toBe("(allowed)");

    // Deleting a namespace: the namespace controller deletes every policy as itself, and must not be refused.
    const cleanup = "system:serviceaccount:kube-system:namespace-controller";
    await admin(
      ["apply", "-f", "-"],
      `apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: namespace-controller, namespace: ${ns}}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: mxops-editor}\nsubjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "${cleanup}"}]\n`,
    );
    const controller = userKubeconfig(cleanup, [
      "system:serviceaccounts",
      "system:serviceaccounts:kube-system",
    ]);
    expect(await refusal(controller, ["delete", "mxalert", "retarget", "-n", ns])).toBe("(allowed)");
    // A policy whose app is gone covers nobody's alerts: whoever RBAC lets may delete it.
    await admin(["apply", "-f", "-"], policy("orphan").replace("{name: crm}", "{name: gone}"));
    expect(await refusal(mallory(), ["delete", "mxalert", "orphan", "-n", ns])).toBe("(allowed)");

    // Created with ManagePermissions granted: by a contact of the app or an admin, nobody else.
    const granting = (name: string) =>
      appYaml(
        name,
        "alice",
        "  permissions: [{subject: {kind: User, name: mallory@example.com}, rights: [ManagePermissions]}]\n",
      );
    expect(await refusal(mallory(), ["apply", "-f", "-"], granting("m1"))).toMatch(
      /mallory@example\.com may not grant ManagePermissions \(to User:mallory@example\.com\) of m1/,
    );
    expect(await refusal(alice(), ["apply", "-f", "-"], granting("m2"))).toBe("(allowed)");
    await admin(["delete", "mxapp", "hr", "m2", "-n", ns, "--wait=false"]);
  });

  it("lets only the person and admins change who acts as a technical contact", async () => {
    const identities = (users: string[]) => [
      "patch",
      "tc",
      "alice",
      "-n",
      ns,
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { identities: { users } } }),
    ];
    expect(await refusal(mallory(), identities(["alice@example.com", "mallory@example.com"]))).toMatch(
      /mallory@example\.com may not change who acts as TechnicalContact alice \(user alice@example\.com\): only that person, and cluster admins, may/,
    );
    // Anything else about the contact is RBAC's business; the person may change their own identities.
    expect(await refusal(mallory(), ["annotate", "tc", "alice", "-n", ns, "team=crm"])).toBe("(allowed)");
    expect(await refusal(alice(), identities(["alice@example.com", "alice@corp.example"]))).toBe("(allowed)");
    expect(await refusal(adminKubeconfig(), identities(["alice@example.com"]))).toBe("(allowed)");

    // Alice is crm's only contact: deleting her leaves crm without one (rule 1), which is said, not refused
    // (kubectl delete -f of a directory and GitOps prunes delete in any order).
    expect(await exitAndStderr(alice(), ["delete", "tc", "alice", "-n", ns, "--dry-run=server"])).toMatch(
      /^0 Warning: TechnicalContact alice is the only technical contact of crm, which now have none/,
    );
    // Deleting alice and creating her again as someone else is a takeover: only crm's other contacts (none)
    // and admins may create, with identities, a contact crm names.
    const asMallory = `apiVersion: mxops.dev/v1alpha1\nkind: TechnicalContact\nmetadata: {name: alice, namespace: ${ns}}\nspec: {displayName: Alice, email: alice@example.com, identities: {users: [mallory@example.com]}}\n`;
    expect(await refusal(mallory(), ["create", "--dry-run=server", "-f", "-"], asMallory)).toMatch(
      /mallory@example\.com may not create TechnicalContact alice with identities: crm names it as technical contact/,
    );
    // A contact no app names yet is anyone's to create.
    expect(
      await refusal(
        mallory(),
        ["create", "--dry-run=server", "-f", "-"],
        asMallory.replace("name: alice,", "name: zed,"),
      ),
    ).toBe("(allowed)");
  });

  it("lets only contacts and admins relabel an app in or out of a policy's selector", async () => {
    await admin(["label", "mxapp", "crm", "-n", ns, "team=crm"]);
    await admin(
      ["apply", "-f", "-"],
      `apiVersion: mxops.dev/v1alpha1\nkind: AlertPolicy\nmetadata: {name: by-team, namespace: ${ns}}\nspec:\n  appSelector: {matchLabels: {team: crm}}\n  rules: [{name: disk, metric: Disk}]\n`,
    );
    // Dave's Deploy right lets him patch the app, but not out of its alerts.
    expect(await refusal(dave(), ["label", "mxapp", "crm", "-n", ns, "team-"])).toMatch(
      /dave@example\.com may not change the labels of crm that AlertPolicies select it by \(by-team\)/,
    );
    expect(await refusal(dave(), ["label", "mxapp", "crm", "-n", ns, "tier=gold"])).toBe("(allowed)");
    expect(await refusal(alice(), ["label", "mxapp", "crm", "-n", ns, "team-"])).toBe("(allowed)");
    await admin(["delete", "mxalert", "by-team", "-n", ns]);
  });

  it("guards node permissions: contacts may change them, only a contact may grant ManagePermissions", async () => {
    const patch = (rights: string[]) => [
      "patch",
      "mxapp",
      "crm",
      "-n",
      ns,
      "--type=json",
      "-p",
      JSON.stringify([
        {
          op: "add",
          path: "/spec/permissions/-",
          value: { subject: { kind: "User", name: "erin@example.com" }, rights },
        },
      ]),
    ];
    expect(await refusal(mallory(), patch(["Monitoring"]))).toMatch(
      /mallory@example\.com may not change the node permissions of crm/,
    );
    expect(await refusal(dave(), patch(["Monitoring"]))).toMatch(/may not change the node permissions/);
    expect(await refusal(adminKubeconfig(), patch(["ManagePermissions"]))).toMatch(
      /may not grant ManagePermissions \(to User:erin@example\.com\)/,
    );
    expect(await refusal(alice(), patch(["ManagePermissions"]))).toBe("(allowed)");
    // Changes outside permissions and contacts are RBAC's business only.
    expect(await refusal(dave(), mergePatch('{"spec":{"state":"Stopped"}}'))).toBe("(allowed)");
  });

  it("lets only contacts and admins retarget an app's workload, and never onto another app's", async () => {
    // Dave's Deploy right lets him patch crm (to start and stop it), not point it at portal's StatefulSet.
    expect(
      await refusal(dave(), mergePatch('{"spec":{"workloadRef":{"kind":"StatefulSet","name":"portal"}}}')),
    ).toMatch(/dave@example\.com may not change the workload \(spec\.workloadRef\) of crm/);
    expect(await refusal(dave(), mergePatch('{"spec":{"license":{"secretRef":{"name":"other"}}}}'))).toMatch(
      /may not change the license Secret \(spec\.license\.secretRef\) of crm/,
    );
    // Not even an admin may give one workload to two apps.
    await admin(
      ["apply", "-f", "-"],
      `apiVersion: mxops.dev/v1alpha1\nkind: MendixApp\nmetadata: {name: twin, namespace: ${ns}}\nspec:\n  hosting: OnPremises\n  environment: test\n  technicalContacts: [{name: alice}]\n`,
    );
    const crmWorkload = JSON.parse(
      await admin(["get", "mxapp", "crm", "-n", ns, "-o", "jsonpath={.spec.workloadRef}"]),
    ) as { kind: string; name: string };
    expect(
      await refusal(adminKubeconfig(), [
        "patch",
        "mxapp",
        "twin",
        "-n",
        ns,
        "--type=merge",
        "-p",
        JSON.stringify({ spec: { workloadRef: crmWorkload } }),
      ]),
    ).toMatch(
      new RegExp(
        `spec\\.workloadRef: ${crmWorkload.kind} ${crmWorkload.name} is already the workload of MendixApp crm`,
      ),
    );
    await admin(["delete", "mxapp", "twin", "-n", ns]);
  });

  it("lets nobody make a workload an app's without the right to update it: the app hands rights on it", async () => {
    await admin(
      ["apply", "-f", "-"],
      `apiVersion: apps/v1
kind: Deployment
metadata: {name: vault, namespace: ${ns}}
spec:
  replicas: 1
  selector: {matchLabels: {app: vault}}
  template:
    metadata: {labels: {app: vault}}
    spec: {containers: [{name: vault, image: "hashicorp/vault:latest"}]}
`,
    );
    // Mallory may edit mxops objects, not Deployments: she names herself the contact of a new app on vault.
    await kubectl(
      mallory(),
      ["apply", "-f", "-"],
      `apiVersion: mxops.dev/v1alpha1\nkind: TechnicalContact\nmetadata: {name: mal, namespace: ${ns}}\nspec: {displayName: Mal, email: mallory@example.com, identities: {users: [mallory@example.com]}}\n`,
    );
    const grab = `apiVersion: mxops.dev/v1alpha1\nkind: MendixApp\nmetadata: {name: grab, namespace: ${ns}}\nspec:\n  hosting: OnPremises\n  technicalContacts: [{name: mal}]\n  workloadRef: {kind: Deployment, name: vault}\n`;
    expect(await refusal(mallory(), ["apply", "-f", "-"], grab)).toMatch(
      /mallory@example\.com may not make Deployment vault the workload of MendixApp grab: .*update on deployments vault/,
    );
    expect(await canI(mallory(), "patch", "deployment/vault")).toBe(false);
    // With the right to update vault herself she hands nobody more than she holds.
    await admin(
      ["apply", "-f", "-"],
      `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: vault-editor, namespace: ${ns}}
rules: [{apiGroups: [apps], resources: [deployments], resourceNames: [vault], verbs: [get, update, patch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: mallory-vault, namespace: ${ns}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: vault-editor}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: mallory@example.com}]
`,
    );
    expect(await refusal(mallory(), ["apply", "-f", "-"], grab)).toBe("(allowed)");
    await admin(["delete", "mxapp", "grab", "-n", ns]);
    await admin(["delete", "technicalcontact", "mal", "-n", ns]);
  });

  it("turns each right into exactly the RBAC it needs", async () => {
    await eventually(
      async () =>
        (await canI(userKubeconfig("erin@example.com"), "get", "mendixapps/crm")) ? true : undefined,
      { what: "erin's ManagePermissions role" },
    );
    const matrix: [string, () => string, string, string, boolean][] = [
      ["Deploy: patch the app", dave, "patch", "mendixapps/crm", true],
      ["Deploy: scale the workload", dave, "patch", "deployments/crm", true],
      ["Deploy: no other workloads", dave, "patch", "deployments/other", false],
      ["Deploy: no deleting the app", dave, "delete", "mendixapps/crm", false],
      ["Monitoring: read pods", dave, "list", "pods", true],
      ["Monitoring: read pod metrics", dave, "list", "pods.metrics.k8s.io", true],
      ["nobody: Secrets", dave, "get", "secrets", false],
      [
        "ReceiveAlerts: no RBAC",
        () => userKubeconfig("reader@example.com", ["alert-readers"]),
        "get",
        "mendixapps/crm",
        false,
      ],
      [
        "ManagePermissions: read the app",
        () => userKubeconfig("erin@example.com"),
        "get",
        "mendixapps/crm",
        true,
      ],
      // Changing permissions stays with the contacts (rule 7); patch would let erin stop the app (Deploy's right).
      [
        "ManagePermissions: no patching the app",
        () => userKubeconfig("erin@example.com"),
        "patch",
        "mendixapps/crm",
        false,
      ],
      ["contact: alert policies", () => userKubeconfig("alice@example.com"), "create", "alertpolicies", true],
      ["contact: the workload", alice, "patch", "deployments/crm", true],
      ["outsider: nothing", () => userKubeconfig("outsider@example.com"), "get", "mendixapps/crm", false],
    ];
    const wrong: string[] = [];
    for (const [what, kc, verb, resource, expected] of matrix) {
      if ((await canI(kc(), verb, resource)) !== expected)
        wrong.push(`${what}: can-i ${verb} ${resource} should be ${expected}`);
    }
    expect(wrong).toEqual([]);
    const role = JSON.parse(await admin(["get", "role", "mxops-crm-deploy", "-n", ns, "-o", "json"])) as {
      metadata: { ownerReferences: { kind: string; name: string }[] };
    };
    expect(role.metadata.ownerReferences).toEqual([
      expect.objectContaining({ kind: "MendixApp", name: "crm" }),
    ]);
  });

  it("lets the current contact hand over; the old contact loses the role's rights; missing contacts only warn", async () => {
    expect(await refusal(mallory(), mergePatch('{"spec":{"technicalContacts":[{"name":"bob"}]}}'))).toMatch(
      /may not change the technical contacts of crm/,
    );
    expect(await refusal(alice(), mergePatch('{"spec":{"technicalContacts":[{"name":"bob"}]}}'))).toBe(
      "(allowed)",
    );
    // The workload is reachable only through the contact's role (the "people" role covers mxops objects).
    await eventually(async () => ((await canI(alice(), "patch", "deployments/crm")) ? undefined : true), {
      what: "alice to lose the contact's rights",
    });
    expect(await canI(bob(), "patch", "deployments/crm")).toBe(true);
    expect(await refusal(alice(), ["apply", "-f", "-"], policy("after-handover"))).toMatch(
      /may not change the alert settings of crm: only the technical contacts of crm: bob/,
    );

    // A contact that does not exist yet (GitOps applies in any order) is a warning, not a refusal.
    const warned = await exitAndStderr(
      adminKubeconfig(),
      mergePatch('{"spec":{"technicalContacts":[{"name":"bob"},{"name":"ghost2"}]}}'),
    );
    expect(warned).toMatch(/^0 Warning: TechnicalContact ghost2 does not exist \(yet\)/);
  });

  it("refuses guarded changes while the webhook is down (failurePolicy: Fail)", async () => {
    expect(await op.stop()).toBe(0);
    const denied = await refusal(adminKubeconfig(), ["apply", "-f", "-"], policy("while-down"));
    expect(denied).toMatch(/failed calling webhook "alertpolicies\.mxops\.dev"/);
  });
});
