// Operator memory under V8 heap settings: `npm run bench:memory -- --apps N --variants "A|B|..."`.
// Per variant, a fleet of its own in a namespace of its own (N apps, each with its Deployment, 50 contacts and
// an AlertPolicy per 100 apps, CPU from a Prometheus stand-in, as in `npm run bench`) is converged by an
// operator started with that variant, then the operator is restarted with it (its initial list reconciles
// every app again). Per run: time until every app was reconciled, the operator's CPU seconds, RSS/heap then and
// 20 s later, the peak RSS, and RSS by mapping (/proc/PID/smaps).
// A variant is node's options (given on its command line: NODE_OPTIONS refuses most V8 flags), optionally with
// VAR=value words for the environment (e.g. MALLOC_ARENA_MAX=2).
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, installCrds, kubectl, startControlPlane } from "../test/controlplane/controlplane.ts";
import { startCpuPrometheus } from "../test/support/prometheus.ts";
import {
  appIds,
  arg,
  benchClient,
  builtOperator,
  createContacts,
  createFleet,
  deployedNodeOptions,
  licenseSecretYaml,
  machine,
  sleep,
  writeResult,
} from "./support.ts";

const root = join(import.meta.dirname, "..");
const N = Number(arg("apps", "10000"));
const OPERATOR = builtOperator(root);
const variants = arg("variants", deployedNodeOptions(root)).split("|");
const ids = appIds(N);
const cp = await startControlPlane();
const prometheus = await startCpuPrometheus(() => ids.map((id) => [id, 0.1]));
const runs: unknown[] = [];
try {
  const client = benchClient(cp.kubeconfig);
  await installCrds(cp.kubeconfig);
  /** A fleet of its own for variant `v`: apps, Deployments, contacts and policies in namespace bench-`v`. */
  const fleet = async (v: number) => {
    const ns = `bench-${v}`;
    await kubectl(cp.kubeconfig, ["create", "namespace", ns]);
    await kubectl(cp.kubeconfig, ["apply", "-f", "-"], licenseSecretYaml(ns));
    await createFleet(client, ns, ids, await createContacts(client, ns, 50));
    return ns;
  };

  const metric = (text: string, name: string, filter = "") =>
    text
      .split("\n")
      .filter((l) => l.startsWith(name) && l.includes(filter))
      .reduce((a, l) => a + Number(l.split(" ").pop()), 0);
  const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
  const memory = (t: string) => ({
    rssMB: mb(metric(t, "process_resident_memory_bytes")),
    heapUsedMB: mb(metric(t, "nodejs_heap_size_used_bytes")),
    heapTotalMB: mb(metric(t, "nodejs_heap_size_total_bytes")),
    externalMB: mb(metric(t, "nodejs_external_memory_bytes")),
  });
  /** RSS by mapping: the node binary, malloc's [heap], anonymous mappings (V8's heap, other arenas). */
  const smaps = (pid: number) => {
    const kb: Record<string, number> = {};
    let name = "";
    for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
      const m = line.match(/^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/);
      if (m) {
        name = !m[1] ? "anonymous" : m[1].endsWith("/node") ? "node binary" : m[1];
        continue;
      }
      const r = line.match(/^Rss:\s+(\d+) kB/);
      if (r) kb[name] = (kb[name] ?? 0) + Number(r[1]);
    }
    return Object.fromEntries(
      Object.entries(kb)
        .filter(([, v]) => v >= 1024)
        .map(([k, v]) => [k, Math.round(v / 1024)]),
    );
  };
  const run = async (variant: string, phase: string, ns: string) => {
    const words = variant.split(" ").filter(Boolean);
    const env = Object.fromEntries(words.filter((w) => /^[A-Z_]+=/.test(w)).map((w) => w.split("=")));
    const nodeOptions = words.filter((w) => !/^[A-Z_]+=/.test(w));
    const port = await freePort();
    const t0 = performance.now();
    const proc = spawn(process.execPath, [...nodeOptions, OPERATOR, `--namespaces=${ns}`], {
      env: {
        ...process.env,
        ...env,
        KUBECONFIG: cp.kubeconfig,
        MXOPS_METRICS_BIND_ADDRESS: `127.0.0.1:${port}`,
        MXOPS_HEALTH_PROBE_BIND_ADDRESS: "0",
        MXOPS_WEBHOOK_PORT: "0",
        MXOPS_LOG_LEVEL: "warn",
        MXOPS_USAGE_SOURCE: "prometheus",
        MXOPS_PROMETHEUS_URL: prometheus.url,
        NODE_OPTIONS: "",
      },
      stdio: ["ignore", "ignore", "inherit"],
    });
    const scrape = async () =>
      await fetch(`http://127.0.0.1:${port}/metrics`).then(
        (r) => r.text(),
        () => "",
      );
    let text = "";
    let peak = 0;
    for (;;) {
      // Every 2 s: a scrape of 10,000 apps' series costs the operator ~0.1 s of CPU (at 500 ms, a third of the
      // CPU it used while converging went into being polled).
      await sleep(2000);
      if (proc.exitCode !== null) throw new Error(`the operator exited with ${proc.exitCode} (${variant})`);
      text = await scrape();
      peak = Math.max(peak, metric(text, "process_resident_memory_bytes"));
      if (metric(text, "controller_runtime_reconcile_total", 'controller="mendixapp"') >= N) break;
    }
    const allReconciledSeconds = Number(((performance.now() - t0) / 1000).toFixed(1));
    const atDone = memory(text);
    await sleep(20_000);
    const later = await scrape();
    peak = Math.max(peak, metric(later, "process_resident_memory_bytes"));
    const result = {
      phase,
      variant,
      allReconciledSeconds,
      cpuSecondsAtDone: Number(metric(text, "process_cpu_seconds_total").toFixed(1)),
      reconciles: Object.fromEntries(
        text
          .split("\n")
          .filter((l) => l.startsWith("controller_runtime_reconcile_total{"))
          .map((l) => [l.slice(l.indexOf("{"), l.lastIndexOf(" ")), Number(l.split(" ").pop())]),
      ),
      atDone,
      after20s: memory(later),
      peakRssMB: mb(peak),
      rssByMappingMB: smaps(proc.pid ?? 0),
    };
    console.log(JSON.stringify(result));
    runs.push(result);
    proc.kill("SIGTERM");
    await new Promise((r) => proc.once("exit", r));
  };
  for (const [i, v] of variants.entries()) {
    const ns = await fleet(i);
    await run(v, "convergence", ns);
    await run(v, "restart", ns);
  }
} finally {
  await cp.stop();
  await prometheus.close();
}
writeResult(root, `memory-${N}${arg("label", "") ? `-${arg("label", "")}` : ""}.json`, {
  benchmark: "memory",
  apps: N,
  machine: machine(),
  command: `npm run bench:memory -- --apps ${N} --variants "${variants.join("|")}"`,
  date: new Date().toISOString(),
  runs,
});
process.exit(0);
