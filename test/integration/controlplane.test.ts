// The plumbing: a CRD and an object applied with kubectl, read back and watched with client-node.
import { KubeConfig, Watch } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminKubeconfig, eventually, kubectl, newNamespace, userKubeconfig } from "./helpers.ts";

const crd = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.plumbing.mxops.dev
spec:
  group: plumbing.mxops.dev
  scope: Namespaced
  names: { plural: widgets, singular: widget, kind: Widget }
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: { type: integer }
`;

describe("local control plane", () => {
  let ns: string;
  const kc = new KubeConfig();

  beforeAll(async () => {
    kc.loadFromFile(adminKubeconfig());
    ns = await newNamespace("plumbing");
    await kubectl(adminKubeconfig(), ["apply", "-f", "-"], crd);
    await kubectl(adminKubeconfig(), [
      "wait",
      "--for=condition=Established",
      "crd/widgets.plumbing.mxops.dev",
      "--timeout=30s",
    ]);
  });

  afterAll(async () => {
    await kubectl(adminKubeconfig(), ["delete", "namespace", ns, "--wait=false"]);
  });

  it("reports the stamped Kubernetes version", async () => {
    const out = JSON.parse(await kubectl(adminKubeconfig(), ["version", "-o", "json"])) as {
      serverVersion: { gitVersion: string; major: string; minor: string };
    };
    expect(out.serverVersion.gitVersion).toMatch(/^v1\.\d+\.\d+$/);
    expect(out.serverVersion.major).toBe("1");
  });

  it("applies an object with kubectl, reads it back with client-node and receives its watch event", async () => {
    const events: { type: string; name: string; size: number }[] = [];
    let watchError: unknown;
    const watch = new Watch(kc);
    let abort: AbortController | undefined;
    // A watch on a just-established CRD may get 429 while its watch cache initialises; clients retry.
    const startWatch = async () => {
      abort = await watch.watch(
        `/apis/plumbing.mxops.dev/v1/namespaces/${ns}/widgets`,
        {},
        (type, obj: { metadata: { name: string }; spec: { size: number } }) => {
          events.push({ type, name: obj.metadata.name, size: obj.spec.size });
        },
        (err) => {
          if (err && !abort?.signal.aborted) {
            watchError = err;
            setTimeout(() => void startWatch(), 200);
          }
        },
      );
    };
    await startWatch();
    try {
      await kubectl(
        adminKubeconfig(),
        ["apply", "-n", ns, "-f", "-"],
        "apiVersion: plumbing.mxops.dev/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3}\n",
      );
      const { CustomObjectsApi } = await import("@kubernetes/client-node");
      const api = kc.makeApiClient(CustomObjectsApi);
      const got = (await api.getNamespacedCustomObject({
        group: "plumbing.mxops.dev",
        version: "v1",
        namespace: ns,
        plural: "widgets",
        name: "w1",
      })) as { spec: { size: number } };
      expect(got.spec.size).toBe(3);
      const added = await eventually(async () => events.find((e) => e.type === "ADDED" && e.name === "w1"), {
        what: `ADDED watch event for w1 (last watch error: ${watchError})`,
      });
      expect(added.size).toBe(3);
    } finally {
      abort?.abort();
    }
  });

  it("authenticates minted users by certificate and authorizes them with RBAC", async () => {
    const alice = userKubeconfig("alice@example.com", ["team-a"]);
    const whoami = JSON.parse(await kubectl(alice, ["auth", "whoami", "-o", "json"])) as {
      status: { userInfo: { username: string; groups: string[] } };
    };
    expect(whoami.status.userInfo.username).toBe("alice@example.com");
    expect(whoami.status.userInfo.groups).toContain("team-a");

    await kubectl(adminKubeconfig(), [
      "create",
      "configmap",
      "team-settings",
      "-n",
      ns,
      "--from-literal=a=b",
    ]);
    await expect(kubectl(alice, ["get", "configmaps", "-n", ns])).rejects.toThrow(/forbidden/i);
    // A Role of our own: the aggregated ClusterRoles (view, edit) get their rules from kube-controller-manager,
    // which this control plane does not run.
    await kubectl(adminKubeconfig(), [
      "create",
      "role",
      "cm-reader",
      "-n",
      ns,
      "--verb=get,list",
      "--resource=configmaps",
    ]);
    await kubectl(adminKubeconfig(), [
      "create",
      "rolebinding",
      "team-a-read",
      "-n",
      ns,
      "--role=cm-reader",
      "--group=team-a",
    ]);
    await eventually(
      async () =>
        (await kubectl(alice, ["auth", "can-i", "list", "configmaps", "-n", ns])).trim() === "yes"
          ? true
          : undefined,
      { what: "RBAC to take effect" },
    );
    expect(await kubectl(alice, ["get", "configmaps", "-n", ns, "-o", "name"])).toContain(
      "configmap/team-settings",
    );
  });
});
