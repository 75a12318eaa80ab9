// The validating admission webhook: HTTPS only, a certificate from a directory (cert-manager style, reloaded
// on rotation) or generated at start with its CA written into the ValidatingWebhookConfiguration.
import { readFileSync, unwatchFile, watchFile } from "node:fs";
import { createServer, type Server } from "node:https";
import { join } from "node:path";
import type { ZodError } from "zod";
import { AlertPolicy, AlertPolicySpec } from "../api/alert-policy.ts";
import { MendixApp, MendixAppSpec } from "../api/mendix-app.ts";
import { TechnicalContactSpec } from "../api/technical-contact.ts";
import { appsNamingContact, appsOnWorkload } from "../controllers/resources.ts";
import { SECRETS } from "../controllers/secrets.ts";
import { selects } from "../domain/alerts.ts";
import {
  type Caller,
  type ContactIdentity,
  contactDeletionWarnings,
  isAdmin,
  isClusterCleanup,
  reviewAlertPolicy,
  reviewAppLabels,
  reviewContactCreation,
  reviewMendixApp,
  reviewOwnerReferences,
  reviewTechnicalContact,
  type Verdict,
} from "../domain/authorization.ts";
import { isConflict, type KubeClient, type KubeObject, type ResourceType } from "../runtime/client.ts";
import type { Informer } from "../runtime/informer.ts";
import type { Logger } from "../runtime/log.ts";
import {
  type CertificateAuthority,
  certificateNotAfter,
  createCertificateAuthority,
  loadCertificateAuthority,
  pemCertificates,
  servingCertificateProblem,
} from "../runtime/pki.ts";
import { deepEqual } from "../runtime/status.ts";

export const VALIDATING_WEBHOOKS: ResourceType = {
  group: "admissionregistration.k8s.io",
  version: "v1",
  plural: "validatingwebhookconfigurations",
  kind: "ValidatingWebhookConfiguration",
  namespaced: false,
};

export const PATHS = {
  alertPolicy: "/validate-mxops-dev-v1alpha1-alertpolicy",
  mendixApp: "/validate-mxops-dev-v1alpha1-mendixapp",
  technicalContact: "/validate-mxops-dev-v1alpha1-technicalcontact",
};

interface AdmissionRequest {
  uid: string;
  kind: { kind: string };
  namespace?: string;
  name?: string;
  operation: "CREATE" | "UPDATE" | "DELETE" | "CONNECT";
  userInfo: { username?: string; groups?: string[]; uid?: string; extra?: Record<string, string[]> };
  object?: KubeObject & { spec?: unknown };
  oldObject?: KubeObject & { spec?: unknown };
}

export interface WebhookOptions {
  port: number;
  host?: string;
  /** Directory with tls.crt and tls.key (a mounted Secret); empty: generate a certificate at start. */
  certDir?: string;
  /** DNS names for a generated certificate (the webhook Service's names). */
  hostNames: string[];
  /** Where replicas share a generated certificate (created by the first); unset: each generates its own. */
  certSecret?: { namespace: string; name: string };
  /** ValidatingWebhookConfiguration whose caBundle is set to the generated CA; empty: none. */
  configurationName?: string;
  adminGroups: string[];
  apps: Informer<KubeObject & { spec: unknown }>;
  contacts: Informer<KubeObject & { spec: unknown }>;
  /** AlertPolicies: an app's labels decide which of them select it. */
  policies: Informer<KubeObject & { spec: unknown }>;
  client: KubeClient;
  log: Logger;
  /** How often a generated certificate is checked for renewal (default 10 minutes). */
  renewCheckMs?: number;
}

function identitiesOf(
  contacts: Informer<KubeObject & { spec: unknown }>,
  namespace: string,
  names: string[],
): { found: ContactIdentity[]; missing: string[] } {
  const found: ContactIdentity[] = [];
  const missing: string[] = [];
  for (const name of names) {
    const raw = contacts.get(namespace, name);
    if (!raw) {
      missing.push(name);
      continue;
    }
    // Only the identities: a contact whose email the operator rejects is still that person.
    found.push({ name, identities: identitiesIn(raw).data });
  }
  return { found, missing };
}

