// The controller runtime on the shared control plane: caches, reconciles without churn, events, leader election.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { checkSecretFromCache, SECRETS } from "../../src/controllers/secrets.ts";
import { KubeClient, type KubeObject, type ResourceType } from "../../src/runtime/client.ts";
import { EventRecorder } from "../../src/runtime/events.ts";
import { Informer } from "../../src/runtime/informer.ts";
import { LeaderElector } from "../../src/runtime/leader.ts";
import { Manager } from "../../src/runtime/manager.ts";
import { patchStatusIfChanged, setCondition } from "../../src/runtime/status.ts";
import { adminKubeconfig, eventually, kubectl, newNamespace } from "./helpers.ts";
import {
  CONFIGMAPS,
  type ConfigMap,
  counterSum,
  GADGETS,
  type Gadget,
  gadgetCrd,
  isWrite,
  loadKubeConfig,
  testLog,
} from "./runtime-support.ts";

const kc = () => loadKubeConfig(adminKubeconfig());

function gadgetManager(
  ns: string,
  opts: { identity?: string; leaderElection?: boolean; resyncPeriodMs?: number } = {},
) {
  const identity = opts.identity ?? "solo";
  const manager = new Manager({
    kubeConfig: kc(),
    log: testLog.child({ identity }),
    namespaces: [ns],
    metricsAddr: "127.0.0.1:0",
    probeAddr: "127.0.0.1:0",
    gracefulShutdownMs: 5000,
    leaderElection: {
      enabled: opts.leaderElection ?? false,
      namespace: ns,
      name: "gadget-operator",
      identity,
      leaseDurationMs: 4000,
      renewDeadlineMs: 3000,
      retryPeriodMs: 500,
    },
  });
  const informer = manager.informers.informerFor<Gadget>(GADGETS);
  const seen = { reconciles: 0, keys: [] as string[] };
  manager.addController<Gadget>({
    name: "gadget",
    primary: informer,
    concurrency: 2,
    resyncPeriodMs: opts.resyncPeriodMs ?? 0,
    reconcile: async ({ namespace, name, key }) => {
      seen.reconciles++;
      seen.keys.push(key);
      const gadget = informer.get(namespace, name);
      if (!gadget) return;
      const generation = gadget.metadata.generation;
      await patchStatusIfChanged(manager.client, GADGETS, gadget, (current: Gadget["status"]) => ({
        ...current,
        observedGeneration: generation,
        conditions: setCondition(
          current?.conditions,
          {
            type: "Ready",
            status: "True",
            reason: "Sized",
            message: `size ${gadget.spec.size}`,
            observedGeneration: generation,
          },
          new Date(),
        ),
      }));
      return undefined;
    },
  });
  return { manager, informer, seen };
}

async function getJson<T>(kubeconfig: string, args: string[]): Promise<T> {
  return JSON.parse(await kubectl(kubeconfig, [...args, "-o", "json"])) as T;
}

/**
 * A manager over namespace `sns`'s ConfigMaps (names `names`, created first) with one controller whose reconcile
 * takes `ms` and ignores its abort signal, as a request with no signal of its own does; records what it started
 * and finished.
 */
async function slowReconciles(prefix: string, names: string[], ms: number, gracefulShutdownMs: number) {
  const sns = await newNamespace(prefix);
  for (const n of names) await kubectl(adminKubeconfig(), ["create", "configmap", n, "-n", sns]);
  const manager = new Manager({
    kubeConfig: kc(),
    log: testLog,
    namespaces: [sns],
    gracefulShutdownMs,
    leaderElection: { enabled: false, namespace: sns, name: "x", identity: "x" },
  });
  const started: string[] = [];
  const finished: string[] = [];
  manager.addController<ConfigMap>({
    name: "slow",
    primary: manager.informers.informerFor<ConfigMap>(CONFIGMAPS),
    concurrency: 1,
    reconcile: async ({ name }) => {
      started.push(name);
      await new Promise((r) => setTimeout(r, ms));
      finished.push(name);
      return undefined;
    },
  });
  await manager.start();
  await eventually(async () => (started.length === 1 ? true : undefined), { what: "the first reconcile" });
  return { manager, started, finished };
}

