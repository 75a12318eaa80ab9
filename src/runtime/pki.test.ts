import { describe, expect, it } from "vitest";
import { createCertificateAuthority, pemCertificates, servingCertificateProblem } from "./pki.ts";

describe("servingCertificateProblem", () => {
  const ca = createCertificateAuthority("test-ca");
  const names = ["mxops-webhook.mxops-system.svc", "localhost"];
  const HOUR = 3_600_000;

  it("accepts a certificate of the CA that names every host and has most of its life left", () => {
    const leaf = ca.issueServing("w", names, ["127.0.0.1"], 365);
    expect(servingCertificateProblem(leaf.certPem, ca.certPem, names)).toBeUndefined();
    // A bundle of the current CA and another one (during a CA change) is read as a whole.
    const other = createCertificateAuthority("other-ca");
    expect(servingCertificateProblem(leaf.certPem, `${other.certPem}\n${ca.certPem}`, names)).toBeUndefined();
    expect(pemCertificates(`${other.certPem}\n${ca.certPem}`)).toHaveLength(2);
  });

  it("asks for renewal with a third of the life left, months before a year-long certificate expires", () => {
    const leaf = ca.issueServing("w", names, [], 365);
    const issued = Date.now() - HOUR; // backdated an hour
    const life = 365 * 24 * HOUR + HOUR;
    expect(servingCertificateProblem(leaf.certPem, ca.certPem, names, issued + life * 0.6)).toBeUndefined();
    expect(servingCertificateProblem(leaf.certPem, ca.certPem, names, issued + life * 0.7)).toMatch(
      /expires at .* less than a third of its life left/,
    );
    expect(servingCertificateProblem(leaf.certPem, ca.certPem, names, issued + life + HOUR)).toMatch(
      /expires/,
    );
  });

  it("names what is wrong: another CA, a missing host name, no certificate", () => {
    const leaf = ca.issueServing("w", ["localhost"], [], 365);
    const other = createCertificateAuthority("other-ca");
    expect(servingCertificateProblem(leaf.certPem, other.certPem, ["localhost"])).toBe(
      "tls.crt is not signed by a CA in ca.crt",
    );
    expect(servingCertificateProblem(leaf.certPem, ca.certPem, names)).toBe(
      "tls.crt does not name mxops-webhook.mxops-system.svc",
    );
    expect(servingCertificateProblem("", ca.certPem, names)).toBe("tls.crt holds no certificate");
    expect(servingCertificateProblem(leaf.certPem, "", ["localhost"])).toBe(
      "tls.crt is not signed by a CA in ca.crt",
    );
  });
});
