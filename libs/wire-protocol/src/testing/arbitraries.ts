// fast-check arbitraries for the property tests and the long fuzz run.
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { encodeStartupMessage, SEVERITIES, type ErrorFields, type ProtocolVersion } from '../index.js';
import { splitAt } from './builders.js';

/** Text that can travel in a PostgreSQL String: any Unicode except NUL (and lone surrogates). */
export const wireText = (maxLength = 40): fc.Arbitrary<string> => fc.string({ unit: 'grapheme', maxLength }).filter((s) => !s.includes('\0'));

/** A non-empty parameter name. */
export const parameterName = fc.oneof(
  fc.constantFrom('user', 'database', 'options', 'application_name', 'replication', 'client_encoding', '_pq_.compression', '_pq_.test'),
  wireText(20).filter((s) => s.length > 0),
);

/** Protocol 3.x versions clients send. */
export const protocolVersion: fc.Arbitrary<ProtocolVersion> = fc.oneof(
  fc.constant({ major: 3, minor: 0 }),
  fc.constant({ major: 3, minor: 2 }),
  fc.integer({ min: 0, max: 0xffff }).map((minor) => ({ major: 3, minor })),
);

/** StartupMessage contents that decode: a non-empty user and distinct names, within 10000 bytes. */
export const startupMessage = fc
  .record({
    protocol: protocolVersion,
    user: wireText(30).filter((s) => s.length > 0),
    rest: fc.uniqueArray(fc.tuple(parameterName, wireText(60)), { selector: ([k]) => k, maxLength: 8 }),
  })
  .map(({ protocol, user, rest }) => {
    const parameters = new Map<string, string>([['user', user]]);
    for (const [k, v] of rest) if (k !== 'user') parameters.set(k, v);
    return { protocol, parameters };
  })
  .filter((m) => encodeStartupMessage(m).length <= 10000);

/** ErrorResponse/NoticeResponse fields. */
export const errorFields: fc.Arbitrary<ErrorFields> = fc.record(
  {
    severity: fc.constantFrom(...SEVERITIES),
    code: fc.stringMatching(/^[0-9A-Z]{5}$/),
    message: wireText(80),
    detail: wireText(),
    hint: wireText(),
    position: fc.nat().map(String),
    internalPosition: fc.nat().map(String),
    internalQuery: wireText(),
    where: wireText(),
    schema: wireText(),
    table: wireText(),
    column: wireText(),
    dataType: wireText(),
    constraint: wireText(),
    file: wireText(),
    line: fc.nat().map(String),
    routine: wireText(),
    localizedSeverity: fc.constantFrom('FEHLER', 'ERREUR', 'ОШИБКА', 'VÁŽNÉ'),
  },
  { requiredKeys: ['severity', 'code', 'message'] },
);

/** A secret key: 4 bytes (protocol 3.0) or up to 256 (3.2). */
export const secretKey = fc.uint8Array({ minLength: 4, maxLength: 256 }).map((a) => Buffer.from(a));

/** `bytes` cut into chunks at random offsets. */
export function chunked(bytes: Buffer): fc.Arbitrary<Buffer[]> {
  return fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, bytes.length - 1) }), { maxLength: Math.min(12, bytes.length) }).map((cuts) =>
    splitAt(
      bytes,
      cuts.filter((c) => c < bytes.length).sort((a, b) => a - b),
    ),
  );
}

/** Bytes shaped like what reaches a listening port: raw noise, or a valid packet with damage. */
export function mutatedBytes(seeds: readonly Buffer[]): fc.Arbitrary<Buffer> {
  const raw = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a));
  const damaged = fc
    .record({
      seed: fc.constantFrom(...seeds),
      edits: fc.array(
        fc.oneof(
          fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
          fc.record({ op: fc.constant('cut' as const), at: fc.nat() }),
          fc.record({ op: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
        ),
        { maxLength: 4 },
      ),
    })
    .map(({ seed, edits }) => {
      const bytes = [...seed];
      for (const e of edits) {
        const at = bytes.length === 0 ? 0 : e.at % (bytes.length + 1);
        if (e.op === 'set' && at < bytes.length) bytes[at] = e.value;
        else if (e.op === 'cut') bytes.length = at;
        else if (e.op === 'insert') bytes.splice(at, 0, e.value);
      }
      return Buffer.from(bytes);
    });
  return fc.oneof(raw, damaged);
}