describe("controller runtime on a real API server", () => {
  let ns: string;

  beforeAll(async () => {
    await kubectl(adminKubeconfig(), ["apply", "-f", "-"], gadgetCrd);
    await kubectl(adminKubeconfig(), [
      "wait",
      "--for=condition=Established",
      "crd/gadgets.runtime.mxops.dev",
    ]);
  });

  afterAll(async () => {
    if (ns) await kubectl(adminKubeconfig(), ["delete", "namespace", ns, "--wait=false"]);
  });

  it("fills a watch cache, keeps it current, and answers index queries", async () => {
    ns = await newNamespace("runtime");
    for (const [name, team] of [
      ["a", "red"],
      ["b", "red"],
      ["c", "blue"],
    ] as const) {
      await kubectl(adminKubeconfig(), ["create", "configmap", name, "-n", ns, "--from-literal=v=1"]);
      await kubectl(adminKubeconfig(), ["label", "configmap", name, "-n", ns, `team=${team}`]);
    }
    const informer = new Informer<ConfigMap>(new KubeClient(kc()), CONFIGMAPS, {
      namespaces: [ns],
      log: testLog,
    });
    informer.addIndex("team", (cm) => (cm.metadata.labels?.team ? [cm.metadata.labels.team] : []));
    const events: string[] = [];
    informer.addHandler({
      onAdd: (o) => events.push(`add ${o.metadata.name}`),
      onUpdate: (_o, n) => events.push(`update ${n.metadata.name} ${n.data?.v}`),
      onDelete: (o) => events.push(`delete ${o.metadata.name}`),
    });
    informer.start();
    try {
      expect(await informer.waitForSync()).toBe(true);
      expect(informer.keys().sort()).toEqual([`${ns}/a`, `${ns}/b`, `${ns}/c`]);
      expect(
        informer
          .byIndex("team", "red")
          .map((o) => o.metadata.name)
          .sort(),
      ).toEqual(["a", "b"]);

      // A change of data leaves the membership version alone; a label change, a creation and a deletion move it.
      const version = informer.membershipVersion();
      await kubectl(adminKubeconfig(), ["patch", "configmap", "a", "-n", ns, "-p", '{"data":{"v":"2"}}']);
      await eventually(async () => (events.includes("update a 2") ? true : undefined), { what: "the patch" });
      expect(informer.membershipVersion()).toBe(version);
      await kubectl(adminKubeconfig(), ["create", "configmap", "d", "-n", ns, "--from-literal=v=1"]);
      await kubectl(adminKubeconfig(), ["label", "configmap", "b", "-n", ns, "team=blue", "--overwrite"]);
      await kubectl(adminKubeconfig(), ["delete", "configmap", "c", "-n", ns]);
      await eventually(
        async () => (events.includes("delete c") && events.includes("add d") ? true : undefined),
        {
          what: "watch events",
        },
      );
      expect(events).toContain("update a 2");
      expect(informer.get(ns, "a")?.data?.v).toBe("2");
      expect(informer.byIndex("team", "red").map((o) => o.metadata.name)).toEqual(["a"]);
      expect(informer.byIndex("team", "blue").map((o) => o.metadata.name)).toEqual(["b"]);
      expect(informer.get(ns, "c")).toBeUndefined();
      expect(informer.membershipVersion()).toBe(version + 3);
    } finally {
      await informer.stop();
    }
  });

  it("keeps its watch and tells the other handlers when one handler throws", async () => {
    const n = await newNamespace("throwing");
    const informer = new Informer<ConfigMap>(new KubeClient(kc()), CONFIGMAPS, {
      namespaces: [n],
      log: testLog,
    });
    const heard: string[] = [];
    informer.addHandler({
      onAdd: (o) => {
        if (o.metadata.name === "bad") throw new Error("a handler bug");
      },
      onUpdate: () => {
        throw new Error("another handler bug");
      },
    });
    informer.addHandler({
      onAdd: (o) => heard.push(`add ${o.metadata.name}`),
      onUpdate: (_o, o) => heard.push(`update ${o.metadata.name} ${o.data?.v}`),
    });
    informer.start();
    try {
      await informer.waitForSync();
      const watches = informer.stats.watches;
      await kubectl(adminKubeconfig(), ["create", "configmap", "bad", "-n", n, "--from-literal=v=1"]);
      await kubectl(adminKubeconfig(), ["patch", "configmap", "bad", "-n", n, "-p", '{"data":{"v":"2"}}']);
      await kubectl(adminKubeconfig(), ["create", "configmap", "good", "-n", n, "--from-literal=v=1"]);
      await eventually(async () => (heard.includes("add good") ? true : undefined), {
        what: "the later event",
      });
      expect(heard).toEqual(["add bad", "update bad 2", "add good"]);
      expect(informer.stats.watches).toBe(watches); // the same watch all along
    } finally {
      await informer.stop();
    }
  });

  it("reads objects, lists, write answers and watch events without their managedFields", async () => {
    const mfNs = await newNamespace("lean");
    try {
      await kubectl(adminKubeconfig(), ["create", "configmap", "m", "-n", mfNs, "--from-literal=v=1"]);
      await kubectl(adminKubeconfig(), ["label", "configmap", "m", "-n", mfNs, "team=red"]);
      const stored = JSON.parse(
        await kubectl(adminKubeconfig(), [
          "get",
          "configmap",
          "m",
          "-n",
          mfNs,
          "-o",
          "json",
          "--show-managed-fields",
        ]),
      ) as ConfigMap & { metadata: { managedFields?: unknown[] } };
      expect(stored.metadata.managedFields?.length).toBe(2); // kubectl create, kubectl label
      const client = new KubeClient(kc());
      const lean = (o: ConfigMap | undefined) => {
        expect(o?.metadata.name).toBe("m");
        expect(o?.metadata.labels).toEqual({ team: "red" });
        expect(o?.metadata).not.toHaveProperty("managedFields");
        return o as ConfigMap;
      };
      lean(await client.get<ConfigMap>(CONFIGMAPS, mfNs, "m"));
      lean(await client.get<ConfigMap>(CONFIGMAPS, mfNs, "m", { resourceVersion: "0" }));
      const list = await client.list<ConfigMap>(CONFIGMAPS, { namespace: mfNs, labelSelector: "team" });
      expect(list.items).toHaveLength(1);
      lean(list.items[0]);
      const events: ConfigMap[] = [];
      const controller = new AbortController();
      const watching = client.watch<ConfigMap>(
        CONFIGMAPS,
        { namespace: mfNs, resourceVersion: list.metadata.resourceVersion, signal: controller.signal },
        (e) => {
          if (e.type === "MODIFIED") {
            events.push(e.object);
            controller.abort();
          }
        },
      );
      const patched = lean(
        await client.patch<ConfigMap>(CONFIGMAPS, mfNs, "m", { data: { v: "2" } }, "merge", {
          fieldManager: "lean-test",
        }),
      );
      expect(patched.data?.v).toBe("2");
      await watching;
      expect(lean(events[0]).data?.v).toBe("2");
    } finally {
      await kubectl(adminKubeconfig(), ["delete", "namespace", mfNs, "--wait=false"]);
    }
  });

  it("reads a Secret from the API server's cache, and from etcd when that copy is not usable", async () => {
    const secretNs = await newNamespace("secret-read");
    try {
      const client = new KubeClient(kc());
      const reads = vi.spyOn(client, "get");
      await client.create(SECRETS, {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "s", namespace: secretNs },
        data: { v: Buffer.from("0").toString("base64") },
      });
      // A value written a moment ago is always what comes back: from the cache if it has it, else from etcd.
      for (let i = 1; i <= 20; i++) {
        const v = String(i);
        await client.patch(
          SECRETS,
          secretNs,
          "s",
          { data: { v: Buffer.from(v).toString("base64") } },
          "merge",
        );
        reads.mockClear();
        const { data } = await checkSecretFromCache(client, secretNs, "s", (d) => ({
          ok: d?.v === v,
          data: d,
        }));
        expect(data?.v).toBe(v);
        // The first read is the cache's; a second, only when the first was behind, goes to etcd.
        expect(reads.mock.calls[0]?.[3]).toEqual({ resourceVersion: "0" });
        expect(reads.mock.calls.slice(1).map((c) => c[3])).toEqual(
          reads.mock.calls.length === 2 ? [undefined] : [],
        );
      }
      // A caller that takes any copy (it may be a moment behind the last write) gets it in one read.
      reads.mockClear();
      const any = await checkSecretFromCache(client, secretNs, "s", (d) => ({
        ok: d !== undefined,
        data: d,
      }));
      expect(any.data).toHaveProperty("v");
      expect(reads).toHaveBeenCalledTimes(1);
      // A Secret that does not exist is confirmed from etcd before it is reported missing.
      reads.mockClear();
      const absent = await checkSecretFromCache(client, secretNs, "absent", (d) => ({
        ok: d !== undefined,
        data: d,
      }));
      expect(absent.data).toBeUndefined();
      expect(reads.mock.calls.map((c) => c[3])).toEqual([{ resourceVersion: "0" }, undefined]);
    } finally {
      await kubectl(adminKubeconfig(), ["delete", "namespace", secretNs, "--wait=false"]);
    }
  });

  it("reconciles every object, writes status only when it changes, and writes nothing on resyncs", async () => {
    const gns = await newNamespace("gadgets");
    for (const [name, size] of [
      ["g1", 1],
      ["g2", 2],
      ["g3", 3],
    ] as const) {
      await kubectl(
        adminKubeconfig(),
        ["apply", "-n", gns, "-f", "-"],
        `apiVersion: runtime.mxops.dev/v1\nkind: Gadget\nmetadata: {name: ${name}}\nspec: {size: ${size}}\n`,
      );
    }
    const { manager, seen } = gadgetManager(gns, { resyncPeriodMs: 300 });
    await manager.start();
    try {
      await eventually(
        async () => {
          const list = await getJson<{ items: Gadget[] }>(adminKubeconfig(), ["get", "gadgets", "-n", gns]);
          return list.items.every((g) => g.status?.conditions?.[0]?.message === `size ${g.spec.size}`)
            ? true
            : undefined;
        },
        { what: "every gadget's status" },
      );
      // Let our own status writes come back through the watch before counting.
      await new Promise((r) => setTimeout(r, 700));
      const writesBefore = await counterSum(manager.registry, "rest_client_requests_total", isWrite);
      const reconcilesBefore = seen.reconciles;
      await new Promise((r) => setTimeout(r, 2000));
      expect(seen.reconciles - reconcilesBefore).toBeGreaterThanOrEqual(9); // >= 3 resyncs of 3 objects
      expect(await counterSum(manager.registry, "rest_client_requests_total", isWrite)).toBe(writesBefore);

      await kubectl(adminKubeconfig(), [
        "patch",
        "gadget",
        "g2",
        "-n",
        gns,
        "--type=merge",
        "-p",
        '{"spec":{"size":20}}',
      ]);
      await eventually(
        async () => {
          const g = await getJson<Gadget>(adminKubeconfig(), ["get", "gadget", "g2", "-n", gns]);
          return g.status?.conditions?.[0]?.message === "size 20" && g.status.observedGeneration === 2
            ? g
            : undefined;
        },
        { what: "g2's status after a spec change" },
      );
      expect(await counterSum(manager.registry, "rest_client_requests_total", isWrite)).toBe(
        writesBefore + 1,
      );

      const probes = `http://127.0.0.1:${manager.ports.probes}`;
      expect((await fetch(`${probes}/readyz`)).status).toBe(200);
      expect((await fetch(`${probes}/healthz`)).status).toBe(200);
      const metrics = await (await fetch(`http://127.0.0.1:${manager.ports.metrics}/metrics`)).text();
      for (const name of [
        'controller_runtime_reconcile_total{controller="gadget",result="success"}',
        "controller_runtime_reconcile_errors_total",
        "controller_runtime_reconcile_time_seconds_bucket",
        'workqueue_depth{name="gadget"}',
        'workqueue_adds_total{name="gadget"}',
        "workqueue_retries_total",
        "workqueue_queue_duration_seconds_bucket",
        "workqueue_work_duration_seconds_bucket",
        'rest_client_requests_total{code="200",method="PATCH"}',
      ]) {
        expect(metrics).toContain(name);
      }
    } finally {
      await manager.stop();
    }
  });

  it("retries a failing reconcile with backoff and succeeds once the cause is gone", async () => {
    const fns = await newNamespace("failing");
    await kubectl(adminKubeconfig(), ["create", "configmap", "flaky", "-n", fns, "--from-literal=v=1"]);
    const manager = new Manager({
      kubeConfig: kc(),
      log: testLog,
      namespaces: [fns],
      leaderElection: { enabled: false, namespace: fns, name: "x", identity: "x" },
    });
    const informer = manager.informers.informerFor<ConfigMap>(CONFIGMAPS);
    let attempts = 0;
    const ctrl = manager.addController<ConfigMap>({
      name: "flaky",
      primary: informer,
      reconcile: async () => {
        attempts++;
        if (attempts < 4) throw new Error(`transient failure ${attempts}`);
        return undefined;
      },
    });
    await manager.start();
    try {
      await eventually(async () => (attempts >= 4 ? true : undefined), { what: "4 attempts" });
      expect(ctrl.queue.retries(`${fns}/flaky`)).toBe(0); // forgotten after the success
      expect(await counterSum(manager.registry, "controller_runtime_reconcile_errors_total")).toBe(3);
      expect(await counterSum(manager.registry, "workqueue_retries_total")).toBe(3);
    } finally {
      await manager.stop();
    }
  });

  it("aggregates repeated events into one Event with a series", async () => {
    const ens = await newNamespace("events");
    await kubectl(adminKubeconfig(), ["create", "configmap", "subject", "-n", ens]);
    const cm = await getJson<ConfigMap>(adminKubeconfig(), ["get", "configmap", "subject", "-n", ens]);
    const recorder = new EventRecorder({
      client: new KubeClient(kc()),
      controller: "mxops.dev/test",
      instance: "test-1",
      log: testLog,
      seriesFlushMs: 60_000,
    });
    for (let i = 0; i < 5; i++)
      recorder.event(cm, "Warning", "ContactNotFound", "Reconcile", "contact bob not found");
    recorder.event(cm, "Normal", "LicenseActivated", "Reconcile", "license activated");
    await recorder.flush();
    expect(recorder.writes).toBe(3); // two creates and one series update, not six creates
    const list = await getJson<{
      items: { reason: string; series?: { count: number }; regarding: { name: string } }[];
    }>(adminKubeconfig(), ["get", "events.v1.events.k8s.io", "-n", ens]);
    const byReason = Object.fromEntries(list.items.map((e) => [e.reason, e]));
    expect(byReason.ContactNotFound?.series?.count).toBe(5);
    expect(byReason.ContactNotFound?.regarding.name).toBe("subject");
    expect(byReason.LicenseActivated?.series).toBeUndefined();
  });

  it("lets exactly one of two managers reconcile; the other, warm, takes over within the lease duration", async () => {
    const lns = await newNamespace("leader");
    await kubectl(
      adminKubeconfig(),
      ["apply", "-n", lns, "-f", "-"],
      "apiVersion: runtime.mxops.dev/v1\nkind: Gadget\nmetadata: {name: g}\nspec: {size: 1}\n",
    );
    const a = gadgetManager(lns, { identity: "a", leaderElection: true });
    const b = gadgetManager(lns, { identity: "b", leaderElection: true });
    await Promise.all([a.manager.start(), b.manager.start()]);
    let stoppedA = false;
    try {
      const leader = await eventually(
        async () => (a.manager.isLeader() ? a : b.manager.isLeader() ? b : undefined),
        {
          what: "a leader",
        },
      );
      const follower = leader === a ? b : a;
      await eventually(async () => (leader.seen.reconciles > 0 ? true : undefined), {
        what: "leader reconciles",
      });
      await new Promise((r) => setTimeout(r, 1500));
      expect(follower.manager.isLeader()).toBe(false);
      expect(follower.seen.reconciles).toBe(0);
      expect(follower.manager.informers.hasSynced()).toBe(true); // a warm cache, ready to take over
      expect((await fetch(`http://127.0.0.1:${follower.manager.ports.probes}/readyz`)).status).toBe(200);

      const released = Date.now();
      await leader.manager.stop();
      if (leader === a) stoppedA = true;
      await eventually(async () => (follower.manager.isLeader() ? true : undefined), {
        what: "takeover",
        timeoutMs: 8000,
      });
      const takeoverMs = Date.now() - released;
      expect(takeoverMs).toBeLessThan(4000);
      await eventually(async () => (follower.seen.reconciles > 0 ? true : undefined), {
        what: "new leader reconciles",
      });
      const lease = await getJson<{ spec: { holderIdentity: string; leaseTransitions: number } }>(
        adminKubeconfig(),
        ["get", "lease", "gadget-operator", "-n", lns],
      );
      expect(lease.spec.holderIdentity).toBe(follower === a ? "a" : "b");
      expect(lease.spec.leaseTransitions).toBe(1);
    } finally {
      await Promise.all([stoppedA ? undefined : a.manager.stop(), b.manager.stop()]);
    }
  });

  it("waits out a vanished holder's Lease, then takes over", async () => {
    const lns = await newNamespace("ghost");
    const ghost = new LeaderElector({
      client: new KubeClient(kc()),
      namespace: lns,
      name: "gadget-operator",
      identity: "ghost",
      leaseDurationMs: 4000,
      log: testLog,
    });
    expect(await ghost.tryAcquireOrRenew()).toBe(true); // ...and never renews: a crashed leader
    const acquired = Date.now();
    const heir = gadgetManager(lns, { identity: "heir", leaderElection: true });
    await heir.manager.start();
    try {
      await new Promise((r) => setTimeout(r, 2000));
      expect(heir.manager.isLeader()).toBe(false);
      await eventually(async () => (heir.manager.isLeader() ? true : undefined), {
        what: "takeover",
        timeoutMs: 10_000,
      });
      const waited = Date.now() - acquired;
      expect(waited).toBeGreaterThanOrEqual(4000);
      expect(waited).toBeLessThan(4000 + 2500);
    } finally {
      await heir.manager.stop();
    }
  });

  it("finishes the in-flight reconcile on shutdown and starts no new one", async () => {
    const { manager, started, finished } = await slowReconciles("shutdown", ["s1", "s2", "s3"], 800, 5000);
    await manager.stop();
    expect(finished).toEqual(started);
    expect(started.length).toBe(1);
  });
});

