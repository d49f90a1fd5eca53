// The invariants every input must satisfy, shared by the property tests and the long fuzz run.
import { Buffer } from 'node:buffer';
import {
  decodeBackendMessage,
  encodeCancelRequest,
  encodeFrame,
  encodeStartupMessage,
  MessageFramer,
  ProtocolError,
  StartupDecoder,
  StartupError,
  type Frame,
  type StartupDecodeResult,
  type StartupPacket,
} from '../index.js';

/** A violated invariant: a finding. */
export class InvariantError extends Error {
  constructor(
    message: string,
    readonly input: Buffer,
  ) {
    super(`${message}\n  input: ${input.toString('hex')}`);
    this.name = 'InvariantError';
  }
}

/** The SQLSTATEs PostgreSQL ends a startup with. */
const STARTUP_CODES: ReadonlySet<string> = new Set(['08P01', '0A000', '28000']);

type Outcome = { kind: 'result'; result: StartupDecodeResult } | { kind: 'error'; message: string };

function decodeStartup(chunks: readonly Buffer[]): Outcome {
  const d = new StartupDecoder();
  let result: StartupDecodeResult = { kind: 'need-more' };
  try {
    for (const c of chunks) {
      result = d.push(c);
      if (result.kind === 'packet') break;
    }
    return { kind: 'result', result };
  } catch (err) {
    if (err instanceof StartupError) {
      if (!STARTUP_CODES.has(err.code) || err.severity !== 'FATAL')
        throw new InvariantError('StartupError without a startup SQLSTATE/FATAL', Buffer.concat(chunks));
      return { kind: 'error', message: err.message };
    }
    throw err; // any other exception is a finding: let it surface with its stack
  }
}

function reencode(p: StartupPacket): Buffer | undefined {
  switch (p.kind) {
    case 'ssl-request':
    case 'gss-enc-request':
      // Taken whatever their length, as the server does: only the 8-byte form re-encodes.
      return undefined;
    case 'cancel-request':
      return encodeCancelRequest(p.processId, p.secretKey);
    case 'startup-message':
      return encodeStartupMessage({ protocol: p.protocol, parameters: p.parameters });
    case 'direct-tls':
      return undefined;
  }
}

const same = (a: unknown, b: unknown) => JSON.stringify(a, replacer) === JSON.stringify(b, replacer);
function replacer(_k: string, v: unknown): unknown {
  if (v instanceof Map) return [...v];
  if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') return v;
  return v;
}

/**
 * Startup decoder: the outcome is a packet, need-more or a StartupError (08P01, 0A000 or 28000); it is the same for
 * `chunks` as for the whole input; an accepted packet re-encodes to exactly the bytes consumed.
 */
export function checkStartupInvariants(bytes: Buffer, chunks: readonly Buffer[]): void {
  const whole = decodeStartup([bytes]);
  const split = decodeStartup(chunks);
  if (!same(whole, split))
    throw new InvariantError(`chunking changed the outcome: ${JSON.stringify(whole, replacer)} vs ${JSON.stringify(split, replacer)}`, bytes);
  if (whole.kind === 'result' && whole.result.kind === 'packet') {
    const { packet, consumed } = whole.result;
    const again = reencode(packet);
    // A repeated name keeps only its last value (as the server does), so that packet re-encodes shorter.
    const repeated = packet.kind === 'startup-message' && again !== undefined && again.length < consumed;
    if (again && !repeated && !again.equals(bytes.subarray(0, consumed))) throw new InvariantError('accepted packet does not re-encode to its bytes', bytes);
    if (packet.kind === 'direct-tls' && (consumed !== 0 || bytes[0] !== 0x16)) throw new InvariantError('bad direct-tls', bytes);
  }
}

/**
 * Framer: frames or a 08P01 ProtocolError, the same for any chunking; frames re-encoded plus the
 * remainder give back the input; each frame decodes to a backend message or a ProtocolError.
 */
export function checkFramerInvariants(bytes: Buffer, chunks: readonly Buffer[], maxMessageSize: number): void {
  const run = (cs: readonly Buffer[]): { frames: Frame[]; rest: Buffer } | 'error' => {
    const f = new MessageFramer({ maxMessageSize });
    const frames: Frame[] = [];
    try {
      for (const c of cs) frames.push(...f.push(c));
    } catch (err) {
      if (err instanceof ProtocolError) return 'error';
      throw err;
    }
    return { frames, rest: f.takeRemainder() };
  };
  const whole = run([bytes]);
  const split = run(chunks);
  if ((whole === 'error') !== (split === 'error')) throw new InvariantError('chunking changed whether the framer fails', bytes);
  if (whole === 'error' || split === 'error') return;
  const rebuilt = Buffer.concat([...whole.frames.map((fr) => encodeFrame(fr.type, fr.body)), whole.rest]);
  if (!rebuilt.equals(bytes)) throw new InvariantError('frames plus remainder do not rebuild the input', bytes);
  const rebuiltSplit = Buffer.concat([...split.frames.map((fr) => encodeFrame(fr.type, fr.body)), split.rest]);
  if (!rebuiltSplit.equals(bytes)) throw new InvariantError('chunked frames plus remainder do not rebuild the input', bytes);
  for (const fr of whole.frames) {
    try {
      decodeBackendMessage(fr);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
    }
  }
}
