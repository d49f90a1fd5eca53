// Bundles pgsctl (after `tsc -b` built dist/) into dist/bundle/: one ES module per command group
// plus shared chunks, so a start loads a few files instead of hundreds and only what the command
// needs. Node 20 has no module compile cache (module.enableCompileCache is Node 22.1+), so fewer,
// tree-shaken files is what makes start-up fast. bin/pgsctl.js prefers the bundle when it exists.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const workspace = path.resolve(root, '..', '..');

// The workspace's own libraries (libs/*, proto) have no import-time side effects that pgsctl relies
// on, but their package.json files do not say so; saying it here lets esbuild drop the modules of
// theirs pgsctl never uses (the security library's X.509 and key-file code, service-kit's logging
// and metrics), which is most of what a start would otherwise parse.
const sideEffectFreeWorkspace = {
  name: 'side-effect-free-workspace',
  setup(b) {
    b.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData === 'resolving' || args.kind === 'entry-point') return undefined;
      const resolved = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: 'resolving' });
      if (resolved.errors.length > 0 || resolved.external) return undefined;
      const inWorkspaceLib =
        resolved.path.startsWith(workspace) && !resolved.path.includes(`${path.sep}node_modules${path.sep}`) && !resolved.path.startsWith(root);
      return inWorkspaceLib ? { ...resolved, sideEffects: false } : { ...resolved };
    });
  },
};
// Chunk names carry content hashes: clear the old ones so stale chunks do not pile up.
fs.rmSync(path.join(root, 'dist', 'bundle'), { recursive: true, force: true });
const result = await build({
  entryPoints: [path.join(root, 'dist', 'main.js')],
  outdir: path.join(root, 'dist', 'bundle'),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
  plugins: [sideEffectFreeWorkspace],
  // grpc-js requires proto-loader (and with it protobufjs) only to serve channelz or ORCA, which
  // a client never does; left out of the bundle, it is a third less code to parse at every start.
  external: ['@grpc/proto-loader'],
  // Some dependencies (grpc-js, protobufjs) are CommonJS and call require() for Node built-ins.
  banner: { js: "import { createRequire as __pgsctlRequire } from 'node:module'; const require = __pgsctlRequire(import.meta.url);" },
});
if (process.env.PGSCTL_BUNDLE_META) (await import('node:fs')).writeFileSync(process.env.PGSCTL_BUNDLE_META, JSON.stringify(result.metafile));

// Libraries pgsctl must never parse at start-up: the X.509 stack (@peculiar/x509, asn1js and the
// Reflect polyfill, some 0.8 MB) once came in through the security library's certificate parsing,
// a third of what `pgsctl tenant list` loaded. Its TLS check reads the coordinator's identity from
// Node's own certificate parse instead; a build that pulls them back in fails here, not silently.
const FORBIDDEN = ['@peculiar/', 'asn1js', 'reflect-metadata', 'pkijs'];
const bundled = new Set(
  Object.values(result.metafile.outputs).flatMap((o) =>
    Object.entries(o.inputs)
      .filter(([, i]) => i.bytesInOutput > 0)
      .map(([input]) => input),
  ),
);
const leaked = [...bundled].filter((input) => FORBIDDEN.some((name) => input.includes(`node_modules/${name}`)));
if (leaked.length > 0) {
  process.stderr.write(
    `pgsctl bundle: these modules must stay out of pgsctl (each start would parse them):\n  ${leaked.slice(0, 10).join('\n  ')}\nhint: import the one function pgsctl needs from its own module of the library, not one that loads the X.509 library\n`,
  );
  process.exit(1);
}