export function review(
  req: AdmissionRequest,
  opts: Pick<WebhookOptions, "adminGroups" | "apps" | "contacts" | "policies">,
): Verdict {
  const caller: Caller = { username: req.userInfo.username ?? "", groups: req.userInfo.groups ?? [] };
  const namespace = req.namespace ?? "";
  if (req.kind.kind === "AlertPolicy") {
    // Kubernetes' own clean-up (a namespace being deleted, an owner gone) deletes as a controller, not as a
    // person: refused, it would leave the namespace Terminating for good.
    if (req.operation === "DELETE" && isClusterCleanup(caller)) return { allowed: true, warnings: [] };
    // Only the spec is the alert settings: labels, annotations, finalizers (a GitOps tool's tracking marks,
    // the garbage collector orphaning) change nobody's alerts. Owners do: one that does not exist has the
    // garbage collector delete the policy, so a change of them is judged as a change of its alerts (but for
    // Kubernetes' own clean-up, which drops owners that are gone).
    if (
      req.operation === "UPDATE" &&
      deepEqual(req.oldObject?.spec, req.object?.spec) &&
      (deepEqual(req.oldObject?.metadata.ownerReferences ?? [], req.object?.metadata.ownerReferences ?? []) ||
        isClusterCleanup(caller))
    )
      return { allowed: true, warnings: [] };
    const wanted =
      req.operation === "DELETE" ? undefined : AlertPolicy.shape.spec.safeParse(req.object?.spec);
    // What the CRD's schema lets through but the operator cannot read (e.g. a date-time it does not accept) is
    // refused: allowed, it would bypass the checks below and stop the policy's evaluation.
    if (wanted && !wanted.success) return invalidSpec("AlertPolicy", wanted.error);
    // The stored spec only for what it covers: one the operator cannot read otherwise can still be fixed.
    const stored = req.operation === "CREATE" ? undefined : PolicyTarget.safeParse(req.oldObject?.spec);
    if (stored && !stored.success) return storedSpecInvalid(caller, opts.adminGroups, req, stored.error);
    const selectedBy = (spec: Pick<AlertPolicySpec, "appRef" | "appSelector">) =>
      spec.appRef
        ? [opts.apps.get(namespace, spec.appRef.name)].filter((a): a is KubeObject & { spec: unknown } => !!a)
        : opts.apps.list(namespace).filter((a) => selects(spec.appSelector, a.metadata.labels));
    // A change is a change to the alerts of the apps the policy covered and of those it will cover.
    const selected = new Map<string, KubeObject & { spec: unknown }>();
    for (const spec of [stored?.data, wanted?.data])
      if (spec) for (const a of selectedBy(spec)) selected.set(a.metadata.name, a);
    // Deleting a policy that covers no app (its app is gone) changes nobody's alerts.
    if (req.operation === "DELETE" && selected.size === 0) return { allowed: true, warnings: [] };
    const apps = [...selected.values()].map((a) => ({
      name: a.metadata.name,
      contacts: identitiesOf(opts.contacts, namespace, contactNames(a)).found,
    }));
    return reviewAlertPolicy(caller, opts.adminGroups, apps, wanted?.data ?? stored?.data);
  }
  if (req.kind.kind === "TechnicalContact") {
    const contact = req.name ?? "";
    /** The apps (not being deleted) naming this contact, each with its other contacts that exist. */
    const naming = () =>
      appsNamingContact(opts.apps, namespace, contact)
        .filter((a) => !a.metadata.deletionTimestamp)
        .flatMap((a) => {
          const names = contactNames(a);
          if (!names.includes(contact)) return []; // the index reads the spec unchecked; this is what counts
          const others = names.filter((n) => n !== contact);
          return [{ name: a.metadata.name, contacts: identitiesOf(opts.contacts, namespace, others).found }];
        })
        .sort((a, b) => a.name.localeCompare(b.name));
    if (req.operation === "DELETE") {
      if (isClusterCleanup(caller)) return { allowed: true, warnings: [] };
      // Rule 1 where it can be told without blocking anyone: kubectl delete -f of a directory, a handover
      // and a GitOps prune delete contacts in any order, so the last contact's deletion is a warning.
      const orphaned = naming()
        .filter((a) => a.contacts.length === 0)
        .map((a) => a.name);
      return { allowed: true, warnings: contactDeletionWarnings(contact, orphaned) };
    }
    const wanted = identitiesIn(req.object);
    if (!wanted.success) return invalidSpec("TechnicalContact", wanted.error, "spec.identities");
    if (req.operation === "CREATE")
      return reviewContactCreation(caller, opts.adminGroups, contact, wanted.data, naming());
    const stored = identitiesIn(req.oldObject).data;
    return reviewTechnicalContact(
      caller,
      opts.adminGroups,
      { name: contact, identities: stored },
      wanted.data,
    );
  }
  if (req.kind.kind === "MendixApp") {
    const oldSpec = req.oldObject ? MendixApp.shape.spec.safeParse(req.oldObject.spec) : undefined;
    const newSpec = req.object ? MendixApp.shape.spec.safeParse(req.object.spec) : undefined;
    if (newSpec && !newSpec.success) return invalidSpec("MendixApp", newSpec.error);
    if (oldSpec && !oldSpec.success) return storedSpecInvalid(caller, opts.adminGroups, req, oldSpec.error);
    const current = identitiesOf(
      opts.contacts,
      namespace,
      (oldSpec?.data ?? newSpec?.data)?.technicalContacts.map((c) => c.name) ?? [],
    );
    const wanted = identitiesOf(
      opts.contacts,
      namespace,
      newSpec?.data?.technicalContacts.map((c) => c.name) ?? [],
    );
    if (req.operation === "UPDATE") {
      const owners = reviewOwnerReferences(
        caller,
        opts.adminGroups,
        `MendixApp ${req.name ?? ""}`,
        req.oldObject?.metadata.ownerReferences,
        req.object?.metadata.ownerReferences,
        current.found,
      );
      if (owners) return owners;
    }
    if (req.operation === "UPDATE" && oldSpec && newSpec) {
      const before = req.oldObject?.metadata.labels ?? {};
      const after = req.object?.metadata.labels ?? {};
      if (!deepEqual(before, after)) {
        const moved = opts.policies
          .list(namespace)
          .filter((p) => {
            const selector = PolicyTarget.safeParse(p.spec).data?.appSelector;
            return selector !== undefined && selects(selector, before) !== selects(selector, after);
          })
          .map((p) => p.metadata.name);
        const verdict = reviewAppLabels(caller, opts.adminGroups, req.name ?? "", current.found, moved);
        if (!verdict.allowed) return verdict;
      }
    }
    // One workload, one app: two apps naming it would fight over its license env and its replicas.
    const ref = newSpec?.data?.workloadRef;
    if (ref && !deepEqual(ref, oldSpec?.data?.workloadRef)) {
      const other = appsOnWorkload(opts.apps, namespace, ref).find((a) => a.metadata.name !== req.name);
      if (other)
        return {
          allowed: false,
          message: `spec.workloadRef: ${ref.kind} ${ref.name} is already the workload of MendixApp ${other.metadata.name}; an app's workload is its own`,
          warnings: [],
        };
    }
    return reviewMendixApp(
      caller,
      opts.adminGroups,
      req.name ?? "",
      oldSpec?.data,
      newSpec?.data,
      current.found,
      wanted.missing,
    );
  }
  return { allowed: true, warnings: [] };
}

