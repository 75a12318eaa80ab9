// The one way to talk to the API server: typed REST calls and watches over client-node's authentication.
import { statSync } from "node:fs";
import { type HttpMethod, type KubeConfig, RequestContext } from "@kubernetes/client-node";
import { Counter, Histogram, type Registry } from "prom-client";
import { type Dispatcher, getGlobalDispatcher } from "undici";
import { parseWithoutManagedFields } from "./json.ts";

export interface ResourceType {
  group: string;
  version: string;
  /** Lowercase plural, as in the URL. */
  plural: string;
  kind: string;
  namespaced: boolean;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  creationTimestamp?: string;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

export interface ObjectList<T> {
  items: T[];
  metadata: { resourceVersion?: string; continue?: string };
}

export interface WatchEvent<T> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

export type PatchType = "merge" | "apply" | "json" | "strategic";

const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  apply: "application/apply-patch+yaml",
  json: "application/json-patch+json",
  strategic: "application/strategic-merge-patch+json",
};

export function apiVersionOf(rt: ResourceType): string {
  return rt.group === "" ? rt.version : `${rt.group}/${rt.version}`;
}

/** The URL path of a collection, an object or an object's subresource. */
export function resourcePath(
  rt: ResourceType,
  namespace?: string,
  name?: string,
  subresource?: string,
): string {
  let path = rt.group === "" ? `/api/${rt.version}` : `/apis/${rt.group}/${rt.version}`;
  if (rt.namespaced && namespace) path += `/namespaces/${encodeURIComponent(namespace)}`;
  path += `/${rt.plural}`;
  if (name) path += `/${encodeURIComponent(name)}`;
  if (name && subresource) path += `/${subresource}`;
  return path;
}

/** An error answer of the API server (a Status object), or a transport failure (status 0). */
export class ApiError extends Error {
  readonly status: number;
  /** The Status reason, e.g. NotFound, Conflict, Expired, Gone, TooManyRequests; "Network" for transport failures. */
  readonly reason: string;
  readonly retryAfterSeconds: number | undefined;
  readonly details: unknown;
  constructor(
    status: number,
    reason: string,
    message: string,
    retryAfterSeconds?: number,
    details?: unknown,
  ) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.reason = reason;
    this.retryAfterSeconds = retryAfterSeconds;
    this.details = details;
  }
}

export const isNotFound = (e: unknown) => e instanceof ApiError && e.status === 404;
export const isConflict = (e: unknown) => e instanceof ApiError && e.status === 409;
export const isAlreadyExists = (e: unknown) =>
  e instanceof ApiError && e.status === 409 && e.reason === "AlreadyExists";
export const isGone = (e: unknown) => e instanceof ApiError && (e.status === 410 || e.reason === "Expired");

export class WatchStalledError extends Error {
  /** Whether the whole connection was silent too (and was dropped), not only this watch. */
  readonly connectionSilent: boolean;
  constructor(ms: number, connectionSilent: boolean) {
    super(
      connectionSilent
        ? `watch received nothing (not even a bookmark) for ${ms} ms, nor did any other request`
        : `watch received nothing (not even a bookmark) for ${ms} ms; the connection is alive`,
    );
    this.name = "WatchStalledError";
    this.connectionSilent = connectionSilent;
  }
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
  /**
   * What the answer is (default: an object), so that its objects' managedFields are left out: the operator
   * never reads them. Any other answer (a Status, say) is parsed as it is.
   */
  answer?: "object" | "list";
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  signal?: AbortSignal;
}

export interface WatchOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  timeoutSeconds?: number;
  /** Abort when no bytes (events or bookmarks) arrive for this long: half-open connections stay silent. */
  stallTimeoutMs?: number;
  signal?: AbortSignal;
}

interface ClientMetrics {
  requests: Counter<"code" | "method">;
  latency: Histogram<"verb">;
}

const clientMetricsByRegistry = new WeakMap<Registry, ClientMetrics>();

function clientMetrics(registry: Registry): ClientMetrics {
  let m = clientMetricsByRegistry.get(registry);
  if (!m) {
    m = {
      requests: new Counter({
        name: "rest_client_requests_total",
        help: "Number of HTTP requests to the API server, partitioned by status code and method.",
        labelNames: ["code", "method"],
        registers: [registry],
      }),
      latency: new Histogram({
        name: "rest_client_request_duration_seconds",
        help: "Request latency to the API server in seconds, by verb (watches excluded).",
        labelNames: ["verb"],
        buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60],
        registers: [registry],
      }),
    };
    clientMetricsByRegistry.set(registry, m);
  }
  return m;
}

