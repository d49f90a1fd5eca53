/**
 * The leader lease's SQL: one row, read under lock with the store's clock, decided by the pure
 * rule in @pgs/tenancy, written back in the same transaction. And the fence every write of the
 * leader ends with: the row must still name this holder and epoch with a live lease, read with
 * FOR SHARE as the transaction's last statement, sent with its COMMIT, so a coordinator taking the lease over (an UPDATE
 * of that row) waits for a write that passed the fence to commit, and a write that comes after the
 * takeover fails the fence and rolls back.
 */
import { decideLease, type LeaseCandidate, type LeaseDecision, type LeaseRow, type LeaseTimings } from '@pgs/tenancy';
import type pg from 'pg';
import { StoreUnavailableError } from '../../domain/errors.js';

/** The store's clock in epoch ms: the one clock every coordinator judges the lease by. */
export const STORE_NOW_MS = `(extract(epoch from clock_timestamp()) * 1000)::bigint`;

/** The lease table; its single row exists from the start so every taker locks the same row. */
export const LEASE_SCHEMA_SQL = `
  CREATE TABLE coordinator_lease (
    id integer PRIMARY KEY CHECK (id = 1),
    holder text NOT NULL,
    address text NOT NULL,
    epoch bigint NOT NULL CHECK (epoch >= 0),
    expires_at bigint NOT NULL
  );
  INSERT INTO coordinator_lease (id, holder, address, epoch, expires_at) VALUES (1, '', '', 0, 0);
`;

/**
 * A write by a coordinator that does not hold the leader lease (any more): nothing of it was
 * committed. A kind of unavailability to callers of the store; the API names the leader instead.
 */
export class LeaseLostError extends StoreUnavailableError {
  override readonly code: string = 'NOT_LEADER';
}

interface LeaseRowSql {
  holder: string;
  address: string;
  epoch: string;
  expires_at: string;
  now: string;
}

function toRow(r: LeaseRowSql): LeaseRow {
  return { holder: r.holder, address: r.address, epoch: Number(r.epoch), expiresAt: Number(r.expires_at) };
}

/** Reads the lease as it stands (no lock), with the store's now. */
export async function readLease(client: pg.ClientBase): Promise<{ row: LeaseRow; now: number }> {
  const r = await client.query<LeaseRowSql>(`SELECT holder, address, epoch, expires_at, ${STORE_NOW_MS} AS now FROM coordinator_lease WHERE id = 1`);
  const first = r.rows[0];
  if (!first) throw new Error('the coordinator_lease row is missing; the store was not migrated');
  return { row: toRow(first), now: Number(first.now) };
}

/**
 * A leader's renewal in one statement (one round trip, no transaction left open between
 * statements): decideLease's renew case, `live && mine` as the condition and the renewed row as
 * the update. The store's clock is read on the row itself, so after a wait for its lock (a write's
 * fence holds it until that write commits) the lease is judged live or not as of holding it, as
 * the locked read of the full step does. Undefined when the lease is not this holder's live one any
 * more: then the full step decides what happened.
 *
 * Why one statement: a loaded coordinator reads each answer only on a later turn of its event loop,
 * so every round trip of a renewal waits a turn. A renewal of four statements (BEGIN, SELECT FOR
 * UPDATE, UPDATE, COMMIT) took 1.2-1.4 s on a loaded machine where one turn took up to 1 s: with the
 * default 2 s lease, acted on for 1.75 s from the renewal's start and renewed every 0.5 s, the
 * leader lost its term. A turn longer than 2 s between the four would also end the session by its
 * idle-in-transaction timeout.
 */
export async function renewLease(client: pg.ClientBase, me: LeaseCandidate, t: LeaseTimings): Promise<LeaseDecision | undefined> {
  const r = await client.query<LeaseRowSql>(
    `UPDATE coordinator_lease SET address = $2, expires_at = ${STORE_NOW_MS} + $4
      WHERE id = 1 AND holder = $1 AND epoch = $3 AND $3 > 0 AND ${STORE_NOW_MS} < expires_at
      RETURNING holder, address, epoch, expires_at, ${STORE_NOW_MS} AS now`,
    [me.holder, me.address, me.heldEpoch, t.ttlMs],
  );
  const first = r.rows[0];
  return first ? { kind: 'renew', next: toRow(first) } : undefined;
}

