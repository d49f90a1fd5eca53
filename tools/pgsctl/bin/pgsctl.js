#!/usr/bin/env node
// The `pgsctl` command (./pgsctl at the repository root, or npx pgsctl). A committed file rather than
// dist/main.js itself, so npm links the bin at install time even before the first build, and a
// missing build says what to do. It runs the bundle (dist/bundle, made by the build) when there is
// one: a few files to load instead of hundreds is most of a fast start on Node 20, which has no
// module compile cache. dist/main.js (plain tsc output) is the fallback.
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/bundle/main.js', import.meta.url);
const main = existsSync(bundle) ? bundle : new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('error: pgsctl is not built yet\nhint: run `npm run build` (or `npm start`) in the pgs repository\n');
  process.exit(1);
}
await import(main.href);
