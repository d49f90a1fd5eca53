/**
 * A minimal PostgreSQL client that asks for a chosen protocol version (3.2 by default, PostgreSQL
 * 18's, with its longer cancel keys) and keeps the BackendKeyData it was given, so a test can
 * send the CancelRequest itself, to any router. Plain TCP, SCRAM-SHA-256, simple query protocol.
 * Docs: PostgreSQL "Frontend/Backend Protocol", sections "Message Flow", "SASL Authentication",
 * "Canceling Requests in Progress", "Message Formats".
 */
import crypto from 'node:crypto';
import net from 'node:net';
import type { Endpoint, Login } from './pg-clients.js';

/** What the server said at start. */
export interface ProtocolSession {
  /** The protocol version the session runs: the asked one, or the server's NegotiateProtocolVersion. */
  readonly protocol: { major: number; minor: number };
  readonly processId: number;
  readonly secretKey: Buffer;
  readonly params: ReadonlyMap<string, string>;
  /** Runs one simple query; resolves to the first column of every row, or rejects with the SQLSTATE in `code`. */
  query(sql: string): Promise<string[]>;
  close(): void;
}

const CANCEL_REQUEST_CODE = 80877102;

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function cstr(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
}

function errorFields(body: Buffer): { code: string; message: string } {
  const fields = new Map<string, string>();
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const end = body.indexOf(0, at + 1);
    fields.set(String.fromCharCode(body[at] as number), body.subarray(at + 1, end).toString('utf8'));
    at = end + 1;
  }
  return { code: fields.get('C') ?? '', message: fields.get('M') ?? '' };
}

/** SCRAM-SHA-256 client (RFC 5802/7677) without channel binding. */
class Scram {
  readonly nonce = crypto.randomBytes(18).toString('base64');
  readonly firstBare = `n=,r=${this.nonce}`;
  private serverSignature: Buffer = Buffer.alloc(0);

  constructor(private readonly password: string) {}

  final(serverFirst: string): string {
    const attrs = new Map(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)]));
    const nonce = attrs.get('r') ?? '';
    if (!nonce.startsWith(this.nonce)) throw new Error('SCRAM: the server nonce does not extend ours');
    const salted = crypto.pbkdf2Sync(this.password, Buffer.from(attrs.get('s') ?? '', 'base64'), Number(attrs.get('i')), 32, 'sha256');
    const hmac = (key: Buffer, text: string): Buffer => crypto.createHmac('sha256', key).update(text).digest();
    const clientKey = hmac(salted, 'Client Key');
    const withoutProof = `c=biws,r=${nonce}`;
    const auth = `${this.firstBare},${serverFirst},${withoutProof}`;
    const signature = hmac(crypto.createHash('sha256').update(clientKey).digest(), auth);
    const proof = Buffer.from(clientKey.map((b, i) => b ^ (signature[i] as number)));
    this.serverSignature = hmac(hmac(salted, 'Server Key'), auth);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  check(serverFinal: string): void {
    if (serverFinal !== `v=${this.serverSignature.toString('base64')}`) throw new Error('SCRAM: wrong server signature');
  }
}

/** Connects and logs in asking for protocol 3.`minor`. */
export function connectProtocol(at: Endpoint, login: Login, minor = 2, timeoutMs = 10_000): Promise<ProtocolSession> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: at.host, port: at.port });
    const timer = setTimeout(() => fail(new Error(`no ReadyForQuery within ${timeoutMs} ms`)), timeoutMs);
    const scram = new Scram(login.password);
    const params = new Map<string, string>();
    let protocol = { major: 3, minor };
    let key: { processId: number; secretKey: Buffer } | undefined;
    let buffered = Buffer.alloc(0);
    let onMessage: (type: string, body: Buffer) => void;
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.on('error', fail);
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 5) {
        const len = buffered.readUInt32BE(1);
        if (buffered.length < 1 + len) break;
        const type = String.fromCharCode(buffered[0] as number);
        const body = Buffer.from(buffered.subarray(5, 1 + len));
        buffered = buffered.subarray(1 + len);
        onMessage(type, body);
      }
    });
    const session = (k: { processId: number; secretKey: Buffer }): ProtocolSession => ({
      protocol,
      processId: k.processId,
      secretKey: k.secretKey,
      params,
      query: (sql) =>
        new Promise<string[]>((ok, no) => {
          const rows: string[] = [];
          let error: { code: string; message: string } | undefined;
          onMessage = (type, body) => {
            if (type === 'D') {
              const n = body.readInt32BE(2);
              rows.push(n < 0 ? '' : body.subarray(6, 6 + n).toString('utf8'));
            } else if (type === 'E') error = errorFields(body);
            else if (type === 'Z') {
              if (error) no(Object.assign(new Error(error.message), { code: error.code }));
              else ok(rows);
            }
          };
          socket.write(message('Q', cstr(sql)));
        }),
      close: () => {
        socket.end(message('X', Buffer.alloc(0)));
      },
    });
    onMessage = (type, body) => {
      try {
        if (type === 'R') {
          const code = body.readUInt32BE(0);
          if (code === 10) {
            const first = Buffer.from(`n,,${scram.firstBare}`);
            const len = Buffer.alloc(4);
            len.writeInt32BE(first.length);
            socket.write(message('p', Buffer.concat([cstr('SCRAM-SHA-256'), len, first])));
          } else if (code === 11) socket.write(message('p', Buffer.from(scram.final(body.subarray(4).toString('utf8')))));
          else if (code === 12) scram.check(body.subarray(4).toString('utf8'));
          else if (code !== 0) throw new Error(`authentication method ${code} is not supported by this client`);
        } else if (type === 'v') protocol = { major: 3, minor: body.readUInt32BE(0) & 0xffff };
        else if (type === 'K') key = { processId: body.readUInt32BE(0), secretKey: Buffer.from(body.subarray(4)) };
        else if (type === 'S') {
          const nul = body.indexOf(0);
          params.set(body.subarray(0, nul).toString('utf8'), body.subarray(nul + 1, body.length - 1).toString('utf8'));
        } else if (type === 'E') {
          const e = errorFields(body);
          fail(Object.assign(new Error(e.message), { code: e.code }));
        } else if (type === 'Z') {
          clearTimeout(timer);
          if (!key) fail(new Error('no BackendKeyData before ReadyForQuery'));
          else resolve(session(key));
        }
      } catch (err) {
        fail(err as Error);
      }
    };
    socket.once('connect', () => {
      const body = Buffer.concat([cstr('user'), cstr(login.user), cstr('database'), cstr(login.database), Buffer.from([0])]);
      const head = Buffer.alloc(8);
      head.writeUInt32BE(8 + body.length, 0);
      head.writeUInt32BE((3 << 16) | minor, 4);
      socket.write(Buffer.concat([head, body]));
    });
  });
}

/** Sends a CancelRequest with the session's key (whatever its length) to `at`, on a new connection. */
export function sendCancel(at: Endpoint, processId: number, secretKey: Buffer): Promise<void> {
  const packet = Buffer.alloc(12 + secretKey.length);
  packet.writeUInt32BE(packet.length, 0);
  packet.writeUInt32BE(CANCEL_REQUEST_CODE, 4);
  packet.writeUInt32BE(processId >>> 0, 8);
  secretKey.copy(packet, 12);
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: at.host, port: at.port }, () => s.write(packet));
    s.on('data', () => undefined);
    s.once('error', reject);
    s.once('close', () => resolve());
  });
}
