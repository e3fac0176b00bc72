// Reads Jest --json result files and prints the plain summary line "N passed, N failed".
// A missing or unreadable results file counts as a failure, so a crashed run never reads as green.
import { readFileSync } from 'node:fs';

let passed = 0;
let failed = 0;
let broken = false;
for (const file of process.argv.slice(2)) {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8'));
    passed += r.numPassedTests;
    failed += r.numFailedTests;
    // Suites that fail to load have no test results of their own.
    failed += r.testResults.filter((s) => s.status === 'failed' && s.assertionResults.length === 0).length;
  } catch (e) {
    console.error(`cannot read Jest results ${file}: ${e.message}`);
    broken = true;
  }
}
if (process.argv.length <= 2) broken = true;
console.log(`${passed} passed, ${failed + (broken ? 1 : 0)} failed`);
process.exit(failed === 0 && !broken ? 0 : 1);
