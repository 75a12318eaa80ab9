// Case e: two replicas with leader election (in the full suite the defaults the manifests deploy: 15s lease,
// 10s renew deadline, 2s retry); the leader is killed with SIGKILL while it has notifications to send. The follower must take over
// within the lease duration (measured), only a leader may ever send, and nothing is notified twice.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Mail, SmtpInbox } from "./inbox.ts";
import {
  ApiReader,
  type Cluster,
  canary,
  condition,
  dayFromNow,
  eventually,
  FAST,
  k,
  killAllOperators,
  type LogLine,
  MX,
  type MxObject,
  type OperatorProcess,
  pendingRecords,
  report,
  rng,
  SEED,
  scanForLeaks,
  sharedCluster,
  sleep,
  startOperator,
} from "./support.ts";

const NS = "leader";
const LEASE = "mxops-faults";
// The full suite measures the defaults the manifests deploy; the fast subset a shorter lease.
const LEASE_MS = FAST ? 8000 : 15_000;
const RENEW_MS = FAST ? 5000 : 10_000;
const RETRY_MS = 2_000;
const TAKEOVERS = FAST ? 1 : 5;
const APPS_PER_ROUND = 3;
const RECIPIENTS = ["alice@example.com", "bob@example.com"];
const random = rng(SEED + 5);

interface Lease {
  spec: { holderIdentity?: string; renewTime?: string; leaseTransitions?: number };
}

