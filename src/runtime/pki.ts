// Small X.509 toolkit: a CA, serving and client certificates, for the admission webhook and test control planes.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import forge from "node-forge";

export interface KeyPairPem {
  certPem: string;
  keyPem: string;
}

export interface CertificateAuthority extends KeyPairPem {
  /** Signs a certificate for a TLS server reachable at the given DNS names and IP addresses. */
  issueServing(commonName: string, dnsNames: string[], ipAddresses: string[], days?: number): KeyPairPem;
  /** Signs a client certificate; Kubernetes reads the user from CN and the groups from O. */
  issueClient(user: string, groups: string[], days?: number): KeyPairPem;
}

const DAY_MS = 24 * 60 * 60 * 1000;
// Names such as "alice@example.com" are not PrintableStrings, forge's default encoding.
const UTF8 = forge.asn1.Type.UTF8 as unknown as forge.asn1.Class;

function newRsaKey(): {
  privateKey: forge.pki.rsa.PrivateKey;
  publicKey: forge.pki.rsa.PublicKey;
  keyPem: string;
} {
  // Node's native key generation: forge's pure-JS RSA keygen takes seconds.
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const publicKey = forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e);
  return { privateKey: forgeKey, publicKey, keyPem };
}

function serialNumber(): string {
  // Positive, 16 bytes: the high bit cleared so DER does not read it as negative.
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString("hex");
}

function validity(cert: forge.pki.Certificate, days: number): void {
  // Backdated an hour to tolerate clock skew between the signer and the verifier.
  cert.validity.notBefore = new Date(Date.now() - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(Date.now() + days * DAY_MS);
}

export function createCertificateAuthority(commonName: string, days = 3650): CertificateAuthority {
  const caKey = newRsaKey();
  const caCert = forge.pki.createCertificate();
  caCert.publicKey = caKey.publicKey;
  caCert.serialNumber = serialNumber();
  validity(caCert, days);
  const caSubject = [{ name: "commonName", value: commonName, valueTagClass: UTF8 }];
  caCert.setSubject(caSubject);
  caCert.setIssuer(caSubject);
  caCert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  caCert.sign(caKey.privateKey, forge.md.sha256.create());
  return authority(caCert, caKey.privateKey, caKey.keyPem);
}

/** Rebuilds a CA from its PEMs (e.g. one created by another process) to issue more certificates. */
export function loadCertificateAuthority(certPem: string, keyPem: string): CertificateAuthority {
  return authority(
    forge.pki.certificateFromPem(certPem),
    forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey,
    keyPem,
  );
}

function authority(
  caCert: forge.pki.Certificate,
  caPrivateKey: forge.pki.rsa.PrivateKey,
  caKeyPem: string,
): CertificateAuthority {
  const issue = (
    subject: forge.pki.CertificateField[],
    extensions: object[],
    leafDays: number,
  ): KeyPairPem => {
    const key = newRsaKey();
    const cert = forge.pki.createCertificate();
    cert.publicKey = key.publicKey;
    cert.serialNumber = serialNumber();
    validity(cert, leafDays);
    cert.setSubject(subject);
    cert.setIssuer(caCert.subject.attributes);
    cert.setExtensions([
      { name: "basicConstraints", cA: false, critical: true },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
      { name: "authorityKeyIdentifier", keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
      ...extensions,
    ]);
    cert.sign(caPrivateKey, forge.md.sha256.create());
    return { certPem: forge.pki.certificateToPem(cert), keyPem: key.keyPem };
  };

  return {
    certPem: forge.pki.certificateToPem(caCert),
    keyPem: caKeyPem,
    issueServing(cn, dnsNames, ipAddresses, leafDays = 365) {
      const altNames = [
        ...dnsNames.map((value) => ({ type: 2, value })),
        ...ipAddresses.map((ip) => ({ type: 7, ip })),
      ];
      return issue(
        [{ name: "commonName", value: cn, valueTagClass: UTF8 }],
        [
          { name: "extKeyUsage", serverAuth: true },
          { name: "subjectAltName", altNames },
        ],
        leafDays,
      );
    },
    issueClient(user, groups, leafDays = 365) {
      const subject: forge.pki.CertificateField[] = [
        ...groups.map((value) => ({ name: "organizationName", value, valueTagClass: UTF8 })),
        { name: "commonName", value: user, valueTagClass: UTF8 },
      ];
      return issue(subject, [{ name: "extKeyUsage", clientAuth: true }], leafDays);
    },
  };
}

/** The PEM blocks of a bundle ("ca.crt" may hold the current CA and the one before it). */
export function pemCertificates(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** When a PEM certificate expires (ms since the epoch); undefined when it is not one. */
export function certificateNotAfter(pem: string): number | undefined {
  try {
    return forge.pki.certificateFromPem(pem).validity.notAfter.getTime();
  } catch {
    return undefined;
  }
}

/**
 * Why a serving certificate must be replaced, or undefined while it may still be served: it must parse, be signed
 * by a CA of the bundle, name every host name, and have more than a third of its life left (cert-manager's
 * default renewal point), so that it is renewed months before it expires.
 */
export function servingCertificateProblem(
  certPem: string,
  caBundlePem: string,
  hostNames: string[],
  now = Date.now(),
): string | undefined {
  let leaf: forge.pki.Certificate;
  try {
    leaf = forge.pki.certificateFromPem(certPem);
  } catch {
    return "tls.crt holds no certificate";
  }
  const signed = pemCertificates(caBundlePem).some((pem) => {
    try {
      return forge.pki.certificateFromPem(pem).verify(leaf);
    } catch {
      return false; // not its issuer
    }
  });
  if (!signed) return "tls.crt is not signed by a CA in ca.crt";
  const alt = leaf.getExtension("subjectAltName") as
    | { altNames?: { type: number; value?: string }[] }
    | undefined;
  const names = new Set((alt?.altNames ?? []).filter((a) => a.type === 2).map((a) => a.value));
  const missing = hostNames.filter((h) => !names.has(h));
  if (missing.length) return `tls.crt does not name ${missing.join(", ")}`;
  const from = leaf.validity.notBefore.getTime();
  const to = leaf.validity.notAfter.getTime();
  if (now >= to - (to - from) / 3)
    return `tls.crt expires at ${new Date(to).toISOString()} and has less than a third of its life left`;
  return undefined;
}

/** An RSA key pair in PEM, e.g. for a kube-apiserver's service-account token signing. */
export function generateSigningKeyPair(): { publicKeyPem: string; privateKeyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    privateKeyPem: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
  };
}
