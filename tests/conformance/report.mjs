// The result tables of docs/CONFORMANCE.md, from the <run>.json files check.mjs wrote:
//
//   node report.mjs <results folder>    (prints Markdown)
//
// A cell is the number of passed checks when every check passed, and says what else happened
// otherwise ("1 passed, 6 skipped"): a skipped check is never shown as a pass.
import fs from 'node:fs';
import path from 'node:path';

const out = process.argv[2];
const runs = ['2025-11-25', '2026-07-28', 'all', 'authorization']
  .map((r) => path.join(out, `${r}.json`))
  .filter((f) => fs.existsSync(f))
  .map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));

const cell = (c) => {
  if (c === undefined) return '';
  if (c === null) return 'did not run';
  const parts = [`${c.passed} passed`];
  if (c.failed) parts.push(`${c.failed} failed`);
  if (c.warnings) parts.push(`${c.warnings} warnings`);
  if (c.skipped) parts.push(`${c.skipped} skipped`);
  return parts.length === 1 ? String(c.passed) : parts.join(', ');
};

console.log('| Run | Scenarios | Passed | Failed | Warnings | Skipped | Suite exit |');
console.log('|---|---|---|---|---|---|---|');
for (const r of runs) {
  const t = r.totals;
  const ran = Object.values(r.scenarios).filter((c) => c !== null).length;
  console.log(
    `| \`${r.run}\` | ${ran}/${Object.keys(r.scenarios).length} | ${t.passed} | ${t.failed} | ${t.warnings} | ${t.skipped} | ${r.exitCode} |`,
  );
}
console.log('');
console.log(`| Scenario | ${runs.map((r) => r.run).join(' | ')} |`);
console.log(`|---|${runs.map(() => '---').join('|')}|`);
const names = [...new Set(runs.flatMap((r) => Object.keys(r.scenarios)))];
for (const n of names) {
  console.log(`| \`${n}\` | ${runs.map((r) => cell(r.scenarios[n])).join(' | ')} |`);
}
