// Sums the vitest JSON reports every project wrote to .reports/ into the one line CI reads.
// A project with a test target but no report (it crashed before reporting) counts as a failure.
import fs from 'node:fs';
import path from 'node:path';

const dir = '.reports';
let passed = 0;
let failed = 0;
let skipped = 0;
const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
for (const f of files) {
  const r = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
  passed += r.numPassedTests ?? 0;
  failed += (r.numFailedTests ?? 0) + (r.numRuntimeErrorTestSuites ?? 0) + (r.success === false && !r.numFailedTests ? 1 : 0);
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  console.log(
    `${f
      .replace(/\.json$/, '')
      .replaceAll('__', '/')
      .padEnd(
        28,
      )} ${String(r.numPassedTests ?? 0).padStart(5)} passed ${String(r.numFailedTests ?? 0).padStart(4)} failed ${String(r.numPendingTests ?? 0).padStart(4)} skipped`,
  );
}
const projects = ['proto', 'libs', 'apps', 'tools']
  .flatMap((d) => (d === 'proto' ? ['proto'] : fs.existsSync(d) ? fs.readdirSync(d).map((p) => `${d}/${p}`) : []))
  .concat(['test'])
  .filter(
    (p) =>
      fs.existsSync(path.join(p, 'package.json')) &&
      fs.readdirSync(p, { recursive: true }).some((f) => String(f).endsWith('.test.ts') && !String(f).includes('node_modules')),
  );
for (const p of projects) {
  if (!files.includes(`${p.replaceAll('/', '__')}.json`)) {
    console.log(`${p.padEnd(28)} no report: the test run did not finish`);
    failed += 1;
  }
}
if (skipped) console.log(`(${skipped} skipped)`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
