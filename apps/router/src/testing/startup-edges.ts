// The startup edge cases of README.md "Before authentication": the bytes a client sends, and a raw
// client that reports what came back (bytes with PostgreSQL's source-location fields dropped, or
// nothing) once the server closed.
import net from 'node:net';

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

/** A StartupMessage of `version` (major << 16 | minor) with `params`, length computed. */
export function startup(params: Array<[string, string]>, version = 0x30000): Buffer {
  const body = Buffer.concat([...params.map(([k, v]) => Buffer.from(`${k}\0${v}\0`)), Buffer.from([0])]);
  return Buffer.concat([u32(body.length + 8), u32(version), body]);
}

/** A request packet (SSLRequest, GSSENCRequest, CancelRequest...) of `length` with zero padding. */
export function request(code: number, length = 8): Buffer {
  return Buffer.concat([u32(length), u32(code), Buffer.alloc(length - 8)]);
}

export const SSL = 80877103;
export const GSS = 80877104;
export const CANCEL = 80877102;

/** One step: bytes to write, and whether to wait for a reply (an 'N') before the next step. */
export interface Step {
  send: Buffer;
  awaitReply?: boolean;
}

/** A case: its steps, and whether the client ends its side after them (else it waits, silent). */
export interface EdgeCase {
  name: string;
  steps: Step[];
  end: boolean;
}

/** What a client got: the reply, normalized, or '' for a close without a word. */
export interface EdgeOutcome {
  reply: string;
}

/**
 * Drops the F (file), L (line) and R (routine) fields of each protocol 3 ErrorResponse: they name
 * PostgreSQL's source lines, which no client acts on and which change between builds.
 */
export function normalize(bytes: Buffer): string {
  const out: Buffer[] = [];
  let off = 0;
  // The one-byte answers to SSLRequest and GSSENCRequest come first, unframed.
  while (off < 2 && off < bytes.length && 'NSG'.includes(String.fromCharCode(bytes[off]!))) out.push(bytes.subarray(off, ++off));
  while (off < bytes.length) {
    const type = bytes[off]!;
    const len = off + 5 <= bytes.length ? bytes.readUInt32BE(off + 1) : -1;
    if (len < 4 || off + 1 + len > bytes.length) {
      out.push(bytes.subarray(off)); // not a whole protocol 3 message (a protocol 2 error): as is
      break;
    }
    const body = bytes.subarray(off + 5, off + 1 + len);
    if (type === 0x45) {
      const kept = body
        .toString('latin1')
        .split('\0')
        .filter((f) => f !== '' && !'FLR'.includes(f[0]!));
      const nb = Buffer.from(`${kept.join('\0')}\0\0`, 'latin1');
      const head = Buffer.alloc(5);
      head[0] = 0x45;
      head.writeUInt32BE(nb.length + 4, 1);
      out.push(head, nb);
    } else out.push(bytes.subarray(off, off + 1 + len));
    off += 1 + len;
  }
  return JSON.stringify(Buffer.concat(out).toString('latin1'));
}

/** Runs `c` against host:port; resolves once the server closed (rejects past `timeoutMs`). */
export function runEdgeCase(host: string, port: number, c: EdgeCase, timeoutMs = 8000): Promise<EdgeOutcome> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const got: Buffer[] = [];
    let received = 0;
    let waiter: (() => void) | undefined;
    socket.on('data', (d: Buffer) => {
      got.push(d);
      received += d.length;
      waiter?.();
    });
    socket.on('error', () => undefined); // a reset still ends in 'close'
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${c.name}: the server did not close within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('close', () => {
      clearTimeout(timer);
      waiter?.();
      resolve({ reply: received === 0 ? '' : normalize(Buffer.concat(got)) });
    });
    socket.once('connect', () => {
      void (async () => {
        for (const step of c.steps) {
          const before = received;
          socket.write(step.send);
          if (step.awaitReply) await new Promise<void>((r) => (waiter = () => (received > before || socket.destroyed) && r()));
        }
        if (c.end) socket.end();
      })();
    });
  });
}
