// The verdict on one run of the conformance suite (called by run.sh):
//
//   node check.mjs <run> <results dir> <folder prefix> <suite exit code> [--allow-skip <regex>]
//
// Fails (exit 1) when the suite exited non-zero, when a scenario of expected/<run>.txt has no
// result (missing folder or no checks.json: it did not run or crashed), when a scenario ran that
// the list does not name (the list is stale), and on any FAILURE, WARNING or SKIPPED check
// (SKIPPED only passes for scenarios matching --allow-skip, which the suite skips by design).
// Counts passed, failed, warnings and skipped separately, never a skip as a pass, and writes
// them per scenario to <results dir>.json for report.mjs (the tables of docs/CONFORMANCE.md).
import fs from 'node:fs';
import path from 'node:path';

const [run, dir, prefix, exitCode, ...rest] = process.argv.slice(2);
const allowIdx = rest.indexOf('--allow-skip');
const allowSkip = allowIdx >= 0 ? new RegExp(rest[allowIdx + 1]) : null;
const here = path.dirname(new URL(import.meta.url).pathname);
const expected = fs
  .readFileSync(path.join(here, 'expected', `${run}.txt`), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

// Result folders are <prefix>-<scenario>-<ISO time with dashes>.
const stamp = /-\d{4}-\d{2}-\d{2}T[\d-]+Z$/;
const folders = new Map();
for (const d of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
  if (!d.startsWith(`${prefix}-`) || !stamp.test(d)) continue;
  folders.set(d.slice(prefix.length + 1).replace(stamp, ''), path.join(dir, d));
}

const problems = [];
if (exitCode !== '0') problems.push(`the suite exited with ${exitCode}`);
const scenarios = {};
const totals = { passed: 0, failed: 0, warnings: 0, skipped: 0 };
for (const s of expected) {
  const f = folders.has(s) && path.join(folders.get(s), 'checks.json');
  if (!f || !fs.existsSync(f)) {
    problems.push(`${s}: expected, but no checks.json (did not run, or crashed)`);
    scenarios[s] = null;
    continue;
  }
  const count = { passed: 0, failed: 0, warnings: 0, skipped: 0 };
  for (const c of JSON.parse(fs.readFileSync(f, 'utf8'))) {
    const why = `${s} ${c.id} ${c.status}: ${c.errorMessage || c.description}`;
    switch (c.status) {
      case 'SUCCESS':
        count.passed++;
        break;
      case 'FAILURE':
        count.failed++;
        problems.push(why);
        break;
      case 'WARNING':
        count.warnings++;
        problems.push(why);
        break;
      case 'SKIPPED':
        count.skipped++;
        if (!allowSkip?.test(s)) problems.push(why);
        break;
      default: // INFO: a note, not a check
        break;
    }
  }
  if (count.passed + count.failed + count.warnings + count.skipped === 0) {
    problems.push(`${s}: no checks at all`);
  }
  for (const k of Object.keys(totals)) totals[k] += count[k];
  scenarios[s] = count;
}
for (const s of folders.keys()) {
  if (!expected.includes(s)) problems.push(`${s}: ran, but is not in expected/${run}.txt`);
}
fs.writeFileSync(`${dir}.json`, JSON.stringify({ run, exitCode: Number(exitCode), totals, scenarios }, null, 1));
for (const p of problems) console.error(`  ${p}`);
console.log(
  `  ${Object.keys(scenarios).length - Object.values(scenarios).filter((c) => c === null).length}/${expected.length} expected scenarios ran; ` +
    `checks: ${totals.passed} passed, ${totals.failed} failed, ${totals.warnings} warnings, ${totals.skipped} skipped; ` +
    `suite exit ${exitCode}`,
);
process.exit(problems.length ? 1 : 0);
