// The operator as users run it: a separate process, configured by flags and MXOPS_* variables, stopped by SIGTERM.
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../controlplane/controlplane.ts";
import { adminKubeconfig, eventually, kubectl, newNamespace, userKubeconfig } from "./helpers.ts";
import { installCrds, type OperatorProcess, startOperator } from "./operator.ts";

const leaseHolder = async (ns: string) =>
  (
    await kubectl(adminKubeconfig(), [
      "get",
      "lease",
      "mxops-operator",
      "-n",
      ns,
      "-o",
      "jsonpath={.spec.holderIdentity}",
    ])
  ).trim();

describe("the operator process", () => {
  beforeAll(installCrds);
  const started: OperatorProcess[] = [];
  const run = (args: string[], env: Record<string, string> = {}) => startOperator(args, env);
  afterEach(() => {
    for (const r of started) r.child.kill("SIGKILL");
  });

  it("serves probes and metrics on the configured ports, leads, logs JSON, and exits 0 on SIGTERM releasing its Lease", async () => {
    const ns = await newNamespace("operator");
    const [metricsPort, probePort] = [await freePort(), await freePort()];
    // Its own namespace only: an operator of every namespace would reconcile the apps of the test files running
    // alongside (deploy.test's ServiceAccount operator found its app done before it had even led).
    const op = run(
      ["--leader-elect", `--namespaces=${ns}`, `--health-probe-bind-address=127.0.0.1:${probePort}`],
      {
        MXOPS_METRICS_BIND_ADDRESS: `127.0.0.1:${metricsPort}`,
        MXOPS_LEADER_ELECTION_NAMESPACE: ns,
      },
    );
    started.push(op);
    await eventually(
      async () => ((await fetch(`http://127.0.0.1:${probePort}/readyz`)).ok ? true : undefined),
      {
        what: `readiness (stderr: ${op.stderr.join("")})`,
      },
    );
    expect((await fetch(`http://127.0.0.1:${probePort}/healthz`)).status).toBe(200);
    await eventually(
      async () => {
        const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        return text.includes('leader_election_master_status{name="mxops-operator"} 1') ? text : undefined;
      },
      { what: "leadership in /metrics" },
    );
    const holder = await leaseHolder(ns);
    expect(holder).not.toBe("");

    expect(op.logs().map((l) => l.msg)).toEqual(
      expect.arrayContaining(["starting mxops", "caches synced", "became leader"]),
    );

    op.child.kill("SIGTERM");
    expect(await op.exit).toBe(0);
    const after = await leaseHolder(ns);
    expect(after).toBe("");
  });

  it("refuses a bad setting with exit code 2, naming the flag, the variable and the rule", async () => {
    const op = run(["--lease-duration=forever"]);
    started.push(op);
    expect(await op.exit).toBe(2);
    expect(op.stderr.join("")).toMatch(
      /--lease-duration .*MXOPS_LEASE_DURATION\) = "forever": must be a duration/,
    );
  });

  it("exits 1 when its caches cannot fill within --cache-sync-timeout, instead of leading while doing nothing", async () => {
    // A user nothing is granted to: every list is forbidden, so no cache ever fills.
    const op = run(
      [
        "--cache-sync-timeout=2s",
        "--webhook-port=0",
        "--metrics-bind-address=0",
        "--health-probe-bind-address=0",
      ],
      {
        KUBECONFIG: userKubeconfig("nobody@example.com"),
      },
    );
    started.push(op);
    expect(await op.exit).toBe(1);
    const fatal = op.logs().find((l) => l.msg === "watch caches did not fill in time; stopping");
    expect(fatal).toMatchObject({ level: "fatal", timeoutMs: 2000 });
    expect((fatal as unknown as { waiting: string[] }).waiting).toEqual(
      expect.arrayContaining(["mendixapps.mxops.dev", "technicalcontacts.mxops.dev"]),
    );
  });
});
