// Router-issued cancel keys (README.md "Cancel design"). A client never sees a backend's real
// BackendKeyData: it gets a key that names the issuing router and a slot, authenticated with an
// HMAC under the fleet's cancel secret, so any router can tell where a CancelRequest belongs
// (and drop forgeries) without asking anyone.
//
//   processId (31 bits used):  0 | router tag (11 bits) | slot (20 bits)
//   secret, protocol 3.0 (4 bytes):   nonce (2) | HMAC-SHA256(secret, processId | nonce)[0..2)
//   secret, protocol 3.2 (32 bytes):  nonce (16) | HMAC-SHA256(secret, processId | nonce)[0..16)
//
// The issuing router keeps the whole key and compares it exactly before it cancels anything, so a
// guess must hit all 32 bits (3.0) or 256 bits (3.2), as against PostgreSQL itself.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const TAG_BITS = 11;
const SLOT_BITS = 20;
const SLOTS = 1 << SLOT_BITS;
/** Key length for protocol 3.2 and later: the same 32 bytes PostgreSQL 18 issues. */
export const LONG_KEY_LENGTH = 32;

/** The backend key a router-issued key stands for. */
export interface RealCancelTarget {
  processId: number;
  secretKey: Buffer;
  host: string;
  port: number;
  tenantId: string;
}

/** A key handed to a client. */
export interface IssuedKey {
  processId: number;
  secretKey: Buffer;
}

/** The router tag of a router id: 11 bits of its SHA-256 (collisions are resolved by trying every peer with the tag). */
export function routerTag(routerId: string): number {
  return createHash('sha256').update(routerId).digest().readUInt16BE(0) >>> (16 - TAG_BITS);
}

/** The router tag a key's process id carries. */
export function tagOfProcessId(processId: number): number {
  return (processId >>> SLOT_BITS) & ((1 << TAG_BITS) - 1);
}

function macOf(secret: Buffer, processId: number, nonce: Buffer, length: number): Buffer {
  const pid = Buffer.allocUnsafe(4);
  pid.writeUInt32BE(processId >>> 0);
  return createHmac('sha256', secret).update('pgs-cancel-v1').update(pid).update(nonce).digest().subarray(0, length);
}

/** Issues, remembers and checks this router's cancel keys. */
export class CancelKeys {
  readonly tag: number;
  readonly #secret: Buffer;
  readonly #slots = new Map<number, { key: Buffer; target: RealCancelTarget }>();
  #next = Math.floor(Math.random() * SLOTS);

  constructor(options: { routerId: string; secret: Buffer }) {
    this.tag = routerTag(options.routerId);
    this.#secret = options.secret;
  }

  /** Keys currently issued (open connections). */
  get size(): number {
    return this.#slots.size;
  }

  /** Issues a key standing for `target`; its length follows the backend's (4 bytes, or 32 for longer keys). */
  issue(target: RealCancelTarget): IssuedKey {
    if (this.#slots.size >= SLOTS) throw new RangeError('no free cancel key slot at this router');
    let slot = this.#next;
    while (this.#slots.has(slot)) slot = (slot + 1) % SLOTS;
    this.#next = (slot + 1) % SLOTS;
    const processId = ((this.tag << SLOT_BITS) | slot) >>> 0;
    const long = target.secretKey.length > 4;
    const half = long ? LONG_KEY_LENGTH / 2 : 2;
    const nonce = randomBytes(half);
    const secretKey = Buffer.concat([nonce, macOf(this.#secret, processId, nonce, half)]);
    this.#slots.set(slot, { key: secretKey, target });
    return { processId, secretKey };
  }

  /** Forgets a key (its connection closed). */
  release(key: IssuedKey): void {
    const slot = key.processId & (SLOTS - 1);
    const held = this.#slots.get(slot);
    if (held && held.key.equals(key.secretKey)) this.#slots.delete(slot);
  }

  /** The real target of a key this router issued, when the key matches exactly. */
  resolve(processId: number, secretKey: Buffer): RealCancelTarget | undefined {
    if (tagOfProcessId(processId) !== this.tag || processId >>> (SLOT_BITS + TAG_BITS) !== 0) return undefined;
    const held = this.#slots.get(processId & (SLOTS - 1));
    if (!held || held.key.length !== secretKey.length || !timingSafeEqual(held.key, secretKey)) return undefined;
    return held.target;
  }

  /**
   * Whether a key could have been issued by a router sharing this router's secret (its HMAC
   * checks out). Only meaningful when the fleet shares --cancel-secret.
   */
  authentic(processId: number, secretKey: Buffer): boolean {
    if (secretKey.length !== 4 && secretKey.length !== LONG_KEY_LENGTH) return false;
    const half = secretKey.length / 2;
    const expected = macOf(this.#secret, processId, secretKey.subarray(0, half), half);
    return timingSafeEqual(expected, secretKey.subarray(half));
  }
}
