// Named prepared statements in pool mode transaction (README "Prepared statements"): a client's
// statement names map to a router-wide name derived from the query text and parameter types, so
// any server connection can hold the statement under one name and clients that prepare the same
// text share it. Pure bookkeeping: no sockets.
import { createHash } from 'node:crypto';

/** What a client prepared under one of its names. */
export interface StatementDef {
  /** The name the statement has on server connections. */
  readonly serverName: string;
  readonly query: string;
  /** Parse's raw parameter-type list (Int16 count, Int32 OIDs). */
  readonly paramTypes: Buffer;
}

/** The server-side name of a statement: `pgs_` and 24 hex digits of SHA-256 over text and types. */
export function serverStatementName(query: string, paramTypes: Buffer): string {
  return `pgs_${createHash('sha256').update(query).update('\0').update(paramTypes).digest('hex').slice(0, 24)}`;
}

/** One client's statements by the client's names. */
export class ClientStatements {
  /** Made at the first named statement: most clients of a pool never prepare one, and many stay idle for long. */
  #byName: Map<string, StatementDef> | undefined;

  /** Records (or replaces) `name`; returns its definition. */
  prepare(name: string, query: string, paramTypes: Buffer): StatementDef {
    const def = { serverName: serverStatementName(query, paramTypes), query, paramTypes };
    (this.#byName ??= new Map()).set(name, def);
    return def;
  }

  get(name: string): StatementDef | undefined {
    return this.#byName?.get(name);
  }

  forget(name: string): void {
    this.#byName?.delete(name);
  }

  get size(): number {
    return this.#byName?.size ?? 0;
  }
}

/** The statements one server connection holds, least recently used first, at most `capacity`. */
export class ServerStatements {
  readonly #names = new Set<string>();
  readonly capacity: number;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
  }

  has(name: string): boolean {
    return this.#names.has(name);
  }

  /** Marks `name` used now. */
  touch(name: string): void {
    if (this.#names.delete(name)) this.#names.add(name);
  }

  /** Adds `name` as the most recently used; returns the names evicted to stay within capacity (to Close on the server). */
  add(name: string): string[] {
    this.#names.delete(name);
    this.#names.add(name);
    const evicted: string[] = [];
    for (const old of this.#names) {
      if (this.#names.size <= this.capacity) break;
      this.#names.delete(old);
      evicted.push(old);
    }
    return evicted;
  }

  delete(name: string): void {
    this.#names.delete(name);
  }

  /** The server dropped them all (DISCARD ALL, DEALLOCATE ALL). */
  clear(): void {
    this.#names.clear();
  }

  get size(): number {
    return this.#names.size;
  }
}
