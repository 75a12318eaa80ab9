// The metrics endpoint and the health/readiness probes, each on its own listener.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { writeMetrics } from "./metrics.ts";

export type Check = () => boolean | Promise<boolean>;

/**
 * "host:port" or ":port" -> listen arguments; port 0 picks a free port. No host: every address, IPv6 and IPv4
 * (node listens on "::" where the kernel has IPv6, else on 0.0.0.0), as Go's ":8080" does.
 */
export function parseAddress(addr: string): { host: string | undefined; port: number } {
  const i = addr.lastIndexOf(":");
  const host = i > 0 ? addr.slice(0, i).replace(/^\[|\]$/g, "") : undefined;
  const port = Number(i >= 0 ? addr.slice(i + 1) : addr);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`invalid address "${addr}": expected host:port`);
  return { host, port };
}

async function listen(server: Server, addr: string): Promise<number> {
  const { host, port } = parseAddress(addr);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

export async function serveMetrics(
  addr: string,
  registry: Registry,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (req.method === "GET" && req.url?.split("?")[0] === "/metrics") {
      // Sent as it is rendered, chunk by chunk: megabytes at 10,000 apps.
      writeMetrics(registry, res, () => res.writeHead(200, { "content-type": registry.contentType }))
        .then(() => res.end())
        .catch((err: unknown) => {
          if (res.headersSent) {
            res.destroy(); // cut short mid-way: the scraper sees a failed scrape
            return;
          }
          res.writeHead(500, { "content-type": "text/plain" });
          res.end(`collecting metrics failed: ${(err as Error).message}\n`);
        });
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found; try /metrics\n");
  });
  return { server, port: await listen(server, addr) };
}

/** /healthz (the process serves requests) and /readyz (every named check passes); ?verbose lists them. */
export async function serveProbes(
  addr: string,
  checks: { healthz: Record<string, Check>; readyz: Record<string, Check> },
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://probe");
    const group =
      url.pathname === "/healthz" ? checks.healthz : url.pathname === "/readyz" ? checks.readyz : undefined;
    if (!group || req.method !== "GET") {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found; try /healthz or /readyz\n");
      return;
    }
    void Promise.all(
      Object.entries(group).map(
        async ([name, check]) => [name, await Promise.resolve(check()).catch(() => false)] as const,
      ),
    ).then((results) => {
      const failed = results.filter(([, ok]) => !ok);
      const lines = results.map(([name, ok]) => `[${ok ? "+" : "-"}]${name} ${ok ? "ok" : "failed"}`);
      res.writeHead(failed.length ? 503 : 200, { "content-type": "text/plain" });
      if (url.searchParams.has("verbose") || failed.length)
        res.end(`${lines.join("\n")}\n${failed.length ? "failed" : "ok"}\n`);
      else res.end("ok\n");
    });
  });
  return { server, port: await listen(server, addr) };
}

export async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