/** "spec.<path>: <rule>" of the first problem, so a refusal names the field and the rule. */
function firstIssue(error: ZodError, at = "spec"): string {
  const issue = error.issues[0];
  return issue ? `${[at, ...issue.path].join(".")}: ${issue.message}` : `${at}: invalid`;
}

function invalidSpec(kind: string, error: ZodError, at?: string): Verdict {
  return { allowed: false, message: `invalid ${kind} ${firstIssue(error, at)}`, warnings: [] };
}

/** What a policy covers, read alone: a stored spec the operator cannot read otherwise still says it. */
const PolicyTarget = AlertPolicySpec.pick({ appRef: true, appSelector: true }).loose();
/** Who acts as a contact, read alone: the rest of its spec (an email, a channel) is not the webhook's business. */
const ContactIdentities = TechnicalContactSpec.shape.identities;

function identitiesIn(contact: { spec?: unknown } | undefined) {
  return ContactIdentities.safeParse((contact?.spec as { identities?: unknown } | undefined)?.identities);
}

/** What an app's contacts are, read alone: the rest of a stored spec may be one the operator cannot read. */
const AppContacts = MendixAppSpec.pick({ technicalContacts: true }).loose();

function contactNames(app: KubeObject & { spec: unknown }): string[] {
  return (AppContacts.safeParse(app.spec).data?.technicalContacts ?? []).map((c) => c.name);
}

