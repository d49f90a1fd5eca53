// A long randomized run of the decoder invariants (a stand-in for coverage-guided fuzzing, done
// with fast-check: jazzer.js needs native binaries that cannot be fetched here).
//
//   npm run fuzz -w @pgs/wire-protocol -- --minutes 10 [--seed 42]
//
// Inputs: raw random bytes, and real client packets (src/testing/fixtures) and encoded backend
// messages damaged by byte edits, cuts and insertions, each cut into random chunks. Checked per
// input (src/testing/invariants.ts): the startup decoder gives a packet, need-more or a 08P01
// StartupError and nothing else, the same for any chunking, and an accepted packet re-encodes to
// exactly its bytes (unless it repeats a name: the last value wins); the framer gives frames or a ProtocolError, the same for any chunking, and
// frames plus remainder rebuild the input; every frame decodes or fails with a ProtocolError.
// Exits 1 with the counterexample on the first finding.
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { encodeErrorResponse, encodeNegotiateProtocolVersion, encodeStartupMessage, encodeCancelRequest } from '../index.js';
import { chunked, mutatedBytes } from './arbitraries.js';
import { backendStartupReply, dataRow } from './builders.js';
import { clientFixtures, fixturePackets } from './fixtures.js';
import { checkFramerInvariants, checkStartupInvariants } from './invariants.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const minutes = arg('minutes', 1);
const seed = arg('seed', Date.now() % 2 ** 31);

const startupSeeds = [
  ...clientFixtures().flatMap((f) => fixturePackets(f.name)),
  encodeStartupMessage({
    protocol: { major: 3, minor: 2 },
    parameters: { user: 'alice.acme', database: 'acme', options: '-c pgs.tenant=acme', '_pq_.x': 'y' },
  }),
  encodeCancelRequest(7, Buffer.alloc(32, 1)),
  Buffer.from('160301010001', 'hex'),
];
const backendSeeds = [
  backendStartupReply(),
  Buffer.concat([
    encodeNegotiateProtocolVersion(0, ['_pq_.x']),
    encodeErrorResponse({ severity: 'FATAL', code: '28P01', message: 'password authentication failed', detail: 'd', hint: 'h' }),
  ]),
  Buffer.concat([dataRow([Buffer.from('abc'), null]), dataRow([])]),
];

function campaign(name: string, prop: fc.IProperty<[[Buffer, Buffer[]]]>, ms: number): number {
  const started = performance.now();
  const details = fc.check(prop, { seed, numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: ms, markInterruptAsFailure: false });
  const secs = ((performance.now() - started) / 1000).toFixed(0);
  if (details.failed) {
    console.error(`${name}: FINDING after ${details.numRuns} inputs (seed ${seed}, path ${details.counterexamplePath ?? '?'})`);
    console.error(details.errorInstance);
    process.exit(1);
  }
  console.log(`${name}: ${details.numRuns.toLocaleString('en-US')} inputs in ${secs} s, no finding (seed ${seed})`);
  return details.numRuns;
}

const withChunks = (a: fc.Arbitrary<Buffer>) => a.chain((b) => fc.tuple(fc.constant(b), chunked(b)));
const half = (minutes * 60_000) / 2;

console.log(`fuzzing for ${minutes} min, seed ${seed}`);
campaign(
  'startup decoder',
  fc.property(withChunks(mutatedBytes(startupSeeds)), ([b, c]) => checkStartupInvariants(b, c)),
  half,
);
campaign(
  'framer + backend messages',
  fc.property(withChunks(mutatedBytes(backendSeeds)), ([b, c]) => checkFramerInvariants(b, c, 512)),
  half,
);
