// A real SMTP server in the test process (smtp-server): plain, STARTTLS or implicit TLS, with or without AUTH.
import { SMTPServer } from "smtp-server";

export interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
  headers: Record<string, string>;
  /** The message with quoted-printable soft breaks and escapes decoded, for content checks. */
  decoded: string;
  user?: string;
  /** When the message was received (Date.now()), for latency measurements. */
  receivedAt: number;
}

export interface SmtpOptions {
  mode: "plain" | "starttls" | "tls";
  cert?: string;
  key?: string;
  /** user -> password; when set, AUTH is required. */
  users?: Record<string, string>;
  /** Decides the reply to DATA: undefined accepts (250); a number rejects with that SMTP code. */
  reply?: (mail: ReceivedMail, index: number) => number | undefined;
}

export interface SmtpSink {
  port: number;
  mails: ReceivedMail[];
  /** DATA commands seen, accepted or not. */
  attempts: number;
  /** Server-side errors (failed handshakes) seen. */
  errors: string[];
  close(): Promise<void>;
}

export function parseHeaders(raw: string): Record<string, string> {
  const head = raw.split(/\r?\n\r?\n/)[0] ?? "";
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, " ").split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  return headers;
}

export const decodeQuotedPrintable = (s: string) =>
  s
    .replace(/=\r?\n/g, "")
    .replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16)));

export async function startSmtpSink(opts: SmtpOptions): Promise<SmtpSink> {
  const mails: ReceivedMail[] = [];
  const sink = { port: 0, mails, attempts: 0, errors: [], close: async () => {} } as SmtpSink;
  const server = new SMTPServer({
    secure: opts.mode === "tls",
    hideSTARTTLS: opts.mode === "plain",
    disabledCommands: opts.users ? [] : ["AUTH"],
    authOptional: !opts.users,
    key: opts.key,
    cert: opts.cert,
    logger: false,
    onAuth(auth, _session, callback) {
      if (opts.users && opts.users[auth.username ?? ""] === auth.password)
        callback(null, { user: auth.username });
      else callback(new Error("535 authentication failed"));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        const mail: ReceivedMail = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          headers: parseHeaders(raw),
          decoded: decodeQuotedPrintable(raw),
          user: typeof session.user === "string" ? session.user : undefined,
          receivedAt: Date.now(),
        };
        const index = sink.attempts++;
        const code = opts.reply?.(mail, index);
        if (code === undefined) {
          mails.push(mail);
          callback();
        } else {
          const err = new Error(`rejected by the test (${code})`) as Error & { responseCode: number };
          err.responseCode = code;
          callback(err);
        }
      });
    },
  });
  // Handshake failures a test provokes (e.g. a client that insists on TLS) are outcomes, not crashes.
  server.on("error", (err: Error) => sink.errors.push(err.message));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.server.address();
  sink.port = typeof address === "object" && address ? address.port : 0;
  sink.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return sink;
}