/** How long authentication headers and the TLS identity are reused before client-node is asked again. */
const AUTH_REFRESH_MS = 1000;

export class KubeClient {
  readonly kubeConfig: KubeConfig;
  readonly server: string;
  private readonly metrics: ClientMetrics | undefined;
  private readonly userAgent: string;
  /**
   * One connection pool per TLS identity. client-node builds a new undici Agent for every request, which
   * means a new TLS handshake per request: at 1,000 apps that was most of the operator's CPU (and much of
   * the API server's). The Agent is kept until the identity changes (a rotated certificate file).
   */
  private pool: { identity: string; dispatcher: Dispatcher } | undefined;
  /**
   * The authentication headers, reused for AUTH_REFRESH_MS: client-node's applySecurityAuthentication reads
   * the CA, certificate and key files and builds an Agent on every call. A rotated token or certificate is
   * picked up within that time; a 401 refreshes at once.
   */
  private auth: { headers: Record<string, string>; at: number } | undefined;
  private refreshing: Promise<void> | undefined;
  /** The server's scheme, host and port, and the path it is served under (a proxy's prefix, if any). */
  private readonly origin: string;
  private readonly basePath: string;

  constructor(kubeConfig: KubeConfig, opts: { registry?: Registry; userAgent?: string } = {}) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error("the kubeconfig has no current cluster");
    this.kubeConfig = kubeConfig;
    this.server = cluster.server.replace(/\/$/, "");
    const server = new URL(this.server);
    this.origin = server.origin;
    this.basePath = server.pathname.replace(/\/$/, "");
    this.metrics = opts.registry ? clientMetrics(opts.registry) : undefined;
    this.userAgent = opts.userAgent ?? "mxops";
  }

  /** The current context's namespace, if any (in-cluster: the pod's namespace). */
  defaultNamespace(): string | undefined {
    return this.kubeConfig.getContextObject(this.kubeConfig.getCurrentContext())?.namespace;
  }

  /**
   * The path (with its query) and the headers of a request, and the pool it goes through. A path, not a URL:
   * requests go to the pool's dispatcher with the origin and the path, so that neither this client nor
   * undici parses a URL per request.
   */
  private async prepare(path: string, query?: RequestOptions["query"]) {
    let search = "";
    for (const k in query) {
      const v = query[k];
      if (v !== undefined) search += `${search ? "&" : "?"}${encodeURIComponent(k)}=${encodeURIComponent(v)}`;
    }
    if (!this.auth || !this.pool || performance.now() - this.auth.at > AUTH_REFRESH_MS) {
      this.refreshing ??= this.refreshAuth(this.server + path).finally(() => {
        this.refreshing = undefined;
      });
      await this.refreshing;
    }
    const auth = this.auth as { headers: Record<string, string> };
    const pool = this.pool as { dispatcher: Dispatcher };
    return { path: this.basePath + path + search, headers: { ...auth.headers }, dispatcher: pool.dispatcher };
  }

  private async refreshAuth(url: string): Promise<void> {
    const ctx = new RequestContext(url, "GET" as HttpMethod);
    await this.kubeConfig.applySecurityAuthentication(ctx);
    this.auth = { headers: { ...ctx.getHeaders(), "user-agent": this.userAgent }, at: performance.now() };
    const identity = this.tlsIdentity();
    if (this.pool?.identity !== identity) {
      const old = this.pool?.dispatcher;
      // No TLS options (plain HTTP): undici's shared pool.
      this.pool = {
        identity,
        dispatcher: (ctx.getDispatcher() as Dispatcher | undefined) ?? getGlobalDispatcher(),
      };
      // In-flight requests (watches) finish on the old pool; close() waits for them.
      if (old && old !== getGlobalDispatcher()) old.close().catch(() => undefined);
    }
  }

  /** When a response (or a watch's bytes) last arrived: the connection is alive if anything did recently. */
  private lastHeardAt = performance.now();

  /**
   * A request timed out or a watch went silent for `ms`: if nothing at all arrived in that time, drops the
   * pool. With HTTP/2 every request shares one connection, and a half-open one (a dropped NAT entry, a frozen
   * peer) would take every retry down with it; requests still in flight on it fail and are retried on a new
   * connection. If other responses did arrive, the connection is fine (a watch of a quiet resource hears
   * nothing for minutes when etcd sends no progress notifications, so the API server sends no bookmarks):
   * only the one request is retried, and the others in flight are left alone.
   */
  private resetPoolIfSilent(ms: number): boolean {
    const silent = performance.now() - this.lastHeardAt >= ms;
    if (silent) this.resetPool();
    return silent;
  }

  private resetPool(): void {
    this.lastHeardAt = performance.now();
    const old = this.pool?.dispatcher;
    this.pool = undefined;
    if (old && old !== getGlobalDispatcher()) old.destroy().catch(() => undefined);
  }

  /** What the TLS connection depends on: the cluster's CA and endpoint, the user's certificate (files by mtime). */
  private tlsIdentity(): string {
    const cluster = this.kubeConfig.getCurrentCluster();
    const user = this.kubeConfig.getCurrentUser();
    const file = (path: string | undefined) => {
      if (!path) return "";
      try {
        const st = statSync(path);
        return `${path}@${st.mtimeMs}/${st.size}`;
      } catch {
        return `${path}@missing`;
      }
    };
    return JSON.stringify([
      cluster?.server,
      cluster?.caData,
      file(cluster?.caFile),
      cluster?.skipTLSVerify,
      cluster?.tlsServerName,
      cluster?.proxyUrl,
      user?.certData,
      file(user?.certFile),
      user?.keyData,
      file(user?.keyFile),
    ]);
  }

  private count(code: number | string, method: string) {
    this.metrics?.requests.inc({ code: String(code), method });
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const { path: target, headers, dispatcher } = await this.prepare(path, opts.query);
    headers.accept = "application/json";
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
      headers["content-type"] = opts.contentType ?? "application/json";
    }
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const started = performance.now();
    let res: Dispatcher.ResponseData;
    let text: string;
    try {
      // undici's request(), not fetch(): no WHATWG Request/Response/streams per call (measured: the HTTP
      // layer was the largest share of the operator's CPU). The timeout is undici's own stream timer (no
      // answer, or a pause in the body, that long), not an AbortSignal.timeout: that was a signal and a
      // 30-second timer per request, alive (and promoted by V8's GC) long after the answer came.
      res = await dispatcher.request({
        origin: this.origin,
        path: target,
        method: method as Dispatcher.HttpMethod,
        headers,
        body,
        signal: opts.signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      text = await res.body.text();
      this.lastHeardAt = performance.now();
    } catch (err) {
      this.count("<error>", method);
      if (isTimeout(err)) this.resetPoolIfSilent(timeoutMs);
      throw new ApiError(0, "Network", `${method} ${path}: ${(err as Error).message}`);
    }
    this.metrics?.latency.observe({ verb: method }, (performance.now() - started) / 1000);
    this.count(res.statusCode, method);
    if (res.statusCode >= 200 && res.statusCode < 300) {
      return (text ? parseWithoutManagedFields<T>(text, opts.answer ?? "object") : undefined) as T;
    }
    if (res.statusCode === 401) this.auth = undefined;
    throw toApiError(res.statusCode, text, header(res.headers, "retry-after"), `${method} ${path}`);
  }

  /**
   * The object, or undefined when it does not exist. With `resourceVersion: "0"` the API server answers
   * from its watch cache (as fresh as an informer's copy, without a read from etcd).
   */
  async get<T extends KubeObject>(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
    opts: { resourceVersion?: string; signal?: AbortSignal } = {},
  ): Promise<T | undefined> {
    try {
      return await this.request<T>("GET", resourcePath(rt, namespace, name), {
        query: { resourceVersion: opts.resourceVersion },
        signal: opts.signal,
      });
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async list<T extends KubeObject>(rt: ResourceType, opts: ListOptions = {}): Promise<ObjectList<T>> {
    return await this.request<ObjectList<T>>("GET", resourcePath(rt, opts.namespace), {
      query: {
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
        limit: opts.limit,
        continue: opts.continue,
        resourceVersion: opts.resourceVersion,
      },
      signal: opts.signal,
      timeoutMs: 120_000,
      answer: "list",
    });
  }

  async create<T extends KubeObject>(
    rt: ResourceType,
    obj: T,
    opts: { fieldManager?: string; signal?: AbortSignal } = {},
  ): Promise<T> {
    return await this.request<T>("POST", resourcePath(rt, obj.metadata.namespace), {
      body: { apiVersion: apiVersionOf(rt), kind: rt.kind, ...obj },
      query: { fieldManager: opts.fieldManager },
      signal: opts.signal,
    });
  }

  async replace<T extends KubeObject>(
    rt: ResourceType,
    obj: T,
    subresource?: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<T> {
    return await this.request<T>(
      "PUT",
      resourcePath(rt, obj.metadata.namespace, obj.metadata.name, subresource),
      {
        body: { apiVersion: apiVersionOf(rt), kind: rt.kind, ...obj },
        signal: opts.signal,
      },
    );
  }

  async patch<T extends KubeObject>(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    type: PatchType,
    opts: { subresource?: string; fieldManager?: string; force?: boolean } = {},
  ): Promise<T> {
    return await this.request<T>("PATCH", resourcePath(rt, namespace, name, opts.subresource), {
      body: patch,
      contentType: PATCH_CONTENT_TYPE[type],
      query: { fieldManager: opts.fieldManager, force: opts.force },
    });
  }

  async delete(rt: ResourceType, namespace: string | undefined, name: string): Promise<boolean> {
    try {
      await this.request("DELETE", resourcePath(rt, namespace, name));
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  /**
   * Streams watch events to `onEvent` until the server ends the watch (resolves) or it fails
   * (rejects: ApiError, WatchStalledError or a transport error).
   */
  async watch<T>(rt: ResourceType, opts: WatchOptions, onEvent: (e: WatchEvent<T>) => void): Promise<void> {
    const path = resourcePath(rt, opts.namespace);
    const {
      path: target,
      headers,
      dispatcher,
    } = await this.prepare(path, {
      watch: true,
      allowWatchBookmarks: true,
      resourceVersion: opts.resourceVersion,
      labelSelector: opts.labelSelector,
      fieldSelector: opts.fieldSelector,
      timeoutSeconds: opts.timeoutSeconds,
    });
    headers.accept = "application/json";
    const stallMs = opts.stallTimeoutMs ?? 0;
    const controller = new AbortController();
    const onOuterAbort = () => controller.abort(opts.signal?.reason);
    opts.signal?.addEventListener("abort", onOuterAbort, { once: true });
    let stalled = false;
    let stallTimer: NodeJS.Timeout | undefined;
    const armStall = () => {
      if (!stallMs) return;
      clearTimeout(stallTimer);
      stallTimer = setTimeout(() => {
        stalled = true;
        controller.abort();
      }, stallMs);
      stallTimer.unref();
    };
    try {
      armStall();
      const res = await dispatcher.request({
        origin: this.origin,
        path: target,
        method: "GET",
        headers,
        signal: controller.signal,
      });
      this.count(res.statusCode, "WATCH");
      this.lastHeardAt = performance.now();
      if (res.statusCode !== 200) {
        if (res.statusCode === 401) this.auth = undefined;
        throw toApiError(
          res.statusCode,
          await res.body.text(),
          header(res.headers, "retry-after"),
          `WATCH ${path}`,
        );
      }
      const decoder = new TextDecoder();
      let buffered = "";
      for await (const chunk of res.body) {
        armStall();
        this.lastHeardAt = performance.now();
        buffered += decoder.decode(chunk as Uint8Array, { stream: true });
        let nl = buffered.indexOf("\n");
        while (nl >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line) onEvent(parseWithoutManagedFields<WatchEvent<T>>(line, "event"));
          nl = buffered.indexOf("\n");
        }
      }
    } catch (err) {
      if (stalled) throw new WatchStalledError(stallMs, this.resetPoolIfSilent(stallMs));
      if (opts.signal?.aborted) return;
      if (err instanceof ApiError) throw err;
      throw new ApiError(0, "Network", `WATCH ${path}: ${(err as Error).message}`);
    } finally {
      clearTimeout(stallTimer);
      opts.signal?.removeEventListener("abort", onOuterAbort);
      // Closes the connection when the watch ends early (an ERROR event, a handler's exception).
      controller.abort();
    }
  }
}

/** undici's errors for a request that got no answer, or no more of its body, in its time. */
function isTimeout(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT";
}

function header(headers: Dispatcher.ResponseData["headers"], name: string): string | null {
  const v = headers[name];
  return (Array.isArray(v) ? v[0] : v) ?? null;
}

function toApiError(status: number, text: string, retryAfter: string | null, what: string): ApiError {
  let reason: string = String(status);
  let message = text;
  let details: unknown;
  try {
    const s = JSON.parse(text) as { reason?: string; message?: string; details?: unknown };
    reason = s.reason ?? reason;
    message = s.message ?? message;
    details = s.details;
  } catch {
    // Not a Status object (e.g. a proxy's HTML page): keep the raw text.
  }
  const retry = retryAfter !== null && /^\d+$/.test(retryAfter) ? Number(retryAfter) : undefined;
  return new ApiError(status, reason, `${what}: ${status} ${message}`.slice(0, 2000), retry, details);
}
