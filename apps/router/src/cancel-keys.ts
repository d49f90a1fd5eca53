// Router-issued cancel keys (README.md "Cancel design"). A client never sees a backend's real
// BackendKeyData: it gets a key that names the issuing router and a slot, authenticated with an
// HMAC under the fleet's cancel secret, so any router can tell where a CancelRequest belongs
// (and drop forgeries) without asking anyone.
//
//   processId (31 bits used):  0 | router tag (11 bits) | slot (20 bits)
//   slot, with --workers N > 1:     worker (ceil(log2 N) bits) | slot within the worker
//   secret, protocol 3.0 (4 bytes):   nonce (2) | HMAC-SHA256(secret, processId | nonce)[0..2)
//   secret, protocol 3.2 (32 bytes):  nonce (16) | HMAC-SHA256(secret, processId | nonce)[0..16)
//
// The issuing router keeps the whole key and compares it exactly before it cancels anything, so a
// guess must hit all 32 bits (3.0) or 256 bits (3.2), as against PostgreSQL itself.
import { createHash, createHmac, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';

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
  /** Transaction pooling between transactions: the client holds no server, nothing to cancel. */
  idle?: boolean;
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

const MAC_LABEL = Buffer.from('pgs-cancel-v1');

/**
 * HMAC-SHA256(secret, label | processId | nonce), truncated. The secret is a KeyObject made once
 * (a raw Buffer would be imported into OpenSSL on every call) and the input is one buffer.
 */
function macOf(secret: KeyObject, processId: number, nonce: Buffer, length: number): Buffer {
  const input = Buffer.allocUnsafe(MAC_LABEL.length + 4 + nonce.length);
  MAC_LABEL.copy(input, 0);
  input.writeUInt32BE(processId >>> 0, MAC_LABEL.length);
  nonce.copy(input, MAC_LABEL.length + 4);
  return createHmac('sha256', secret).update(input).digest().subarray(0, length);
}

/**
 * Random bytes for key nonces, drawn from a pooled buffer: one randomBytes call per 4 KiB instead
 * of one per connection (a synchronous call into OpenSSL each time).
 */
class RandomPool {
  #pool = Buffer.alloc(0);
  #at = 0;

  take(n: number): Buffer {
    if (this.#at + n > this.#pool.length) {
      this.#pool = randomBytes(4096);
      this.#at = 0;
    }
    // A copy: the issued key outlives the pool buffer's next refill.
    const out = Buffer.from(this.#pool.subarray(this.#at, this.#at + n));
    this.#at += n;
    return out;
  }
}

/** The worker bits of a router with `workers` worker processes (0 for a single process). */
export function workerBits(workers: number): number {
  return workers <= 1 ? 0 : Math.ceil(Math.log2(workers));
}

/** Which worker of this router issued a key (0 for a single process). */
export function workerOfProcessId(processId: number, workers: number): number {
  const bits = workerBits(workers);
  return bits === 0 ? 0 : (processId & (SLOTS - 1)) >>> (SLOT_BITS - bits);
}

/** Issues, remembers and checks this router's cancel keys. */
export class CancelKeys {
  readonly tag: number;
  /** This process's worker index (0 for a single process). */
  readonly worker: number;
  /** Worker processes of the router (1 for a single process). */
  readonly workers: number;
  readonly #secret: KeyObject;
  readonly #slots = new Map<number, { key: Buffer; target: RealCancelTarget }>();
  /** Slots of this worker: the low bits of a slot; the high bits name the worker. */
  readonly #localSlots: number;
  readonly #random = new RandomPool();
  #next: number;

  /** `worker`: index and count of the router's worker processes, when it runs several. */
  constructor(options: { routerId: string; secret: Buffer; worker?: { index: number; count: number } }) {
    this.tag = routerTag(options.routerId);
    this.#secret = createSecretKey(options.secret);
    this.worker = options.worker?.index ?? 0;
    this.workers = options.worker?.count ?? 1;
    const bits = workerBits(this.workers);
    if (this.worker < 0 || this.worker >= 1 << bits || (bits === 0 && this.worker !== 0))
      throw new RangeError(`worker index ${this.worker} out of range for ${this.workers} workers`);
    this.#localSlots = SLOTS >>> bits;
    this.#next = Math.floor(Math.random() * this.#localSlots);
  }

  /** Whether a key names this router (its tag) but another of its worker processes. */
  ownedBySibling(processId: number): boolean {
    if (this.workers <= 1 || tagOfProcessId(processId) !== this.tag || processId >>> (SLOT_BITS + TAG_BITS) !== 0) return false;
    return workerOfProcessId(processId, this.workers) !== this.worker;
  }

  /** Keys currently issued (open connections). */
  get size(): number {
    return this.#slots.size;
  }

  /** Issues a key standing for `target`; its length follows the backend's (4 bytes, or 32 for longer keys). */
  issue(target: RealCancelTarget): IssuedKey {
    if (this.#slots.size >= this.#localSlots) throw new RangeError('no free cancel key slot at this router');
    let local = this.#next;
    const base = this.worker * this.#localSlots;
    while (this.#slots.has(base + local)) local = (local + 1) % this.#localSlots;
    this.#next = (local + 1) % this.#localSlots;
    const slot = base + local;
    const processId = ((this.tag << SLOT_BITS) | slot) >>> 0;
    const long = target.secretKey.length > 4;
    const half = long ? LONG_KEY_LENGTH / 2 : 2;
    const nonce = this.#random.take(half);
    // Its own memory: a key lives as long as its connection, and a slice of Node's shared 8 KiB
    // pool (where Buffer.concat puts small results) would keep that whole slab alive as long.
    const secretKey = Buffer.allocUnsafeSlow(half * 2);
    nonce.copy(secretKey, 0);
    macOf(this.#secret, processId, nonce, half).copy(secretKey, half);
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
