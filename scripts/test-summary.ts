// Prints one closing line for CI, "N passed, N failed, N skipped", from the vitest JSON reports in .tmp/, and fails
// unless every test of every project ran and passed: a failed test, a test file or hook that failed (vitest then
// reports its tests as skipped, not failed), a skipped test (unless run against an existing cluster), or a project
// that reports no success.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
let passed = 0;
let failed = 0;
let skipped = 0;
const broken: string[] = [];
for (const project of ["unit", "integration", "faults"]) {
  const file = join(root, ".tmp", `vitest-${project}.json`);
  if (!existsSync(file)) {
    console.error(`no test report at ${file}`);
    process.exit(1);
  }
  const r = JSON.parse(readFileSync(file, "utf8")) as {
    numPassedTests: number;
    numFailedTests: number;
    numPendingTests: number;
    numTodoTests: number;
    numFailedTestSuites: number;
    success: boolean;
  };
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + r.numTodoTests;
  // Against an existing cluster (MXOPS_TEST_KUBECONFIG, see README) the integration tests that need a control
  // plane of their own are skipped by design; a skip anywhere else fails the run.
  if (
    r.numPendingTests + r.numTodoTests > 0 &&
    !(process.env.MXOPS_TEST_KUBECONFIG && project === "integration")
  )
    broken.push(`${project}: ${r.numPendingTests + r.numTodoTests} test(s) skipped`);
  if (r.numFailedTestSuites > 0)
    broken.push(`${project}: ${r.numFailedTestSuites} test file(s) or hook(s) failed`);
  else if (!r.success) broken.push(`${project}: vitest reported no success`);
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
for (const b of broken) console.error(b);
process.exit(failed > 0 || broken.length > 0 || passed === 0 ? 1 : 0);
