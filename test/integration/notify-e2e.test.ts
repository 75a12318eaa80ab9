// Notifications end to end: the operator process, a TechnicalContact annotated with kubectl, a real SMTP
// server and webhook receiver; restarts and a kill -9 between sending and recording.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signWebhook } from "../../src/notify/channels.ts";
import { type HttpReceiver, startHttpReceiver } from "../support/http-receiver.ts";
import { type SmtpSink, startSmtpSink } from "../support/smtp.ts";
import { adminKubeconfig, contactYaml, eventually, kubectl, newNamespace } from "./helpers.ts";
import { installCrds, type OperatorProcess, startOperator } from "./operator.ts";

interface ContactStatus {
  lastTest?: { nonce: string; result: string };
  notifications?: { id: string; state: string; delivered?: string[] }[];
  conditions?: { type: string; status: string; reason: string }[];
}

const k = (args: string[], input?: string) => kubectl(adminKubeconfig(), args, input);

async function status(ns: string): Promise<ContactStatus> {
  return (
    (JSON.parse(await k(["get", "tc", "carol", "-n", ns, "-o", "json"])) as { status?: ContactStatus })
      .status ?? {}
  );
}

describe("test messages through the operator", () => {
  let smtp: SmtpSink;
  let hooks: HttpReceiver;
  let killOnFirstMail: OperatorProcess | undefined;
  const operators: OperatorProcess[] = [];

  const operator = (ns: string, env: Record<string, string> = {}) => {
    const op = startOperator([`--namespaces=${ns}`], {
      MXOPS_SMTP_HOST: "127.0.0.1",
      MXOPS_SMTP_PORT: String(smtp.port),
      MXOPS_SMTP_TLS: "none",
      MXOPS_SMTP_FROM: "mxops@example.com",
      MXOPS_NOTIFY_INITIAL_BACKOFF: "100ms",
      MXOPS_NOTIFY_MAX_ATTEMPTS: "3",
      ...env,
    });
    operators.push(op);
    return op;
  };

  beforeAll(async () => {
    await installCrds();
    smtp = await startSmtpSink({
      mode: "plain",
      reply: () => {
        // The crash window: the mail is on the server, the operator dies before it reads 250.
        if (killOnFirstMail) {
          killOnFirstMail.child.kill("SIGKILL");
          killOnFirstMail = undefined;
        }
        return undefined;
      },
    });
    hooks = await startHttpReceiver();
  });

  afterAll(async () => {
    for (const op of operators) op.child.kill("SIGKILL");
    await smtp?.close();
    await hooks?.close();
  });

  it("sends a test message through every channel once, reports it in status and an Event, and not again after a restart", async () => {
    const ns = await newNamespace("notify");
    await k(["apply", "-f", "-"], contactYaml(ns, hooks.url));
    const op = operator(ns);
    await k(["annotate", "tc", "carol", "-n", ns, "mxops.dev/send-test=first"]);

    const done = await eventually(
      async () => {
        const s = await status(ns);
        return s.lastTest?.nonce === "first" ? s : undefined;
      },
      { what: "the test message's result in status", timeoutMs: 30_000 },
    );
    expect(done.lastTest?.result).toBe("email: delivered; webhook: delivered");
    const record = done.notifications?.find((r) => r.id.endsWith("/first"));
    expect(record?.state).toBe("Sent");
    expect(record?.delivered).toHaveLength(2);

    const mails = smtp.mails.filter((m) => m.headers["x-mxops-delivery-id"]?.startsWith(record?.id ?? "-"));
    expect(mails).toHaveLength(1);
    expect(mails[0]?.headers.subject).toBe("mxops test message");
    expect(mails[0]?.to).toEqual(["carol@example.com"]);
    const posts = hooks.received.filter((r) => String(r.headers["webhook-id"]).startsWith(record?.id ?? "-"));
    expect(posts).toHaveLength(1);
    const post = posts[0];
    const id = String(post?.headers["webhook-id"]);
    expect(post?.path).toBe("/hooks/carol");
    expect(post?.headers["webhook-signature"]).toBe(
      signWebhook("whsec_c2lnbmluZy1rZXk=", id, Number(post?.headers["webhook-timestamp"]), post?.body ?? ""),
    );

    const events = await k(["get", "events.v1.events.k8s.io", "-n", ns, "-o", "jsonpath={.items[*].reason}"]);
    expect(events).toContain("NotificationSent");

    // A restart finds the nonce answered: nothing is sent again.
    expect(await op.stop()).toBe(0);
    const again = operator(ns);
    await eventually(
      async () => (again.logs().some((l) => l.msg === "controllers started") ? true : undefined),
      {
        what: "the second operator to start",
      },
    );
    await new Promise((r) => setTimeout(r, 1500));
    expect(
      smtp.mails.filter((m) => m.headers["x-mxops-delivery-id"]?.startsWith(record?.id ?? "-")),
    ).toHaveLength(1);
    await again.stop();
  });

  it("after a kill -9 between sending and recording, resends once with the same idempotency key and loses nothing", async () => {
    const ns = await newNamespace("crash");
    await k(["apply", "-f", "-"], contactYaml(ns, hooks.url));
    const victim = operator(ns);
    killOnFirstMail = victim;
    await k(["annotate", "tc", "carol", "-n", ns, "mxops.dev/send-test=crash-1"]);
    expect(await victim.exit).toBeNull(); // killed by SIGKILL

    const pending = await status(ns);
    const record = pending.notifications?.find((r) => r.id.endsWith("/crash-1"));
    expect(record?.state).toBe("Pending"); // the intent was recorded before sending

    operator(ns);
    const done = await eventually(
      async () => {
        const s = await status(ns);
        return s.lastTest?.nonce === "crash-1" ? s : undefined;
      },
      { what: "the resumed test message", timeoutMs: 30_000 },
    );
    expect(done.notifications?.find((r) => r.id === record?.id)?.state).toBe("Sent");
    const mails = smtp.mails.filter((m) => m.headers["x-mxops-delivery-id"]?.startsWith(record?.id ?? "-"));
    expect(mails).toHaveLength(2); // the one the victim never saw acknowledged, and the resend
    expect(new Set(mails.map((m) => m.headers["message-id"])).size).toBe(1);
    expect(new Set(mails.map((m) => m.headers["x-mxops-delivery-id"])).size).toBe(1);
    const posts = hooks.received.filter((r) => String(r.headers["webhook-id"]).startsWith(record?.id ?? "-"));
    expect(posts.length).toBeGreaterThanOrEqual(1);
    expect(posts.length).toBeLessThanOrEqual(2);
    expect(new Set(posts.map((p) => p.headers["webhook-id"])).size).toBe(1);
  });

  it("past the retry budget says so: condition NotificationFailed, a Warning Event, and the other channel still delivers", async () => {
    const ns = await newNamespace("failing");
    const refusing = await startHttpReceiver(() => ({ status: 400 }));
    try {
      await k(["apply", "-f", "-"], contactYaml(ns, refusing.url));
      operator(ns);
      await k(["annotate", "tc", "carol", "-n", ns, "mxops.dev/send-test=doomed"]);
      const done = await eventually(
        async () => {
          const s = await status(ns);
          return s.lastTest?.nonce === "doomed" ? s : undefined;
        },
        { what: "the failed test message", timeoutMs: 30_000 },
      );
      expect(done.lastTest?.result).toMatch(/^email: delivered; webhook: failed \(webhook .*HTTP 400\)$/);
      expect(done.notifications?.find((r) => r.id.endsWith("/doomed"))?.state).toBe("Failed");
      expect(done.conditions?.find((c) => c.type === "NotificationFailed")).toMatchObject({
        status: "True",
        reason: "DeliveryFailed",
      });
      expect(refusing.received).toHaveLength(1); // a 400 is final: no retries
      const events = JSON.parse(await k(["get", "events.v1.events.k8s.io", "-n", ns, "-o", "json"])) as {
        items: { type: string; reason: string; note: string }[];
      };
      expect(events.items).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            type: "Warning",
            reason: "NotificationFailed",
            note: expect.stringMatching(/webhook to contact:carol/),
          }),
        ]),
      );
    } finally {
      await refusing.close();
    }
  });

  it("holds messages past the per-recipient cap and delivers them in one digest, which closes their records", async () => {
    const ns = await newNamespace("digest");
    await k(["apply", "-f", "-"], contactYaml(ns, hooks.url));
    await k([
      "patch",
      "tc",
      "carol",
      "-n",
      ns,
      "--type=json",
      "-p",
      '[{"op":"remove","path":"/spec/channels/webhook"}]',
    ]);
    operator(ns, { MXOPS_NOTIFY_HOURLY_CAP: "1", MXOPS_NOTIFY_CAP_WINDOW: "4s" });
    const forNonce = (nonce: string) => async () => {
      const s = await status(ns);
      return s.lastTest?.nonce === nonce ? s : undefined;
    };
    await k(["annotate", "tc", "carol", "-n", ns, "mxops.dev/send-test=one"]);
    await eventually(forNonce("one"), { what: "the first message", timeoutMs: 30_000 });
    await k(["annotate", "tc", "carol", "-n", ns, "--overwrite", "mxops.dev/send-test=two"]);
    const held = await eventually(forNonce("two"), {
      what: "the second message to be held",
      timeoutMs: 30_000,
    });
    expect(held.lastTest?.result).toBe("email: held for the hourly digest");
    const record = held.notifications?.find((r) => r.id.endsWith("/two"));
    expect(record?.state, JSON.stringify(held, null, 1)).toBe("Pending");

    const closed = await eventually(
      async () => {
        const s = await status(ns);
        return s.notifications?.find((r) => r.id === record?.id)?.state === "Sent" ? s : undefined;
      },
      { what: "the digest to close the held record", timeoutMs: 30_000 },
    );
    expect(closed.notifications?.find((r) => r.id === record?.id)?.delivered).toEqual([
      `${record?.id}/email/contact:carol`,
    ]);
    const digest = smtp.mails.find(
      (m) =>
        m.headers.subject?.includes("held back by the hourly limit") && m.decoded.includes(record?.id ?? "-"),
    );
    expect(digest?.to).toEqual(["carol@example.com"]);
    expect(
      smtp.mails.filter((m) => m.headers["x-mxops-delivery-id"]?.startsWith(record?.id ?? "-")),
    ).toHaveLength(0);
  });
});
