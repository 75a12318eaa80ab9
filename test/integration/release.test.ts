// What the container image ships, built by the script its Dockerfile runs: one bundled module that starts
// against the real API server without node_modules, and sends through its channels (the bundle leaves most of
// undici out and loads Node's built-ins its own way: scripts/bundle.ts).
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, installCrds } from "../controlplane/controlplane.ts";
import { startHttpReceiver } from "../support/http-receiver.ts";
import { startSmtpSink } from "../support/smtp.ts";
import { adminKubeconfig, contactYaml, eventually, kubectl, newNamespace } from "./helpers.ts";

const root = join(import.meta.dirname, "..", "..");

describe("the release build (scripts/build-release.sh, run by the Dockerfile)", () => {
  const out = join(mkdtempSync(join(tmpdir(), "mxops-release-")), "app");
  afterAll(() => rmSync(join(out, ".."), { recursive: true, force: true }));

  it("builds one bundled module that needs no node_modules; the operator starts from it and notifies", async () => {
    const build = spawnSync("bash", [join(root, "scripts", "build-release.sh"), out], {
      encoding: "utf8",
      timeout: 240_000,
    });
    expect(build.status, build.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(["mxops.mjs", "package.json"]);
    const bundle = join(out, "mxops.mjs");
    const help = spawnSync(process.execPath, [bundle, "--help"], { encoding: "utf8" });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toContain("--smtp-host (MXOPS_SMTP_HOST");

    // Against the real API server, from a directory without node_modules: caches sync and it turns ready.
    await installCrds(adminKubeconfig());
    const ns = await newNamespace("release");
    const probes = await freePort();
    const smtp = await startSmtpSink({ mode: "plain" });
    const hooks = await startHttpReceiver();
    const proc = spawn(process.execPath, [bundle, `--namespaces=${ns}`], {
      cwd: out,
      env: {
        ...process.env,
        KUBECONFIG: adminKubeconfig(),
        MXOPS_METRICS_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
        MXOPS_HEALTH_PROBE_BIND_ADDRESS: `127.0.0.1:${probes}`,
        MXOPS_WEBHOOK_PORT: "0",
        MXOPS_LOG_LEVEL: "warn",
        MXOPS_SMTP_HOST: "127.0.0.1",
        MXOPS_SMTP_PORT: String(smtp.port),
        MXOPS_SMTP_TLS: "none",
        MXOPS_SMTP_FROM: "mxops@example.com",
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    proc.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    try {
      await eventually(
        async () => {
          if (proc.exitCode !== null) throw new Error(`exited with ${proc.exitCode}: ${stderr.slice(-2000)}`);
          return (
            (await fetch(`http://127.0.0.1:${probes}/readyz`).then(
              (r) => r.ok,
              () => false,
            )) || undefined
          );
        },
        { what: "the bundled operator's /readyz", timeoutMs: 30_000 },
      );

      // A test message through email and the webhook: status writes, SMTP and an HTTP POST from the bundle.
      const k = (args: string[], input?: string) => kubectl(adminKubeconfig(), args, input);
      await k(["apply", "-f", "-"], contactYaml(ns, hooks.url));
      await k(["annotate", "tc", "carol", "-n", ns, "mxops.dev/send-test=release"]);
      const result = await eventually(
        async () => {
          const tc = JSON.parse(await k(["get", "tc", "carol", "-n", ns, "-o", "json"])) as {
            status?: { lastTest?: { nonce: string; result: string } };
          };
          return tc.status?.lastTest?.nonce === "release" ? tc.status.lastTest.result : undefined;
        },
        { what: "the bundled operator's test message", timeoutMs: 30_000 },
      );
      expect(result).toBe("email: delivered; webhook: delivered");
      expect(smtp.mails.map((m) => m.to)).toEqual([["carol@example.com"]]);
      expect(hooks.received.map((r) => r.path)).toEqual(["/hooks/carol"]);
      expect(stderr).not.toMatch(/"level":(50|60)/);
    } finally {
      proc.kill("SIGTERM");
      await new Promise((r) => proc.once("exit", r));
      await smtp.close();
      await hooks.close();
    }
  });
});
