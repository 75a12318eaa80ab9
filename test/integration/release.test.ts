// What the container image ships, built by the script its Dockerfile runs: it starts, and carries no dev tools.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");

describe("the release build (scripts/build-release.sh, run by the Dockerfile)", () => {
  const out = join(mkdtempSync(join(tmpdir(), "mxops-release-")), "app");
  afterAll(() => rmSync(join(out, ".."), { recursive: true, force: true }));

  it("builds compiled JavaScript with production dependencies only, and the operator starts from it", () => {
    const build = spawnSync("bash", [join(root, "scripts", "build-release.sh"), out], {
      encoding: "utf8",
      timeout: 240_000,
    });
    expect(build.status, build.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(["dist", "node_modules", "package.json"]);
    for (const dev of ["vitest", "typescript", "@biomejs", "node", "smtp-server"])
      expect(existsSync(join(out, "node_modules", dev))).toBe(false);
    expect(existsSync(join(out, "node_modules", "@kubernetes", "client-node"))).toBe(true);
    const help = spawnSync(process.execPath, [join(out, "dist", "main.js"), "--help"], { encoding: "utf8" });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toContain("--smtp-host (MXOPS_SMTP_HOST");
  });
});