/** A stored object the operator cannot read: who may change it cannot be checked, so only admins may. */
function storedSpecInvalid(
  caller: Caller,
  adminGroups: string[],
  req: AdmissionRequest,
  error: ZodError,
): Verdict {
  if (isAdmin(caller, adminGroups)) return { allowed: true, warnings: [] };
  const what = `${req.operation === "DELETE" ? "delete" : "change"} ${req.kind.kind}`;
  return {
    allowed: false,
    message: `${caller.username} may not ${what} ${req.name ?? ""}: its stored spec is invalid (${firstIssue(error)}), so whose it is cannot be checked; only members of ${adminGroups.join(", ") || "the admin groups"} may`,
    warnings: [],
  };
}

const MAX_REVIEW_BYTES = 8 * 2 ** 20;

/** A generated serving certificate's life; it is renewed with a third of it left (about four months). */
const LEAF_DAYS = 365;
const DAY_MS = 24 * 60 * 60 * 1000;

interface ServingPems {
  cert: string;
  key: string;
  /** The CA bundle the API server is given: the signing CA first, then the one before it while it is valid. */
  caPem: string;
  /** The signing CA's key, kept so that renewals reuse the CA and leave the caBundle as it is. */
  caKey?: string;
}

/**
 * A serving certificate for `hostNames`: from the CA of `previous` when its key is known and it outlives a new
 * certificate, else from a new CA (the previous CA stays in the bundle until it expires, so replicas still
 * serving a certificate it signed are trusted until they pick up the new one).
 */
function issueServing(hostNames: string[], previous?: ServingPems, now = Date.now()): ServingPems {
  const [previousCa] = pemCertificates(previous?.caPem ?? "");
  const previousCaEnd = previousCa ? (certificateNotAfter(previousCa) ?? 0) : 0;
  let ca: CertificateAuthority | undefined;
  let caPem = "";
  if (previousCa && previous?.caKey && previousCaEnd > now + (LEAF_DAYS + 30) * DAY_MS) {
    try {
      ca = loadCertificateAuthority(previousCa, previous.caKey);
      caPem = previous.caPem;
    } catch {
      ca = undefined; // an unreadable key: start over with a new CA
    }
  }
  if (!ca) {
    ca = createCertificateAuthority("mxops-webhook-ca");
    caPem = previousCa && previousCaEnd > now ? `${ca.certPem.trim()}\n${previousCa}\n` : ca.certPem;
  }
  const serving = ca.issueServing(hostNames[0] ?? "mxops-webhook", hostNames, ["127.0.0.1"], LEAF_DAYS);
  return { cert: serving.certPem, key: serving.keyPem, caPem, caKey: ca.keyPem };
}