describe("controller runtime: stopping and the Lease at the edges", () => {
  it("stops waiting for a reconcile that outlives the grace period", async () => {
    const { manager } = await slowReconciles("overdue", ["stuck"], 4000, 300);
    const t0 = Date.now();
    await manager.stop();
    expect(Date.now() - t0).toBeLessThan(2500);
  });

  it("opens nothing and returns at once when stopped before it started (a SIGTERM during start-up)", async () => {
    const sns = await newNamespace("early-stop");
    const manager = new Manager({
      kubeConfig: kc(),
      log: testLog,
      namespaces: [sns],
      metricsAddr: "127.0.0.1:0",
      probeAddr: "127.0.0.1:0",
      leaderElection: { enabled: true, namespace: sns, name: "early", identity: "early" },
    });
    const informer = manager.informers.informerFor<ConfigMap>(CONFIGMAPS);
    await manager.stop();
    const t0 = Date.now();
    await manager.start();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(manager.ports).toEqual({});
    // A cache asked to wait with a signal that already fired answers at once, not never.
    expect(await informer.waitForSync(AbortSignal.abort())).toBe(false);
  });

  it("dates a Lease renewal from when its slow GET answered, not from when it asked", async () => {
    const lns = await newNamespace("slow-get");
    const holder = new LeaderElector({
      client: new KubeClient(kc()),
      namespace: lns,
      name: "op",
      identity: "holder",
      leaseDurationMs: 3000,
      log: testLog,
    });
    // The follower's Lease reads take 1.5 s before they reach the API server (a slow path to it).
    class SlowLeaseReads extends KubeClient {
      override async get<T extends KubeObject>(
        rt: ResourceType,
        namespace: string | undefined,
        name: string,
        opts: { resourceVersion?: string; signal?: AbortSignal } = {},
      ): Promise<T | undefined> {
        await new Promise((r) => setTimeout(r, 1500));
        return await super.get<T>(rt, namespace, name, opts);
      }
    }
    const follower = new LeaderElector({
      client: new SlowLeaseReads(kc()),
      namespace: lns,
      name: "op",
      identity: "follower",
      leaseDurationMs: 3000,
      log: testLog,
    });
    expect(await holder.tryAcquireOrRenew()).toBe(true);
    // The follower asks; while its read waits, the holder renews; the read returns that renewal.
    const asked = follower.tryAcquireOrRenew();
    await new Promise((r) => setTimeout(r, 700));
    expect(await holder.tryAcquireOrRenew()).toBe(true);
    const renewedAt = Date.now();
    expect(await asked).toBe(false);
    // The holder now stops renewing: the follower may take over a lease duration after it saw the renewal.
    let tookOver = 0;
    while (!tookOver) {
      const attempt = Date.now();
      if (await follower.tryAcquireOrRenew()) tookOver = attempt;
      else await new Promise((r) => setTimeout(r, 200));
    }
    expect(tookOver - renewedAt).toBeGreaterThanOrEqual(3000);
  });

  it("gives back a Lease won in the round a stop interrupted", async () => {
    const lns = await newNamespace("won-late");
    const stop = new AbortController();
    // The Lease's creation succeeds as the stop arrives.
    class StopOnCreate extends KubeClient {
      override async create<T extends KubeObject>(
        rt: ResourceType,
        obj: T,
        opts: { fieldManager?: string; signal?: AbortSignal } = {},
      ): Promise<T> {
        const created = await super.create<T>(rt, obj, opts);
        stop.abort();
        return created;
      }
    }
    const elector = new LeaderElector({
      client: new StopOnCreate(kc()),
      namespace: lns,
      name: "op",
      identity: "late",
      log: testLog,
    });
    let led = false;
    await elector.run(
      stop.signal,
      () => {
        led = true;
      },
      () => undefined,
    );
    expect(led).toBe(false);
    const lease = JSON.parse(
      await kubectl(adminKubeconfig(), ["get", "lease", "op", "-n", lns, "-o", "json"]),
    ) as { spec: { holderIdentity?: string } };
    expect(lease.spec.holderIdentity ?? "").toBe("");
  });
});
