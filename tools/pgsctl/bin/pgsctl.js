#!/usr/bin/env node
// The `pgsctl` command (npx pgsctl). A committed file rather than dist/main.js itself, so npm links
// the bin at install time even before the first build, and a missing build says what to do.
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('error: pgsctl is not built yet\nhint: run `npm run build` (or `npm start`) in the pgs repository\n');
  process.exit(1);
}
await import(main.href);