/**
 * Replicas must present certificates from one CA (the configuration holds a single caBundle): the first
 * replica stores what it generated in a Secret, the others (and later restarts) use that. Whoever finds it
 * unusable (expiring, other host names, not from its CA) renews it in place; the others read the result.
 */
async function sharedCertificate(
  client: KubeClient,
  ref: { namespace: string; name: string },
  hostNames: string[],
  log: Logger,
  known?: ServingPems,
): Promise<ServingPems> {
  type TlsSecret = KubeObject & { type?: string; data?: Record<string, string> };
  const enc = (v: string) => Buffer.from(v).toString("base64");
  for (let attempt = 1; ; attempt++) {
    const existing = await client.get<TlsSecret>(SECRETS, ref.namespace, ref.name);
    const d = (k: string) => Buffer.from(existing?.data?.[k] ?? "", "base64").toString("utf8");
    const current: ServingPems | undefined = existing
      ? { cert: d("tls.crt"), key: d("tls.key"), caPem: d("ca.crt"), caKey: d("ca.key") || undefined }
      : undefined;
    const problem = current
      ? current.key
        ? servingCertificateProblem(current.cert, current.caPem, hostNames)
        : "tls.key is empty"
      : undefined;
    if (current && !problem) return current;
    // The Secret deleted (to force a new certificate): a new CA, and the one this process served from stays in
    // the bundle, as on a renewal, so that the other replicas' certificates are trusted until they pick it up.
    const fresh = issueServing(hostNames, current ?? (known ? { ...known, caKey: undefined } : undefined));
    const data = {
      ...existing?.data,
      "tls.crt": enc(fresh.cert),
      "tls.key": enc(fresh.key),
      "ca.crt": enc(fresh.caPem),
      "ca.key": enc(fresh.caKey ?? ""),
    };
    try {
      if (existing) await client.replace<TlsSecret>(SECRETS, { ...existing, data });
      else
        await client.create<TlsSecret>(SECRETS, {
          metadata: {
            name: ref.name,
            namespace: ref.namespace,
            labels: { "app.kubernetes.io/managed-by": "mxops" },
          },
          type: "kubernetes.io/tls",
          data,
        });
      log.info(
        { secret: `${ref.namespace}/${ref.name}`, ...(problem ? { reason: problem } : {}) },
        existing ? "renewed the webhook certificate" : "generated the webhook certificate",
      );
      return fresh;
    } catch (err) {
      // Another replica wrote it first (409): read and use what it wrote.
      if (!isConflict(err) || attempt >= 3) throw err;
    }
  }
}

export interface WebhookServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

const SUBJECT_ACCESS_REVIEWS: ResourceType = {
  group: "authorization.k8s.io",
  version: "v1",
  plural: "subjectaccessreviews",
  kind: "SubjectAccessReview",
  namespaced: false,
};

/**
 * The workload a MendixApp claims with this request (created naming it, or pointed at it), if any. Claiming hands
 * rights on it (its contacts' Role and node permissions such as Deploy patch and scale it, as the operator,
 * which holds those rights): like RBAC, which lets nobody grant what they do not hold, the requester must hold
 * them already (checkClaim).
 */
export function claimedWorkload(req: AdmissionRequest): { kind: string; name: string } | undefined {
  if (req.kind.kind !== "MendixApp" || (req.operation !== "CREATE" && req.operation !== "UPDATE"))
    return undefined;
  const ref = MendixAppSpec.shape.workloadRef.safeParse(
    (req.object?.spec as { workloadRef?: unknown })?.workloadRef,
  ).data;
  if (!ref) return undefined;
  const before = (req.oldObject?.spec as { workloadRef?: unknown } | undefined)?.workloadRef;
  return req.operation === "CREATE" || !deepEqual(before, ref) ? ref : undefined;
}

