/**
 * The hosts table's committed rows, kept in memory by the SQLite store: the reconciler reads every
 * host on each tick (liveness, down hosts, lost replicas) and placement on each slice, 1,000 rows
 * each time on a fleet of 1,000 hosts, which was a tenth of a busy coordinator's CPU.
 *
 * Written through: the open transaction's host writes are noted, and the rows they touched are read
 * again once it committed. Until then (and after a rollback, until the next transaction begins)
 * reads that could see those writes go to the table, so a transaction sees its own writes and a
 * rolled-back write never reaches memory. This holds only because a SQLite store has one writer,
 * this process; coordinators sharing a PostgreSQL store read it instead.
 */
import type { HostRecord } from '../domain/model.js';

/**
 * A kept row, frozen with what it holds, so every reader may share it: a change is a new record
 * (`{ ...host, state }`) written through the store. Copying each row for each read instead was
 * 6% of a 10,000-host coordinator's CPU, and its garbage much of the collector's.
 */
function frozen(h: HostRecord): HostRecord {
  Object.freeze(h.capacity);
  Object.freeze(h.labels);
  return Object.freeze(h);
}

/** The same order as the table's `ORDER BY id` (byte order; host ids are ASCII). */
function byId(a: HostRecord, b: HostRecord): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Committed host rows by id, in id order; filled by the first read that may fill it. */
export class CommittedHosts {
  private rows: Map<string, HostRecord> | undefined;
  /** Hosts written since the last transaction began (their committed rows may differ from the table's). */
  private readonly written = new Set<string>();

  /** Every host in id order; `read` reads the table. */
  list(read: () => HostRecord[]): HostRecord[] {
    if (this.written.size > 0) return read();
    if (this.rows === undefined) this.rows = new Map(read().map((h) => [h.id, frozen(h)]));
    return [...this.rows.values()];
  }

  /** One host; `read` reads the table. */
  get(id: string, read: () => HostRecord | undefined): HostRecord | undefined {
    if (this.rows === undefined || this.written.has(id)) return read();
    return this.rows.get(id);
  }

  /** The hosts of `ids` in id order; `read` reads the table. */
  getMany(ids: readonly string[], read: () => HostRecord[]): HostRecord[] {
    const rows = this.rows;
    if (rows === undefined || ids.some((id) => this.written.has(id))) return read();
    return [...new Set(ids)]
      .map((id) => rows.get(id))
      .filter((h): h is HostRecord => h !== undefined)
      .sort(byId);
  }

  /** The open transaction wrote the host's row. */
  wrote(id: string): void {
    this.written.add(id);
  }

  /** A transaction begins: what an earlier one wrote was committed (and read again) or rolled back. */
  began(): void {
    this.written.clear();
  }

  /** The open transaction committed: the rows it wrote are read again (`reread`: the table's rows of those ids). */
  committed(reread: (ids: string[]) => HostRecord[]): void {
    if (this.written.size === 0) return;
    const rows = this.rows;
    const ids = [...this.written];
    this.written.clear();
    if (rows === undefined) return;
    const fresh = new Map(reread(ids).map((h) => [h.id, h]));
    let added = false;
    for (const id of ids) {
      const h = fresh.get(id);
      if (h === undefined) rows.delete(id);
      else {
        added ||= !rows.has(id);
        rows.set(id, frozen(h));
      }
    }
    if (added) this.rows = new Map([...rows.values()].sort(byId).map((h) => [h.id, h]));
  }
}
