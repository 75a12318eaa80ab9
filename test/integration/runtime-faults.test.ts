// Watch caches under faults, on a control plane of this file's own (its API server is restarted and etcd compacted).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeClient } from "../../src/runtime/client.ts";
import { Informer } from "../../src/runtime/informer.ts";
import { LeaderElector } from "../../src/runtime/leader.ts";
import { newRegistry } from "../../src/runtime/metrics.ts";
import { type ControlPlane, kubectl, startControlPlane } from "../controlplane/controlplane.ts";
import { type FreezableProxy, startProxy } from "../controlplane/proxy.ts";
import { eventually } from "./helpers.ts";
import { CONFIGMAPS, type ConfigMap, counterSum, loadKubeConfig, testLog } from "./runtime-support.ts";

const local = !process.env.MXOPS_TEST_KUBECONFIG;

describe.runIf(local)("watch caches under API server faults", () => {
  let cp: ControlPlane;
  let proxy: FreezableProxy;
  const informers: Informer<ConfigMap>[] = [];

  beforeAll(async () => {
    cp = await startControlPlane();
    proxy = await startProxy("127.0.0.1", Number(new URL(cp.server).port));
  });

  afterAll(async () => {
    await Promise.all(informers.map((i) => i.stop()));
    await proxy?.close();
    await cp?.stop();
  });

  function cacheOf(ns: string, server?: string, stallTimeoutMs = 90_000) {
    const registry = newRegistry();
    const informer = new Informer<ConfigMap>(
      new KubeClient(loadKubeConfig(cp.kubeconfig, server)),
      CONFIGMAPS,
      {
        namespaces: [ns],
        log: testLog,
        registry,
        stallTimeoutMs,
        backoff: { initialMs: 100, maxMs: 1000 },
      },
    );
    const events: string[] = [];
    informer.addHandler({
      onAdd: (o) => events.push(`add ${o.metadata.name}`),
      onUpdate: (_o, n) => events.push(`update ${n.metadata.name} ${n.data?.v}`),
      onDelete: (o) => events.push(`delete ${o.metadata.name}`),
    });
    informers.push(informer);
    informer.start();
    return { informer, events, registry };
  }

  const k = (args: string[]) => kubectl(cp.kubeconfig, args);
  /** name=value pairs of the cache, sorted by name. */
  const data = (informer: Informer<ConfigMap>) =>
    Object.fromEntries(
      informer
        .list()
        .map((o) => [o.metadata.name, o.data?.v ?? ""])
        .sort(([a], [b]) => String(a).localeCompare(String(b))),
    );

  it("resumes after the kube-apiserver restarts and loses no update", async () => {
    await k(["create", "namespace", "restart"]);
    await k(["create", "configmap", "a", "-n", "restart", "--from-literal=v=1"]);
    const { informer, events } = cacheOf("restart");
    await informer.waitForSync();
    await cp.stopApiServer();
    await cp.startApiServer();
    await k(["create", "configmap", "b", "-n", "restart", "--from-literal=v=1"]);
    await k(["patch", "configmap", "a", "-n", "restart", "-p", '{"data":{"v":"2"}}']);
    await eventually(async () => (data(informer).b === "1" && data(informer).a === "2" ? true : undefined), {
      what: "the cache to catch up after the restart",
      timeoutMs: 30_000,
    });
    expect(events).toEqual(expect.arrayContaining(["add a", "add b", "update a 2"]));
    expect(informer.stats.watches).toBeGreaterThanOrEqual(2);
  });

  it("relists after 410 Gone (etcd compacted past the watch's resourceVersion) and misses nothing", async () => {
    await k(["create", "namespace", "gone"]);
    for (const n of ["keep", "change", "remove"])
      await k(["create", "configmap", n, "-n", "gone", "--from-literal=v=1"]);
    const { informer, events, registry } = cacheOf("gone", `https://127.0.0.1:${proxy.port}`);
    await informer.waitForSync();
    const listsBefore = informer.stats.lists;

    proxy.freeze(); // the cache is cut off: its watch goes silent, reconnects hang
    await k(["create", "configmap", "added", "-n", "gone", "--from-literal=v=1"]);
    await k(["patch", "configmap", "change", "-n", "gone", "-p", '{"data":{"v":"2"}}']);
    await k(["delete", "configmap", "remove", "-n", "gone"]);
    const compactedAt = await cp.compactEtcd();
    // A restarted API server's watch cache starts at the current revision: it cannot serve the old one either.
    await cp.stopApiServer();
    await cp.startApiServer();
    proxy.thaw();

    await eventually(
      async () =>
        JSON.stringify(data(informer)) === JSON.stringify({ added: "1", change: "2", keep: "1" })
          ? true
          : undefined,
      { what: `the cache to relist (etcd compacted at revision ${compactedAt})`, timeoutMs: 30_000 },
    );
    expect(events).toEqual(expect.arrayContaining(["add added", "update change 2", "delete remove"]));
    expect(informer.stats.lists).toBeGreaterThan(listsBefore);
    expect(
      await counterSum(registry, "mxops_informer_watch_restarts_total", (l) => l.reason === "gone"),
    ).toBeGreaterThanOrEqual(1);
  });

  it("reconnects a watch whose connection went silent (half-open) and catches up", async () => {
    await k(["create", "namespace", "stall"]);
    await k(["create", "configmap", "x", "-n", "stall", "--from-literal=v=1"]);
    const { informer, registry } = cacheOf("stall", `https://127.0.0.1:${proxy.port}`, 1500);
    await informer.waitForSync();
    // Only a change seen through the watch proves the watch connection is open (sync ends with the list).
    await k(["patch", "configmap", "x", "-n", "stall", "-p", '{"data":{"v":"live"}}']);
    await eventually(async () => (data(informer).x === "live" ? true : undefined), {
      what: "the watch to be live",
    });
    proxy.freezeExisting(); // the open watch stays connected but nothing gets through
    await k(["patch", "configmap", "x", "-n", "stall", "-p", '{"data":{"v":"2"}}']);
    await eventually(async () => (data(informer).x === "2" ? true : undefined), {
      what: "the stalled watch to be replaced",
      timeoutMs: 15_000,
    });
    expect(
      await counterSum(registry, "mxops_informer_watch_restarts_total", (l) => l.reason === "stalled"),
    ).toBeGreaterThanOrEqual(1);
  });

  it("times out a request that gets no answer, then gets through on a new connection", async () => {
    const client = new KubeClient(loadKubeConfig(cp.kubeconfig, `https://127.0.0.1:${proxy.port}`));
    const get = (timeoutMs: number) =>
      client.request<{ metadata: { name: string } }>("GET", "/api/v1/namespaces/default", { timeoutMs });
    expect((await get(5000)).metadata.name).toBe("default"); // the connection is open
    await new Promise((r) => setTimeout(r, 300));
    proxy.freezeExisting(); // a half-open connection: the request goes out, nothing comes back
    const started = performance.now();
    await expect(get(1000)).rejects.toMatchObject({ reason: "Network" });
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(900);
    expect(waited).toBeLessThan(10_000);
    // Nothing at all came over that connection for the whole timeout: it is dropped; a new one answers.
    expect((await get(5000)).metadata.name).toBe("default");
  });

  it("a leader whose renewal hangs on a half-open connection gives up by the renew deadline", async () => {
    const client = new KubeClient(loadKubeConfig(cp.kubeconfig, `https://127.0.0.1:${proxy.port}`));
    const elector = new LeaderElector({
      client,
      namespace: "default",
      name: `hung-renewal-${Date.now()}`,
      identity: "a",
      leaseDurationMs: 3000,
      renewDeadlineMs: 2000,
      retryPeriodMs: 500,
      log: testLog,
    });
    const abort = new AbortController();
    let started = false;
    let stoppedAt = 0;
    const run = elector.run(
      abort.signal,
      () => {
        started = true;
      },
      () => {
        stoppedAt = performance.now();
      },
    );
    try {
      await eventually(async () => started || undefined, { what: "leadership", timeoutMs: 10_000 });
      await new Promise((r) => setTimeout(r, 700)); // a renewal or two over the open connection
      proxy.freezeExisting(); // the renewals' requests go out and nothing comes back (client timeout: 30 s)
      const frozenAt = performance.now();
      await eventually(async () => stoppedAt || undefined, {
        what: "leadership given up",
        timeoutMs: 20_000,
      });
      // By the renew deadline after the last renewal (at most one retry period before the freeze), plus the
      // loop's own granularity: not the request timeout. A follower would take over after the 3 s lease.
      expect(stoppedAt - frozenAt).toBeLessThan(3000);
      expect(elector.isLeader()).toBe(false);
      await run;
    } finally {
      abort.abort();
      proxy.thaw();
    }
  });

  it("reconnects a quiet watch without dropping the connection other requests are using", async () => {
    // A watch of a resource nobody changes hears nothing until the API server sends a bookmark, which needs
    // etcd's progress notifications (this control plane's etcd sends them every 10 minutes, its default).
    await k(["create", "namespace", "quiet"]);
    await k(["create", "namespace", "busy"]);
    await k(["create", "configmap", "x", "-n", "busy", "--from-literal=v=0"]);
    const client = new KubeClient(loadKubeConfig(cp.kubeconfig));
    const cache = (ns: string) => {
      const registry = newRegistry();
      const informer = new Informer<ConfigMap>(client, CONFIGMAPS, {
        namespaces: [ns],
        log: testLog,
        registry,
        stallTimeoutMs: 1500,
        // A failure waits 3 s; a quiet watch on a live connection is not a failure and reconnects at once.
        backoff: { initialMs: 3000, maxMs: 3000 },
      });
      informers.push(informer);
      informer.start();
      const restarts = (reason: string) =>
        counterSum(registry, "mxops_informer_watch_restarts_total", (l) => l.reason === reason);
      return { informer, restarts };
    };
    const quiet = cache("quiet");
    const busy = cache("busy");
    await quiet.informer.waitForSync();
    await busy.informer.waitForSync();
    // The busy namespace changes every 250 ms for 5 s, through the same client: its connection is alive.
    for (let i = 1; i <= 20; i++) {
      await client.patch(CONFIGMAPS, "busy", "x", { data: { v: String(i) } }, "merge");
      await new Promise((r) => setTimeout(r, 250));
    }
    await eventually(async () => (busy.informer.get("busy", "x")?.data?.v === "20" ? true : undefined), {
      what: "the busy watch to see the last change",
    });
    // Stalls at ~1.5, 3 and 4.5 s (with the 3 s backoff of a failure: 1.5 and 6 s).
    expect(await quiet.restarts("stalled")).toBeGreaterThanOrEqual(3);
    // Before: each stall of the quiet watch dropped the shared connection, and the busy watch failed with it.
    expect(await busy.restarts("error")).toBe(0);
    expect(await busy.restarts("stalled")).toBe(0);
  });
});