/** A refusal when the requester may not update the workload the app claims (a SubjectAccessReview); else undefined. */
async function checkClaim(
  req: AdmissionRequest,
  opts: Pick<WebhookOptions, "adminGroups" | "client">,
): Promise<Verdict | undefined> {
  const claimed = claimedWorkload(req);
  const caller: Caller = { username: req.userInfo.username ?? "", groups: req.userInfo.groups ?? [] };
  if (!claimed || isAdmin(caller, opts.adminGroups)) return undefined;
  const resource = claimed.kind === "StatefulSet" ? "statefulsets" : "deployments";
  const what = `${claimed.kind} ${claimed.name}`;
  try {
    const sar = await opts.client.create<KubeObject & { status?: { allowed?: boolean } }>(
      SUBJECT_ACCESS_REVIEWS,
      {
        metadata: { name: "" },
        spec: {
          user: req.userInfo.username,
          groups: req.userInfo.groups,
          uid: req.userInfo.uid,
          extra: req.userInfo.extra,
          resourceAttributes: {
            namespace: req.namespace,
            verb: "update",
            group: "apps",
            resource,
            name: claimed.name,
          },
        },
      } as KubeObject,
    );
    if (sar.status?.allowed) return undefined;
  } catch (err) {
    return {
      allowed: false,
      message: `could not check whether ${caller.username} may update ${what} (${(err as Error).message}); try again`,
      warnings: [],
    };
  }
  return {
    allowed: false,
    message: `${caller.username} may not make ${what} the workload of MendixApp ${req.name ?? ""}: the app hands rights on it to its contacts and node permissions, so that needs the right to update it (update on ${resource} ${claimed.name})`,
    warnings: [],
  };
}

