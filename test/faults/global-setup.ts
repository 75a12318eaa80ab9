// Before the fault suite: old counts of this profile cleared, a snapshot of src/ that every operator process of
// the run starts from (one revision for the whole run, however src/ changes meanwhile), and one control plane
// for the files that leave it running (the outage file starts its own). After it: every case's counts merged
// into .tmp/faults/<profile>/summary.json.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { installCrds, startControlPlane, type UserAuth } from "../controlplane/controlplane.ts";
import { FUZZ_CASES, PROFILE, REPORT_DIR, ROUNDS, root, SEED } from "./support.ts";

/** Which operator the counts are about: the commit, src/ files that differ from it, and a hash of the snapshot. */
function revision(snapshot: string): { commit: string; srcUncommitted: string[]; srcSha256: string } {
  const git = (...args: string[]) => execFileSync("git", args, { cwd: root, encoding: "utf8" }).trim();
  const hash = createHash("sha256");
  for (const f of (readdirSync(snapshot, { recursive: true }) as string[]).sort()) {
    if (f.endsWith(".ts")) hash.update(f).update(readFileSync(join(snapshot, f)));
  }
  try {
    return {
      commit: git("rev-parse", "--short", "HEAD"),
      srcUncommitted: git("status", "--porcelain", "--", "src").split("\n").filter(Boolean),
      srcSha256: hash.digest("hex").slice(0, 16),
    };
  } catch {
    return { commit: "unknown", srcUncommitted: [], srcSha256: hash.digest("hex").slice(0, 16) };
  }
}

declare module "vitest" {
  export interface ProvidedContext {
    faultsKubeconfig: string;
    faultsUserAuth: UserAuth;
    faultsScratchDir: string;
    faultsOperatorMain: string;
  }
}

export default async function setup(project: TestProject) {
  rmSync(REPORT_DIR, { recursive: true, force: true });
  mkdirSync(REPORT_DIR, { recursive: true });
  // Inside the repository, so the copy resolves node_modules and package.json's "type" like src/ does.
  const snapshot = join(REPORT_DIR, "operator", "src");
  cpSync(join(root, "src"), snapshot, { recursive: true, filter: (f) => !f.endsWith(".test.ts") });
  const operator = revision(snapshot);
  project.provide("faultsOperatorMain", join(snapshot, "main.ts"));
  const cp = await startControlPlane();
  await installCrds(cp.kubeconfig);
  project.provide("faultsKubeconfig", cp.kubeconfig);
  project.provide("faultsUserAuth", cp.userAuth);
  project.provide("faultsScratchDir", cp.dir);
  const started = new Date();
  return async () => {
    await cp.stop();
    if (!existsSync(REPORT_DIR)) return;
    const cases: Record<string, unknown> = {};
    for (const f of readdirSync(REPORT_DIR).sort()) {
      if (!/^[a-g]-.*\.json$/.test(f)) continue; // the cases' counts (not summary.json or fuzz-cases.json)
      cases[f.replace(/\.json$/, "")] = JSON.parse(readFileSync(join(REPORT_DIR, f), "utf8"));
    }
    const summary = {
      profile: PROFILE,
      rounds: ROUNDS,
      fuzzCases: FUZZ_CASES,
      seed: SEED,
      startedAt: started.toISOString(),
      finishedAt: new Date().toISOString(),
      seconds: Math.round((Date.now() - started.getTime()) / 1000),
      operator,
      machine: { cpus: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30) },
      cases,
    };
    writeFileSync(join(REPORT_DIR, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
    process.stderr.write(`[faults] counts of this run: ${join(REPORT_DIR, "summary.json")}\n`);
  };
}