describe("two replicas with leader election, the leader killed", () => {
  let cp: Cluster;
  let api: ApiReader;
  let inbox: SmtpInbox;
  const replicas: OperatorProcess[] = [];
  const licenseKey = canary("license-key");
  const smtpPassword = canary("smtp-password");
  const kubectl = () => k(cp.kubeconfig);

  const startReplica = () => {
    const op = startOperator("replica", cp.kubeconfig, ["--leader-elect", `--namespaces=${NS}`], {
      MXOPS_LEADER_ELECTION_NAMESPACE: NS,
      MXOPS_LEADER_ELECTION_ID: LEASE,
      MXOPS_LEASE_DURATION: `${LEASE_MS}ms`,
      MXOPS_RENEW_DEADLINE: `${RENEW_MS}ms`,
      MXOPS_RETRY_PERIOD: `${RETRY_MS}ms`,
      MXOPS_SMTP_HOST: "127.0.0.1",
      MXOPS_SMTP_PORT: String(inbox.port),
      MXOPS_SMTP_TLS: "none",
      MXOPS_SMTP_CREDENTIALS_SECRET: `${NS}/smtp-credentials`,
      MXOPS_NOTIFY_HOURLY_CAP: "0",
      MXOPS_NOTIFY_INITIAL_BACKOFF: "200ms",
    });
    replicas.push(op);
    return op;
  };
  const lease = async () =>
    await api.get<Lease>(`/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/${LEASE}`);
  const holderPid = (l: Lease | undefined) => Number(l?.spec.holderIdentity?.split("_").pop() ?? "0");
  const live = () => replicas.filter((r) => r.alive());
  const becameLeader = (l: LogLine) => l.msg === "became leader";

  beforeAll(async () => {
    cp = sharedCluster();
    api = new ApiReader(cp.kubeconfig);
    inbox = new SmtpInbox({ users: { mxops: smtpPassword } });
    await inbox.start();
    await kubectl()(
      ["apply", "-f", "-"],
      [
        `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}}`,
        `apiVersion: v1\nkind: Secret\nmetadata: {name: smtp-credentials, namespace: ${NS}}\nstringData: {username: mxops, password: "${smtpPassword}"}`,
        ...["alice", "bob"].map(
          (c) =>
            `apiVersion: mxops.dev/v1alpha1\nkind: TechnicalContact\nmetadata: {name: ${c}, namespace: ${NS}}\nspec: {displayName: ${c}, email: ${c}@example.com, mxid: ${c}@example.com}`,
        ),
      ].join("\n---\n"),
    );
    const first = startReplica();
    await first.waitForLog("became leader", becameLeader);
    const second = startReplica();
    await second.waitForLog("caches synced", (l) => l.msg === "caches synced");
  });

  afterAll(async () => {
    await killAllOperators();
    await inbox?.stop();
    api?.close();
  });

  it(`hands over within the lease duration after a kill -9 of the leader (${TAKEOVERS}x), and only a leader sends`, async () => {
    const expected = new Map<string, number>();
    const takeovers: { fromKillMs: number; fromLastRenewMs: number }[] = [];
    for (let round = 1; round <= TAKEOVERS; round++) {
      const [a, b] = live();
      if (!a || !b) throw new Error("two live replicas expected");
      const leaderPid = holderPid(await lease());
      const leader = live().find((r) => r.pid === leaderPid);
      const follower = live().find((r) => r.pid !== leaderPid);
      if (!leader || !follower) throw new Error(`lease holder ${leaderPid} is not one of the live replicas`);
      expect(follower.logs().some(becameLeader)).toBe(false);

      // Work in flight: apps with license reminders due, applied just before the leader dies.
      const batch = Array.from({ length: APPS_PER_ROUND }, (_, j) => `lead-${round}-${j + 1}`);
      for (const app of batch)
        for (const r of RECIPIENTS) {
          expected.set(`ContactAssigned|${app}|${r}`, 1);
          expected.set(`LicenseReminder|${app}|${r}`, 1);
        }
      await kubectl()(
        ["apply", "-f", "-"],
        batch
          .flatMap((app) => [
            `apiVersion: v1\nkind: Secret\nmetadata: {name: ${app}-license, namespace: ${NS}}\nstringData: {LICENSE_ID: 3f1c2b8e-7d4a-4e2b-9c61-0a5d8e7f1b23, LICENSE_KEY: "${licenseKey}"}`,
            `apiVersion: mxops.dev/v1alpha1\nkind: MendixApp\nmetadata: {name: ${app}, namespace: ${NS}}\nspec:\n  hosting: OnPremises\n  technicalContacts: [{name: alice}, {name: bob}]\n  license: {secretRef: {name: ${app}-license}, expiresAt: "${dayFromNow(20)}"}`,
          ])
          .join("\n---\n"),
      );
      await sleep(random.int(0, 1500));
      const lastRenew = Date.parse((await lease())?.spec.renewTime ?? "");
      const killedAt = Date.now();
      await leader.kill9();
      const took = await follower.waitForLog("took over", becameLeader, LEASE_MS * 3);
      const tookAt = Date.parse(took.time ?? "");
      takeovers.push({ fromKillMs: tookAt - killedAt, fromLastRenewMs: tookAt - lastRenew });
      expect(holderPid(await lease())).toBe(follower.pid);

      // Back to two replicas; the new one must stay a follower.
      const fresh = startReplica();
      await fresh.waitForLog("caches synced", (l) => l.msg === "caches synced");
      await eventually(
        async () => {
          const objs = await api.list<MxObject>(`${MX}/namespaces/${NS}/mendixapps`);
          const ready = batch.every(
            (n) =>
              condition(
                objs.find((o) => o.metadata.name === n),
                "Ready",
              )?.status === "True",
          );
          const keys = new Set(inbox.mails.map(key));
          const all = [...expected.keys()].every((x) => keys.has(x));
          return ready && all && pendingRecords(objs).length === 0 ? true : undefined;
        },
        { what: `round ${round}: the new leader reconciled and notified`, timeoutMs: 60_000 },
      );
      expect(fresh.logs().some(becameLeader)).toBe(false);
    }

    await sleep(3000);
    const byKey = new Map<string, Set<string>>();
    for (const m of inbox.mails)
      byKey.set(key(m), (byKey.get(key(m)) ?? new Set()).add(m.headers["x-mxops-delivery-id"] ?? ""));
    const twice = [...byKey].filter(([, ids]) => ids.size > 1).map(([x]) => x);
    const lost = [...expected.keys()].filter((x) => !byKey.has(x));
    const duplicatesSameKey = inbox.mails.length - [...byKey.values()].reduce((n, s) => n + s.size, 0);
    // Only a process that had become leader may have delivered anything, and only after it did.
    const sentByFollower = replicas.filter((r) => {
      const lines = r.logs();
      const leadAt = lines.findIndex(becameLeader);
      const firstSend = lines.findIndex((l) => l.msg === "notification delivered");
      return firstSend >= 0 && (leadAt < 0 || firstSend < leadAt);
    });
    const fromKill = takeovers.map((t) => t.fromKillMs);
    const fromRenew = takeovers.map((t) => t.fromLastRenewMs);
    report("e-leader-election", {
      replicas: 2,
      leaseDurationS: LEASE_MS / 1000,
      renewDeadlineS: RENEW_MS / 1000,
      retryPeriodS: RETRY_MS / 1000,
      takeovers: takeovers.length,
      takeoverFromKillMs: fromKill,
      takeoverFromKillMsMax: Math.max(...fromKill),
      takeoverFromLastRenewalMs: fromRenew,
      takeoverFromLastRenewalMsMax: Math.max(...fromRenew),
      expectedDeliveries: expected.size,
      mailsReceived: inbox.mails.length,
      lost: lost.length,
      notifiedUnderTwoKeys: twice.length,
      duplicatesSameKey,
      followersThatSent: sentByFollower.length,
      leaseTransitions: (await lease())?.spec.leaseTransitions,
    });
    expect(lost).toEqual([]);
    expect(twice, "notifications sent under two idempotency keys").toEqual([]);
    expect(sentByFollower.map((r) => r.pid)).toEqual([]);
    // The follower judges expiry from when it saw the last renewal: up to one retry period later, plus its
    // own polling period, plus the time a lease write takes on a loaded machine.
    for (const t of takeovers) expect(t.fromLastRenewMs).toBeLessThanOrEqual(LEASE_MS + 2 * RETRY_MS + 1000);
    for (const t of takeovers) expect(t.fromKillMs).toBeGreaterThan(0);
  });

  it("leaks no planted secret into logs, Events, statuses or mails", async () => {
    const scan = await scanForLeaks(
      api,
      inbox.mails.map((m) => ({ where: `mail ${m.headers.subject}`, text: m.raw })),
    );
    report("g-leak-scan-leader", { ...scan, hits: scan.hits.length });
    expect(scan.hits).toEqual([]);
    expect(scan.notifications).toBeGreaterThan(0);
  });
});

function key(m: Mail): string {
  const app = /of ([a-z0-9-]+)/.exec(m.headers.subject ?? "")?.[1] ?? "?";
  return `${m.headers["x-mxops-kind"]}|${app}|${m.to.join(",")}`;
}
