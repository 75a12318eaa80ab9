// A real SMTP server (smtp-server) that can be stopped and started again on the same port, keeps every mail
// across restarts, requires AUTH when given users, and lets a test act on each mail before it is acknowledged.
import type { Socket } from "node:net";
import { SMTPServer } from "smtp-server";
import { decodeQuotedPrintable, parseHeaders } from "../support/smtp.ts";

export interface Mail {
  to: string[];
  headers: Record<string, string>;
  raw: string;
  /** Quoted-printable soft breaks and escapes decoded. */
  text: string;
  user?: string;
  at: number;
}

export interface InboxOptions {
  /** user -> password; AUTH is then required (over plain SMTP: a relay on the loopback). */
  users?: Record<string, string>;
  /**
   * Called with each mail before the server answers DATA: return an SMTP code to refuse it, or undefined to
   * accept it. A test can kill the sender here: the mail is on the server, the sender never sees the 250.
   */
  beforeAck?: (mail: Mail, index: number) => number | undefined;
}

export class SmtpInbox {
  readonly mails: Mail[] = [];
  /** DATA commands seen, accepted or not. */
  attempts = 0;
  /** Connections accepted (every delivery attempt opens one). */
  connections = 0;
  port = 0;
  private readonly opts: InboxOptions;
  private server: SMTPServer | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(opts: InboxOptions = {}) {
    this.opts = opts;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  /** Listens on `port` (0: any free port the first time, the same one afterwards). */
  async start(port = this.port): Promise<void> {
    const server = new SMTPServer({
      secure: false,
      hideSTARTTLS: true,
      allowInsecureAuth: true,
      disabledCommands: this.opts.users ? [] : ["AUTH"],
      authOptional: !this.opts.users,
      logger: false,
      closeTimeout: 200,
      onConnect: (session, callback) => {
        this.connections++;
        callback();
        return session;
      },
      onAuth: (auth, _session, callback) => {
        if (this.opts.users && this.opts.users[auth.username ?? ""] === auth.password)
          callback(null, { user: auth.username });
        else callback(new Error("535 authentication failed"));
      },
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("end", () => {
          const raw = Buffer.concat(chunks).toString("utf8");
          const mail: Mail = {
            to: session.envelope.rcptTo.map((r) => r.address),
            headers: parseHeaders(raw),
            raw,
            text: decodeQuotedPrintable(raw),
            user: typeof session.user === "string" ? session.user : undefined,
            at: Date.now(),
          };
          const index = this.attempts++;
          const code = this.opts.beforeAck?.(mail, index);
          if (code === undefined) {
            this.mails.push(mail);
            callback();
          } else {
            const err = new Error(`refused by the test (${code})`) as Error & { responseCode: number };
            err.responseCode = code;
            callback(err);
          }
        });
      },
    });
    server.on("error", () => {
      // Connections the operator drops (a kill -9 mid-session) are outcomes of the test, not failures.
    });
    server.server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    const address = server.server.address();
    this.port = typeof address === "object" && address ? address.port : port;
    this.server = server;
  }

  /** Stops listening and cuts every open connection: senders see connection refused until start(). */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Mails grouped by their idempotency key (X-Mxops-Delivery-Id). */
  byDeliveryId(filter: (m: Mail) => boolean = () => true): Map<string, Mail[]> {
    const groups = new Map<string, Mail[]>();
    for (const m of this.mails.filter(filter)) {
      const id = m.headers["x-mxops-delivery-id"] ?? "(none)";
      groups.set(id, [...(groups.get(id) ?? []), m]);
    }
    return groups;
  }
}
