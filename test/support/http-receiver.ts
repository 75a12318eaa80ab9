// A real HTTP server that records what it receives and answers as a test tells it (fail, throttle, hang).
import { createServer, type IncomingMessage, type Server } from "node:http";

export interface Received {
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
  at: number;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  /** Answer only after this long (a timeout test). */
  delayMs?: number;
  body?: string;
}

export interface HttpReceiver {
  url: string;
  received: Received[];
  close(): Promise<void>;
}

export async function startHttpReceiver(
  reply: (r: Received, index: number) => Reply = () => ({ status: 200 }),
): Promise<HttpReceiver> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => {
      body += d.toString();
    });
    req.on("end", () => {
      const r: Received = { path: req.url ?? "/", headers: req.headers, body, at: Date.now() };
      const index = received.length;
      received.push(r);
      const answer = reply(r, index);
      const send = () => {
        if (res.destroyed) return;
        res.writeHead(answer.status, answer.headers);
        res.end(answer.body);
      };
      if (answer.delayMs) setTimeout(send, answer.delayMs).unref();
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