/**
 * One acquire-or-renew attempt; the decision says what happened. A leader renews in one statement;
 * anything else (a first acquisition, a follower's look, a lease that ran out or changed hands)
 * reads the row under lock and applies decideLease in one transaction.
 */
export async function leaseStep(client: pg.ClientBase, me: LeaseCandidate, t: LeaseTimings): Promise<LeaseDecision> {
  if (me.heldEpoch > 0) {
    const renewed = await renewLease(client, me, t);
    if (renewed) return renewed;
  }
  await client.query('BEGIN');
  try {
    const r = await client.query<LeaseRowSql>(
      `SELECT holder, address, epoch, expires_at, ${STORE_NOW_MS} AS now FROM coordinator_lease WHERE id = 1 FOR UPDATE`,
    );
    const first = r.rows[0];
    if (!first) throw new Error('the coordinator_lease row is missing; the store was not migrated');
    const decision = decideLease(toRow(first), me, Number(first.now), t);
    if (decision.kind !== 'follow') {
      const n = decision.next;
      await client.query('UPDATE coordinator_lease SET holder = $1, address = $2, epoch = $3, expires_at = $4 WHERE id = 1', [
        n.holder,
        n.address,
        n.epoch,
        n.expiresAt,
      ]);
    }
    await client.query('COMMIT');
    return decision;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** Ends a held lease at once (a clean shutdown), so a follower need not wait for it to run out. */
export async function releaseLease(client: pg.ClientBase, holder: string, epoch: number): Promise<boolean> {
  const r = await client.query(`UPDATE coordinator_lease SET expires_at = ${STORE_NOW_MS} WHERE id = 1 AND holder = $1 AND epoch = $2`, [holder, epoch]);
  return r.rowCount === 1;
}

/** The SQLSTATE the fence raises when the lease is not this holder's live one (ours; no PostgreSQL state uses it). */
const LEASE_LOST_STATE = 'PGSLL';

/**
 * The fence and the commit of a write transaction, sent together: the lease row must still name
 * this holder and epoch with a live lease, read FOR SHARE, and COMMIT follows on the server with no
 * round trip in between. Throws LeaseLostError (nothing committed; the caller rolls back) unless
 * the fence passed.
 *
 * Why together: the share lock is held until the transaction ends, and the leader's renewal (an
 * UPDATE of that row) waits for it. Sent as two statements, the COMMIT went out only on a later
 * turn of the coordinator's event loop, so a busy turn held the lock — and with it the lease's
 * renewal — for as long as the turn lasted, and the leader lost its lease to its own write.
 */
export async function fenceAndCommit(client: pg.ClientBase, holder: string, epoch: number): Promise<void> {
  if (!Number.isSafeInteger(epoch) || holder.includes('$')) throw new Error(`not a lease holder and epoch: ${holder} ${epoch}`);
  try {
    await client.query(
      `DO $fence$ BEGIN
         PERFORM 1 FROM coordinator_lease WHERE id = 1 AND holder = ${client.escapeLiteral(holder)} AND epoch = ${epoch} AND expires_at > ${STORE_NOW_MS} FOR SHARE;
         IF NOT FOUND THEN RAISE EXCEPTION USING ERRCODE = '${LEASE_LOST_STATE}', MESSAGE = 'the leader lease is not held'; END IF;
       END $fence$; COMMIT`,
    );
  } catch (err) {
    if ((err as { code?: unknown } | null)?.code === LEASE_LOST_STATE) {
      throw new LeaseLostError(`this coordinator no longer holds the leader lease (epoch ${epoch}); the write was not committed`);
    }
    throw err;
  }
}
