// Starts a real etcd + kube-apiserver on loopback (built by build.sh), or wraps an existing cluster.
import { type ChildProcess, spawn } from "node:child_process";
import {
  appendFileSync,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { request as httpsRequest } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import {
  createCertificateAuthority,
  generateSigningKeyPair,
  loadCertificateAuthority,
} from "../../src/runtime/pki.ts";

const here = dirname(fileURLToPath(import.meta.url));

export interface ControlPlane {
  /** Admin kubeconfig (system:masters). */
  kubeconfig: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** Scratch directory removed by stop(): logs, certificates, kubeconfigs. */
  dir: string;
  /** etcd's client URL (http, loopback) when this process started it. */
  etcdUrl?: string;
  /** True when this process started etcd and kube-apiserver (false when using MXOPS_TEST_KUBECONFIG). */
  local: boolean;
  /** How to act as other users; serialisable, so test workers can mint users too (see writeUserKubeconfig). */
  userAuth: UserAuth;
  /** Writes a kubeconfig acting as `user` in `groups` (a client certificate, or impersonation on an external cluster). */
  userKubeconfig(user: string, groups?: string[]): string;
  /**
   * Stops only the kube-apiserver process (etcd keeps the data): SIGTERM, then SIGKILL after `graceMs`
   * (default 10 s; 0 is a crash).
   */
  stopApiServer(opts?: { graceMs?: number }): Promise<void>;
  /** Starts the kube-apiserver again on the same port and certificates and waits for /readyz. */
  startApiServer(): Promise<void>;
  /** The process ids of kube-apiserver and etcd when this process started them (benchmarks read their CPU). */
  pids(): { apiserver?: number; etcd?: number };
  /** Compacts etcd's history up to its current revision, so older watch resourceVersions get 410 Gone. */
  compactEtcd(): Promise<number>;
  /**
   * Stops only etcd (kube-apiserver keeps running and fails its storage requests until etcd is back): SIGTERM,
   * then SIGKILL after `graceMs` (default 10 s; 0 is a crash).
   */
  stopEtcd(opts?: { graceMs?: number }): Promise<void>;
  /** Starts etcd again with the same data directory and ports and waits for its /health. */
  startEtcd(): Promise<void>;
  stop(): Promise<void>;
}

export type UserAuth =
  | {
      mode: "certificate";
      server: string;
      servingCaPem: string;
      clientCaCertPem: string;
      clientCaKeyPem: string;
    }
  | { mode: "impersonation"; kubeconfig: string };

/** Writes into `dir` a kubeconfig that authenticates as `user` with `groups`; returns its path. */
export function writeUserKubeconfig(
  auth: UserAuth,
  dir: string,
  user: string,
  groups: string[] = [],
): string {
  const file = join(dir, `user-${safeName(user)}-${safeName(groups.join("+"))}.kubeconfig`);
  if (auth.mode === "certificate") {
    const cert = loadCertificateAuthority(auth.clientCaCertPem, auth.clientCaKeyPem).issueClient(
      user,
      groups,
    );
    const content = kubeconfigYaml(auth.server, auth.servingCaPem, {
      name: user,
      user: {
        "client-certificate-data": Buffer.from(cert.certPem).toString("base64"),
        "client-key-data": Buffer.from(cert.keyPem).toString("base64"),
      },
    });
    writeFileSync(file, content, { mode: 0o600 });
    return file;
  }
  const doc = YAML.parse(readFileSync(auth.kubeconfig, "utf8")) as {
    "current-context"?: string;
    contexts?: { name: string; context: { user: string } }[];
    users?: { name: string; user: Record<string, unknown> }[];
  };
  const ctx = doc.contexts?.find((c) => c.name === doc["current-context"]);
  for (const u of doc.users ?? []) {
    if (u.name === ctx?.context.user) {
      u.user.as = user;
      u.user["as-groups"] = ["system:authenticated", ...groups];
    }
  }
  writeFileSync(file, YAML.stringify(doc), { mode: 0o600 });
  return file;
}

export interface StartOptions {
  /** Directory holding etcd and kube-apiserver; built (or found in the cache) when absent. */
  binDir?: string;
  /** Where to stream progress; defaults to stderr. */
  log?: (line: string) => void;
}

/** Runs build.sh (a no-op when the binaries are cached) and returns the directory holding them. */
export async function ensureBinaries(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)) {
  const script = join(here, "build.sh");
  return await new Promise<string>((resolvePromise, reject) => {
    const child = spawn("bash", [script], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      for (const line of d.toString().split("\n")) if (line) log(line);
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const lines = out.trim().split("\n");
      const binDir = lines[lines.length - 1];
      if (code === 0 && binDir) resolvePromise(binDir);
      else reject(new Error(`building the control plane failed (exit ${code}); see the lines above`));
    });
  });
}

