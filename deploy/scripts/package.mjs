#!/usr/bin/env node
/**
 * Builds the release: every command bundled (esbuild) into one file per entry point, beside only
 * the native module it loads, with a launcher named like the command.
 *
 *   dist/pgs-<version>-linux-x64/                 the whole release (every command)
 *     bin/pgs-coordinator bin/pgs-agent bin/pgs-router bin/pgsctl   launchers (sh)
 *     lib/package.json                            version, and "type": "module" for the bundles
 *     lib/<component>/main.js (+ worker-main.js for the router), THIRD-PARTY.txt
 *     lib/node_modules/better-sqlite3 (+ bindings, file-uri-to-path)   the one native dependency
 *     share/pgs/systemd/*.service, share/pgs/env/*.env                 units and option files
 *   dist/pgs-<component>-<version>-linux-x64.tar.gz   what one kind of host needs, under pgs-<version>/
 *
 * Run after the apps are built (`nx run @pgs/deploy:build` depends on their builds). It reads the
 * apps' compiled dist/ (not their sources), so what ships is what the tests ran.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';

const DEPLOY = path.resolve(import.meta.dirname, '..');
const ROOT = path.resolve(DEPLOY, '..');
const VERSION = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
const PLATFORM = `${process.platform}-${process.arch}`;
const OUT_ROOT = path.join(ROOT, 'dist');
const RELEASE = `pgs-${VERSION}-${PLATFORM}`;
const OUT = path.join(OUT_ROOT, RELEASE);
/** The directory every tarball unpacks into: several components on one host share it. */
const TAR_DIR = `pgs-${VERSION}`;
/** The packages a native module needs at run time, copied as files (never bundled: they locate the .node file themselves). */
const NATIVE = {
  'better-sqlite3': ['package.json', 'LICENSE', 'lib', 'build/Release/better_sqlite3.node'],
  bindings: ['package.json', 'LICENSE.md', 'bindings.js'],
  'file-uri-to-path': ['package.json', 'LICENSE', 'index.js'],
};

/** What ships, per component: its command, its entry points (compiled dist files) and its native needs. */
const COMPONENTS = [
  { id: 'coordinator', command: 'pgs-coordinator', entries: { main: 'apps/coordinator/dist/main.js' }, native: true, unit: 'pgs-coordinator.service' },
  { id: 'agent', command: 'pgs-agent', entries: { main: 'apps/host-agent/dist/main.js' }, native: false, unit: 'pgs-agent.service' },
  // The router forks its workers from worker-main.js beside its own file (node:cluster).
  {
    id: 'router',
    command: 'pgs-router',
    entries: { main: 'apps/router/dist/main.js', 'worker-main': 'apps/router/dist/worker-main.js' },
    native: true,
    unit: 'pgs-router.service',
  },
  { id: 'pgsctl', command: 'pgsctl', entries: { main: 'tools/pgsctl/dist/main.js' }, native: false },
];

const BANNER = [
  "import { createRequire as __pgsCreateRequire } from 'node:module';",
  "import { fileURLToPath as __pgsFileURLToPath } from 'node:url';",
  'const require = __pgsCreateRequire(import.meta.url);',
  'const __filename = __pgsFileURLToPath(import.meta.url);',
  "const __dirname = __pgsFileURLToPath(new URL('.', import.meta.url));",
].join('\n');

function die(message) {
  process.stderr.write(`package: ${message}\n`);
  process.exit(1);
}

/**
 * The bundle's first lines: `--version`, and a Node.js check before anything loads. A native module
 * only loads in the Node.js ABI it was compiled for, so a wrong `node` says so instead of failing
 * deep inside better-sqlite3.
 */
function prelude(component, entryFile) {
  const abi = component.native ? process.versions.modules : '';
  const major = process.versions.node.split('.')[0];
  return `const NAME = ${JSON.stringify(component.command)};
const VERSION = ${JSON.stringify(VERSION)};
const ABI = ${JSON.stringify(abi)};
if (process.argv[2] === '--version') {
  process.stdout.write(\`\${NAME} \${VERSION} (node \${process.versions.node}, ${PLATFORM})\\n\`);
  process.exit(0);
}
if (Number(process.versions.node.split('.')[0]) < 20 || (ABI !== '' && process.versions.modules !== ABI)) {
  process.stderr.write(\`error: \${NAME} \${VERSION} needs Node.js ${major}.x (ABI \${ABI || 'any'}); \${process.execPath} is \${process.version}\\nhint: install Node.js ${major} or point PGS_NODE at its binary\\n\`);
  process.exit(1);
}
await import(${JSON.stringify(entryFile)});
`;
}

/** A launcher named like the command: finds its release through symlinks and runs the bundle. */
function launcher(component) {
  return `#!/bin/sh
# ${component.command} ${VERSION}: runs the bundled ${component.id} with Node.js (PGS_NODE, else the node on PATH).
# Symlinks to this file work (e.g. /usr/local/bin/${component.command} -> /opt/pgs/bin/${component.command}).
here=$(dirname "$(readlink -f "$0")")
exec "\${PGS_NODE:-node}" "$here/../lib/${component.id}/main.js" "$@"
`;
}