export async function startWebhook(opts: WebhookOptions): Promise<WebhookServer> {
  let cert: string;
  let key: string;
  let caPem: string | undefined;
  // A generated certificate (shared through a Secret, or this process's own) is checked again every few
  // minutes and renewed months before it expires; a mounted one is cert-manager's to renew (watched below).
  let generated: ServingPems | undefined;
  const generate = async (previous?: ServingPems): Promise<ServingPems> => {
    if (opts.certSecret)
      return await sharedCertificate(opts.client, opts.certSecret, opts.hostNames, opts.log, previous);
    if (previous && !servingCertificateProblem(previous.cert, previous.caPem, opts.hostNames))
      return previous;
    if (previous) opts.log.info("renewed the webhook certificate");
    return issueServing(opts.hostNames, previous);
  };
  if (opts.certDir) {
    cert = readFileSync(join(opts.certDir, "tls.crt"), "utf8");
    key = readFileSync(join(opts.certDir, "tls.key"), "utf8");
  } else {
    generated = await generate();
    ({ cert, key, caPem } = generated);
  }
  const server = createServer({ cert, key, minVersion: "TLSv1.2" }, (req, res) => {
    // An AdmissionReview is at most what the API server accepts as a request (3 MiB) plus the old object;
    // anything larger is not from the API server, and reading it whole would let any client that reaches
    // the port exhaust the operator's memory.
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (d: Buffer) => {
      size += d.length;
      if (size > MAX_REVIEW_BYTES) {
        if (!tooLarge) {
          tooLarge = true;
          chunks.length = 0;
          res.writeHead(413, { connection: "close" }).end();
          req.destroy();
        }
        return;
      }
      chunks.push(d);
    });
    req.on("end", async () => {
      if (tooLarge) return;
      // Decoded once: a character split between two chunks, decoded chunk by chunk, would turn into U+FFFD.
      const body = Buffer.concat(chunks).toString("utf8");
      const path = req.url?.split("?")[0];
      if (req.method !== "POST" || !Object.values(PATHS).includes(path ?? "")) {
        res.writeHead(404).end();
        return;
      }
      let uid = "";
      try {
        const review_ = JSON.parse(body) as { request: AdmissionRequest };
        uid = review_.request.uid;
        const reviewed = review(review_.request, opts);
        const claim = reviewed.allowed ? await checkClaim(review_.request, opts) : undefined;
        const verdict = claim ? { ...claim, warnings: reviewed.warnings } : reviewed;
        if (!verdict.allowed)
          opts.log.info(
            {
              user: review_.request.userInfo.username,
              kind: review_.request.kind.kind,
              name: review_.request.name,
              namespace: review_.request.namespace,
            },
            "admission refused",
          );
        res.writeHead(200, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            apiVersion: "admission.k8s.io/v1",
            kind: "AdmissionReview",
            response: {
              uid,
              allowed: verdict.allowed,
              ...(verdict.allowed
                ? {}
                : { status: { code: 403, reason: "Forbidden", message: verdict.message } }),
              ...(verdict.warnings.length ? { warnings: verdict.warnings } : {}),
            },
          }),
        );
      } catch (err) {
        // Unreadable review: refuse (failurePolicy Fail semantics), and say why.
        opts.log.error({ err: (err as Error).message }, "bad admission review");
        res.writeHead(400, { "content-type": "text/plain" });
        res.end(`bad AdmissionReview: ${(err as Error).message}`);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    // No host: every address, IPv6 and IPv4 (see parseAddress).
    server.listen(opts.port, opts.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : opts.port;

  // Rotation: cert-manager replaces the files in place; new connections get the new certificate.
  const certFile = opts.certDir ? join(opts.certDir, "tls.crt") : undefined;
  if (certFile && opts.certDir) {
    const dir = opts.certDir;
    watchFile(certFile, { interval: 2000 }, () => {
      try {
        server.setSecureContext({
          cert: readFileSync(join(dir, "tls.crt"), "utf8"),
          key: readFileSync(join(dir, "tls.key"), "utf8"),
        });
        opts.log.info("webhook certificate reloaded");
      } catch (err) {
        opts.log.error(
          { err: (err as Error).message },
          "could not reload the webhook certificate; keeping the old one",
        );
      }
    });
  }
  if (caPem && opts.configurationName)
    await injectCaBundle(opts.client, opts.configurationName, caPem, opts.log);

  let checking = false;
  const renewal = generated
    ? setInterval(
        () => {
          if (checking) return;
          checking = true;
          void (async () => {
            const next = await generate(generated);
            if (next === generated) return;
            // The API server trusts the new CA before this replica serves what it signed.
            if (next.caPem !== caPem && opts.configurationName)
              await injectCaBundle(opts.client, opts.configurationName, next.caPem, opts.log);
            if (next.cert !== generated?.cert) {
              server.setSecureContext({ cert: next.cert, key: next.key, minVersion: "TLSv1.2" });
              opts.log.info("webhook certificate reloaded");
            }
            generated = next;
            caPem = next.caPem;
          })()
            .catch((err: unknown) =>
              opts.log.error(
                { err: (err as Error).message },
                "could not check or renew the webhook certificate; serving the current one",
              ),
            )
            .finally(() => {
              checking = false;
            });
        },
        opts.renewCheckMs ?? 10 * 60_000,
      )
    : undefined;
  renewal?.unref();

  return {
    server,
    port,
    close: async () => {
      if (renewal) clearInterval(renewal);
      if (certFile) unwatchFile(certFile);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function injectCaBundle(client: KubeClient, name: string, caPem: string, log: Logger): Promise<void> {
  const vwc = await client.get<KubeObject & { webhooks?: { clientConfig: { caBundle?: string } }[] }>(
    VALIDATING_WEBHOOKS,
    undefined,
    name,
  );
  if (!vwc) {
    log.warn(
      { name },
      "ValidatingWebhookConfiguration not found; install deploy/ or the Helm chart so the API server calls the webhook",
    );
    return;
  }
  const caBundle = Buffer.from(caPem).toString("base64");
  const patch = (vwc.webhooks ?? []).map((_, i) => ({
    op: "add",
    path: `/webhooks/${i}/clientConfig/caBundle`,
    value: caBundle,
  }));
  await client.patch(VALIDATING_WEBHOOKS, undefined, name, patch, "json");
  log.info({ name, webhooks: patch.length }, "webhook CA bundle written");
}
