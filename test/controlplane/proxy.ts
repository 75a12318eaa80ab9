// A TCP proxy to the API server that a test can freeze, to cut a client off like a half-open network path.
import { connect, createServer, type Server, type Socket } from "node:net";

export interface FreezableProxy {
  port: number;
  /** Stops forwarding bytes on every connection (they stay open and silent) and holds new ones. */
  freeze(): void;
  /** Silences the connections open now (a half-open path); new connections are forwarded normally. */
  freezeExisting(): void;
  /** Destroys frozen and held connections (clients see errors and reconnect) and forwards again. */
  thaw(): void;
  close(): Promise<void>;
}

export async function startProxy(targetHost: string, targetPort: number): Promise<FreezableProxy> {
  let frozen = false;
  const live = new Set<{ client: Socket; upstream?: Socket; silent: boolean }>();
  const held = new Set<Socket>();

  const pipe = (client: Socket) => {
    const upstream = connect(targetPort, targetHost);
    const pair = { client, upstream, silent: false };
    live.add(pair);
    const end = () => {
      client.destroy();
      upstream.destroy();
      live.delete(pair);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.on("data", (d) => {
      if (!frozen && !pair.silent) upstream.write(d);
    });
    upstream.on("data", (d) => {
      if (!frozen && !pair.silent) client.write(d);
    });
  };

  const server: Server = createServer((client) => {
    if (frozen) {
      held.add(client);
      client.on("error", () => held.delete(client));
      return;
    }
    pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;

  const proxy: FreezableProxy = {
    port,
    freeze() {
      frozen = true;
    },
    freezeExisting() {
      for (const pair of live) pair.silent = true;
    },
    thaw() {
      for (const { client, upstream } of live) {
        client.destroy();
        upstream?.destroy();
      }
      live.clear();
      for (const c of held) c.destroy();
      held.clear();
      frozen = false;
    },
    async close() {
      proxy.thaw();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return proxy;
}