/** Bundled third-party packages with their licenses, from esbuild's metafile. */
function thirdParty(metafile) {
  const packages = new Map();
  for (const input of Object.keys(metafile.inputs)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (!m) continue;
    const dir = path.join(ROOT, input.slice(0, m.index), 'node_modules', m[1]);
    if (packages.has(dir)) continue;
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    packages.set(dir, `${pkg.name}@${pkg.version} ${typeof pkg.license === 'string' ? pkg.license : 'see package'}`);
  }
  return [...new Set(packages.values())].sort().join('\n') + '\n';
}

async function bundle(component) {
  const dir = path.join(OUT, 'lib', component.id);
  fs.mkdirSync(dir, { recursive: true });
  const bundled = new Set();
  for (const [name, rel] of Object.entries(component.entries)) {
    const entryFile = path.join(ROOT, rel);
    if (!fs.existsSync(entryFile)) die(`${rel} is missing: build the apps first (NX_DAEMON=false npx nx run-many -t build)`);
    const result = await esbuild.build({
      stdin: { contents: prelude(component, entryFile), resolveDir: ROOT, sourcefile: `${component.command}-${name}.js`, loader: 'js' },
      outfile: path.join(dir, `${name}.js`),
      absWorkingDir: ROOT,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      // The CommonJS packages in the bundle (grpc-js, pino, dockerode, ...) call require() for Node's
      // built-ins and some read __dirname at load time: give them both, as the bundle's own.
      banner: { js: BANNER },
      // better-sqlite3 is shipped as files beside the bundle; ssh2's optional native speed-ups
      // (docker over ssh, which the agent never uses) stay out and ssh2 falls back to plain JS.
      external: ['better-sqlite3', 'cpu-features', '*.node'],
      keepNames: true,
      legalComments: 'none',
      metafile: true,
      logLevel: 'warning',
    });
    for (const line of thirdParty(result.metafile).trim().split('\n')) if (line) bundled.add(line);
  }
  fs.writeFileSync(
    path.join(dir, 'THIRD-PARTY.txt'),
    `Packages bundled into ${component.command} ${VERSION} (name@version license):\n${[...bundled].sort().join('\n')}\n`,
  );
  const bin = path.join(OUT, 'bin', component.command);
  fs.mkdirSync(path.dirname(bin), { recursive: true });
  fs.writeFileSync(bin, launcher(component), { mode: 0o755 });
}

function copyNative() {
  for (const [name, files] of Object.entries(NATIVE)) {
    const from = path.join(ROOT, 'node_modules', name);
    const to = path.join(OUT, 'lib', 'node_modules', name);
    for (const f of files) {
      const src = path.join(from, f);
      if (!fs.existsSync(src)) die(`${src} is missing (npm install builds better-sqlite3's native module)`);
      fs.cpSync(src, path.join(to, f), { recursive: true, dereference: true });
    }
  }
}

function copyShared() {
  fs.writeFileSync(path.join(OUT, 'lib', 'package.json'), `${JSON.stringify({ name: 'pgs', version: VERSION, private: true, type: 'module' }, null, 2)}\n`);
  for (const sub of ['systemd', 'env']) {
    const from = path.join(DEPLOY, sub);
    if (fs.existsSync(from)) fs.cpSync(from, path.join(OUT, 'share', 'pgs', sub), { recursive: true });
  }
  const guide = path.join(DEPLOY, 'README.md');
  if (fs.existsSync(guide)) fs.copyFileSync(guide, path.join(OUT, 'share', 'pgs', 'README.md'));
  fs.writeFileSync(path.join(OUT, 'VERSION'), `${VERSION}\n`);
}

/** The files one component needs, relative to the release root. */
function filesOf(component) {
  const files = ['VERSION', `bin/${component.command}`, 'lib/package.json', `lib/${component.id}`];
  if (fs.existsSync(path.join(OUT, 'share', 'pgs', 'README.md'))) files.push('share/pgs/README.md');
  if (component.native) files.push('lib/node_modules');
  if (component.unit) {
    files.push(`share/pgs/systemd/${component.unit}`);
    const env = `share/pgs/env/${component.id}.env`;
    if (fs.existsSync(path.join(OUT, env))) files.push(env);
  }
  return files;
}

/** One tarball per component, unpacking to pgs-<version>/ (reproducible: fixed owner, order and time). */
function tarball(component) {
  const file = path.join(OUT_ROOT, `pgs-${component.id}-${VERSION}-${PLATFORM}.tar.gz`);
  const stage = fs.mkdtempSync(path.join(OUT_ROOT, '.stage-'));
  try {
    fs.symlinkSync(OUT, path.join(stage, TAR_DIR));
    const members = filesOf(component).map((f) => path.join(TAR_DIR, f));
    // -h: the staged top directory is a symlink to the release; the archive holds real files.
    execFileSync('tar', ['-C', stage, '-h', '--owner=0', '--group=0', '--numeric-owner', '--sort=name', '--mtime=@0', '-czf', file, ...members]);
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
  return file;
}

fs.rmSync(OUT, { recursive: true, force: true });
for (const old of fs.existsSync(OUT_ROOT) ? fs.readdirSync(OUT_ROOT) : []) {
  if (/^pgs-.*\.tar\.gz$/.test(old)) fs.rmSync(path.join(OUT_ROOT, old));
}
fs.mkdirSync(OUT, { recursive: true });
for (const component of COMPONENTS) await bundle(component);
copyNative();
copyShared();
const tarballs = COMPONENTS.map(tarball);
process.stdout.write(`package: ${path.relative(ROOT, OUT)}/ and\n${tarballs.map((t) => `  ${path.relative(ROOT, t)}`).join('\n')}\n`);