export async function freePort(): Promise<number> {
  return await new Promise((resolvePromise, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolvePromise(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

interface Proc {
  child: ChildProcess;
  exited: Promise<number | null>;
}

function startProcess(bin: string, args: string[], logFile: string, pidsFile: string): Proc {
  const out = createWriteStream(logFile, { flags: "a" });
  // Own process group: a terminal's Ctrl-C reaches the operator first, which still needs the API server to
  // release its Lease; whoever started the control plane stops it afterwards (or the reaper does).
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  if (child.pid) appendFileSync(pidsFile, `${child.pid}\n`);
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return { child, exited };
}

async function stopProcess(proc: Proc | undefined, graceMs = 10_000): Promise<void> {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill("SIGTERM");
  const timer = setTimeout(() => proc.child.kill("SIGKILL"), graceMs);
  await proc.exited;
  clearTimeout(timer);
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  proc: Proc,
  logFile: string,
  timeoutMs = 60_000,
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) {
      throw new Error(`${what} exited with code ${proc.child.exitCode} while starting:\n${tail(logFile)}`);
    }
    if (await check().catch(() => false)) return;
    await sleep(200);
  }
  throw new Error(`${what} not ready after ${timeoutMs / 1000}s:\n${tail(logFile)}`);
}

function httpsGet(
  url: string,
  ca: string,
  cert?: string,
  key?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const req = httpsRequest(url, { ca, cert, key, timeout: 5000 }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => {
        body += d.toString();
      });
      res.on("end", () => resolvePromise({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

async function etcdPost(url: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${url}${path}`, { method: "POST", body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`etcd ${path}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

interface KubeconfigUser {
  name: string;
  user: Record<string, unknown>;
}

function kubeconfigYaml(server: string, caPem: string | undefined, user: KubeconfigUser, insecure = false) {
  const cluster: Record<string, unknown> = { server };
  if (caPem) cluster["certificate-authority-data"] = Buffer.from(caPem).toString("base64");
  if (insecure) cluster["insecure-skip-tls-verify"] = true;
  return YAML.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "mxops-test", cluster }],
    users: [user],
    contexts: [{ name: user.name, context: { cluster: "mxops-test", user: user.name } }],
    "current-context": user.name,
  });
}

function safeName(s: string) {
  return s.replace(/[^a-zA-Z0-9_.-]/g, "_");
}

/** Uses the cluster of MXOPS_TEST_KUBECONFIG; users are impersonated, process control is unavailable. */
function externalControlPlane(kubeconfig: string): ControlPlane {
  const dir = mkdtempSync(join(tmpdir(), "mxops-ext-"));
  const doc = YAML.parse(readFileSync(kubeconfig, "utf8")) as {
    "current-context"?: string;
    contexts?: { name: string; context: { cluster: string } }[];
    clusters?: { name: string; cluster: { server: string } }[];
  };
  const ctx = doc.contexts?.find((c) => c.name === doc["current-context"]);
  const server = doc.clusters?.find((c) => c.name === ctx?.context.cluster)?.cluster.server ?? "";
  const unsupported = async (): Promise<never> => {
    throw new Error(
      "not possible on an external cluster (MXOPS_TEST_KUBECONFIG): the tests do not own its processes",
    );
  };
  const userAuth: UserAuth = { mode: "impersonation", kubeconfig };
  return {
    kubeconfig,
    server,
    dir,
    local: false,
    userAuth,
    userKubeconfig: (user, groups = []) => writeUserKubeconfig(userAuth, dir, user, groups),
    stopApiServer: unsupported,
    startApiServer: unsupported,
    pids: () => ({}),
    compactEtcd: unsupported,
    stopEtcd: unsupported,
    startEtcd: unsupported,
    async stop() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function startControlPlane(opts: StartOptions = {}): Promise<ControlPlane> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const external = process.env.MXOPS_TEST_KUBECONFIG;
  if (external) return externalControlPlane(resolve(external));

  const binDir = opts.binDir ?? (await ensureBinaries(log));
  const dir = mkdtempSync(join(tmpdir(), "mxops-cp-"));
  const pidsFile = join(dir, "pids");
  writeFileSync(pidsFile, "");
  // The reaper removes everything if this process dies without calling stop().
  spawn("bash", [join(here, "reaper.sh"), String(process.pid), dir], {
    detached: true,
    stdio: "ignore",
  }).unref();

  let etcd: Proc | undefined;
  let apiserver: Proc | undefined;
  try {
    const certDir = join(dir, "pki");
    mkdirSync(certDir);
    const file = (name: string, content: string) => {
      const p = join(certDir, name);
      writeFileSync(p, content, { mode: 0o600 });
      return p;
    };

    const [etcdPort, etcdPeerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const server = `https://127.0.0.1:${apiPort}`;

    const servingCA = createCertificateAuthority("mxops-test-serving-ca");
    const serving = servingCA.issueServing(
      "kube-apiserver",
      ["localhost", "kubernetes", "kubernetes.default"],
      ["127.0.0.1", "10.0.0.1"],
    );
    const clientCA = createCertificateAuthority("mxops-test-client-ca");
    const frontProxyCA = createCertificateAuthority("mxops-test-front-proxy-ca");
    const frontProxyClient = frontProxyCA.issueClient("front-proxy-client", []);
    const sa = generateSigningKeyPair();
    const admin = clientCA.issueClient("mxops-admin", ["system:masters"]);

    const etcdLog = join(dir, "etcd.log");
    const etcdArgs = [
      `--name=mxops-test`,
      `--data-dir=${join(dir, "etcd")}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-cluster=mxops-test=http://127.0.0.1:${etcdPeerPort}`,
      "--unsafe-no-fsync=true",
      "--log-level=warn",
    ];
    const startEtcd = async () => {
      etcd = startProcess(join(binDir, "etcd"), etcdArgs, etcdLog, pidsFile);
      const proc = etcd;
      await waitFor(
        "etcd",
        async () => {
          const res = await fetch(`${etcdUrl}/health`);
          return res.ok && ((await res.json()) as { health?: string }).health === "true";
        },
        proc,
        etcdLog,
      );
    };
    await startEtcd();

    const apiLog = join(dir, "kube-apiserver.log");
    const apiArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--secure-port=${apiPort}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--cert-dir=${certDir}`,
      `--tls-cert-file=${file("apiserver.crt", serving.certPem)}`,
      `--tls-private-key-file=${file("apiserver.key", serving.keyPem)}`,
      `--client-ca-file=${file("client-ca.crt", clientCA.certPem)}`,
      `--service-account-issuer=${server}/`,
      `--service-account-key-file=${file("sa.pub", sa.publicKeyPem)}`,
      `--service-account-signing-key-file=${file("sa.key", sa.privateKeyPem)}`,
      "--service-cluster-ip-range=10.0.0.0/24",
      "--authorization-mode=RBAC",
      "--allow-privileged=true",
      "--disable-admission-plugins=ServiceAccount",
      // The aggregation layer, so tests can serve metrics.k8s.io through an APIService.
      `--requestheader-client-ca-file=${file("front-proxy-ca.crt", frontProxyCA.certPem)}`,
      "--requestheader-allowed-names=front-proxy-client",
      "--requestheader-username-headers=X-Remote-User",
      "--requestheader-group-headers=X-Remote-Group",
      "--requestheader-extra-headers-prefix=X-Remote-Extra-",
      `--proxy-client-cert-file=${file("front-proxy-client.crt", frontProxyClient.certPem)}`,
      `--proxy-client-key-file=${file("front-proxy-client.key", frontProxyClient.keyPem)}`,
      "--enable-aggregator-routing=true",
    ];
    const startApi = async () => {
      apiserver = startProcess(join(binDir, "kube-apiserver"), apiArgs, apiLog, pidsFile);
      const proc = apiserver;
      await waitFor(
        "kube-apiserver",
        async () =>
          (await httpsGet(`${server}/readyz`, servingCA.certPem, admin.certPem, admin.keyPem)).status === 200,
        proc,
        apiLog,
        90_000,
      );
    };
    await startApi();

    const kubeconfig = join(dir, "admin.kubeconfig");
    writeFileSync(
      kubeconfig,
      kubeconfigYaml(server, servingCA.certPem, {
        name: "mxops-admin",
        user: {
          "client-certificate-data": Buffer.from(admin.certPem).toString("base64"),
          "client-key-data": Buffer.from(admin.keyPem).toString("base64"),
        },
      }),
      { mode: 0o600 },
    );
    const userAuth: UserAuth = {
      mode: "certificate",
      server,
      servingCaPem: servingCA.certPem,
      clientCaCertPem: clientCA.certPem,
      clientCaKeyPem: clientCA.keyPem,
    };
    log(`[controlplane] kube-apiserver ${server} (etcd ${etcdUrl}); kubeconfig ${kubeconfig}`);

    return {
      kubeconfig,
      server,
      etcdUrl,
      dir,
      local: true,
      userAuth,
      userKubeconfig: (user, groups = []) => writeUserKubeconfig(userAuth, dir, user, groups),
      stopApiServer: (opts) => stopProcess(apiserver, opts?.graceMs),
      startApiServer: startApi,
      pids: () => ({ apiserver: apiserver?.child.pid, etcd: etcd?.child.pid }),
      async compactEtcd() {
        const range = await etcdPost(etcdUrl, "/v3/kv/range", { key: Buffer.from("/").toString("base64") });
        const revision = Number((range.header as { revision: string }).revision);
        await etcdPost(etcdUrl, "/v3/kv/compaction", { revision: String(revision), physical: true });
        return revision;
      },
      stopEtcd: (opts) => stopProcess(etcd, opts?.graceMs),
      startEtcd,
      async stop() {
        await stopProcess(apiserver);
        await stopProcess(etcd);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await stopProcess(apiserver, 2000);
    await stopProcess(etcd, 2000);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Runs kubectl as a user would; resolves with stdout, rejects with a KubectlError carrying stderr. */
export async function kubectl(kubeconfig: string, args: string[], input?: string): Promise<string> {
  return await new Promise((resolvePromise, reject) => {
    const child = spawn("kubectl", ["--kubeconfig", kubeconfig, ...args], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    // "close", not "exit": only then has all of stdout and stderr been read.
    child.on("close", (code) => {
      if (code === 0) resolvePromise(stdout);
      else reject(new KubectlError(`kubectl ${args.join(" ")} failed (exit ${code}): ${stderr}`, stderr));
    });
    child.stdin.end(input ?? "");
  });
}

export class KubectlError extends Error {
  readonly stderr: string;
  constructor(message: string, stderr: string) {
    super(message);
    this.stderr = stderr;
  }
}

/** Installs (or updates) the mxops CRDs from crds/ and waits until the API server serves them. */
export async function installCrds(kubeconfig: string): Promise<void> {
  await kubectl(kubeconfig, [
    "apply",
    "--server-side",
    "--force-conflicts",
    "-k",
    join(here, "..", "..", "crds"),
  ]);
  await kubectl(kubeconfig, [
    "wait",
    "--for=condition=Established",
    "crd",
    "-l",
    "app.kubernetes.io/name=mxops",
  ]);
}
