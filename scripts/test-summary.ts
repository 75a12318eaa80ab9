// Prints one closing line for CI, "N passed, N failed, N skipped", from the vitest JSON reports in .tmp/.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
let passed = 0;
let failed = 0;
let skipped = 0;
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
  };
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + r.numTodoTests;
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
