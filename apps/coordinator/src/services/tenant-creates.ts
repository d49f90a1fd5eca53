/**
 * Tenant creates written in groups. The creates that arrive while the previous group is being
 * written go together into one grouped transaction, each kind of row in one multi-row write
 * (tenants, owners, databases, stanzas, events, idempotency answers, the status/route sync): on a
 * store across the network a group of creates costs about the round trips of one, where one at a
 * time each create cost some fifteen.
 *
 * Each create keeps its own outcome, as if it ran alone in the order it arrived: a taken id (stored,
 * or created earlier in its group) is ALREADY_EXISTS, an idempotency key answered before (or earlier
 * in the group) is answered again, the key reused for another request is refused; these are decided
 * from what the group read, so they never touch the others. A write that fails for the whole group
 * anyway (something the reads did not foresee) is retried create by create, each in a savepoint of
 * its own, so only the create that broke it fails.
 */
import { newInitSql, type InitScript, type InitSqlRecord, type TenantSpec } from '@pgs/tenancy';
import { AlreadyExistsError, StoreUnavailableError } from '../domain/errors.js';
import type { HealthCache } from '../live/health-cache.js';
import type { NewEvent, TenantRecord } from '../domain/model.js';
import type { IdempotencyRecord, Store, StoreTx } from '../store/contract.js';
import { stanzaName } from './backup-records.js';
import { answersAgain, requestHash } from './idempotency.js';
import { syncTenants } from './tenant-sync.js';

/** The idempotency scope of creates (kept from the one-at-a-time path, so stored answers stay valid). */
const SCOPE = 'CreateTenant';

/** Creates per group: bounds one transaction's statements' sizes and how long it keeps the others waiting. */
const MAX_GROUP = 256;

/** A create validated and hashed, ready for the store. */
export interface PreparedCreate {
  id: string;
  /** Validated, with its version resolved. */
  spec: TenantSpec;
  scripts: readonly InitScript[];
  holdInitSql: boolean;
  /** The owner's SCRAM verifier. */
  verifier: string;
  /** The owner's password was generated (the request gave none). */
  generated: boolean;
  idempotencyKey: string;
  principal: string;
}

/** What a create answers (also what its idempotency key keeps). */
export interface CreateAnswer {
  tenant: TenantRecord;
  generated: boolean;
}

/** A create's outcome. */
export interface CreateOutcome {
  answer: CreateAnswer;
  /** Answered from an earlier create with the same idempotency key. */
  replayed: boolean;
  /** Its init scripts as written ('stored': a replay, whose run may have moved on since: read them). */
  initSql: InitSqlRecord | undefined | 'stored';
}

type Settled = { ok: true; outcome: CreateOutcome } | { ok: false; error: unknown };

/** What a group's write needs besides the creates. */
export interface CreateDeps {
  now: number;
  health: HealthCache;
  /** The fleet has a backup repository: each tenant gets its stanza row. */
  backups: boolean;
}

/** What one create of a group gets: decided from the group's reads before anything is written. */
type Verdict =
  | { kind: 'create'; hash: string }
  | { kind: 'replay'; stored: IdempotencyRecord }
  /** The key was answered earlier in this group, by the create at `index`. */
  | { kind: 'replay-of'; index: number }
  | { kind: 'refused'; error: unknown };

/** The request an idempotency key stands for (secrets left out), as the one-at-a-time path hashed it. */
function requestOf(c: PreparedCreate): Record<string, unknown> {
  return { id: c.id, spec: c.spec, scripts: c.scripts, hold: c.holdInitSql };
}

/** Each create's verdict, in arrival order, as if each had run alone after the ones before it. */
function decide(items: readonly PreparedCreate[], stored: ReadonlyMap<string, IdempotencyRecord>, taken: Set<string>, now: number): Verdict[] {
  const answeredBy = new Map<string, { index: number; hash: string }>();
  return items.map((c, index): Verdict => {
    try {
      const hash = requestHash(requestOf(c));
      const key = c.idempotencyKey;
      if (key !== '') {
        const earlier = answeredBy.get(key);
        const where = { scope: SCOPE, key };
        if (earlier && answersAgain({ requestHash: earlier.hash, response: '', createdAt: now }, hash, now, where))
          return { kind: 'replay-of', index: earlier.index };
        const seen = stored.get(key);
        if (answersAgain(seen, hash, now, where)) return { kind: 'replay', stored: seen };
      }
      if (taken.has(c.id)) throw new AlreadyExistsError('TENANT_EXISTS', `tenant "${c.id}" already exists`);
      taken.add(c.id);
      if (key !== '') answeredBy.set(key, { index, hash });
      return { kind: 'create', hash };
    } catch (error) {
      return { kind: 'refused', error };
    }
  });
}

function newTenant(c: PreparedCreate, now: number): TenantRecord {
  return {
    id: c.id,
    spec: c.spec,
    revision: 1,
    instanceRevision: 1,
    status: 'NEW',
    statusReason: 'waiting to be placed on a host',
    deleting: false,
    createdAt: now,
    updatedAt: now,
  };
}

function createdEvent(c: PreparedCreate, now: number): NewEvent {
  return {
    time: now,
    principal: c.principal,
    action: 'tenant.create',
    tenantId: c.id,
    message: `tenant created (${c.spec.nodes} node(s), external access ${c.spec.externalAccess ? 'on' : 'off'})`,
    details: { password: c.generated ? 'generated' : 'given', initScripts: String(c.scripts.length) },
  };
}

/**
 * Writes a group of creates inside `tx`: reads what decides them (taken ids, stored answers) once,
 * then writes each kind of row for all the accepted ones at once. Returns each create's outcome in
 * the order given; throws only when a write fails (then nothing of the group may commit).
 */
export async function writeCreates(tx: StoreTx, items: readonly PreparedCreate[], deps: CreateDeps): Promise<Settled[]> {
  const { now } = deps;
  const keys = [...new Set(items.map((c) => c.idempotencyKey).filter((k) => k !== ''))];
  const stored = keys.length > 0 ? await tx.idempotency.getMany(SCOPE, keys) : new Map<string, IdempotencyRecord>();
  const taken = new Set((await tx.tenants.getMany(items.map((c) => c.id))).map((t) => t.id));
  const verdicts = decide(items, stored, taken, now);
  const creates = items.filter((_, i) => verdicts[i]?.kind === 'create');
  const tenants = creates.map((c) => newTenant(c, now));
  await tx.tenants.insertMany(tenants);
  // A tenant that did not exist has no stanza row (they go with their tenant): each gets its own.
  if (deps.backups)
    await tx.backups.putStanzaMany(tenants.map((t) => ({ tenantId: t.id, stanza: stanzaName(t), archivedThrough: 0, lastArchivedWal: '', createdAt: now })));
  // Seed 000: `psql -U acme -d acme` — the owner role and its database carry the tenant's name.
  await tx.users.insertMany(
    creates.map((c) => ({
      tenantId: c.id,
      name: c.id,
      description: 'tenant owner',
      scramVerifier: c.verifier,
      owner: true,
      status: 'NEW' as const,
      statusReason: '',
      revision: 1,
      createdAt: now,
    })),
  );
  await tx.databases.insertMany(
    creates.map((c) => ({
      tenantId: c.id,
      name: c.id,
      owner: c.id,
      description: 'tenant default database',
      status: 'NEW' as const,
      statusReason: '',
      revision: 1,
      createdAt: now,
    })),
  );
  const initSql = new Map<string, InitSqlRecord>();
  for (const c of creates) {
    if (c.scripts.length === 0) continue;
    const record = newInitSql(c.id, [...c.scripts], c.holdInitSql, 1, now);
    initSql.set(c.id, record);
    // Rare (a create with init scripts): one write each.
    await tx.initSql.put(record);
  }
  await tx.events.appendMany(creates.map((c) => createdEvent(c, now)));
  // The status events a sync may write name who caused them: one sync per principal (usually one).
  const synced = new Map<string, TenantRecord>();
  for (const principal of new Set(creates.map((c) => c.principal))) {
    const ids = creates.filter((c) => c.principal === principal).map((c) => c.id);
    for (const [id, t] of await syncTenants(tx, ids, { now, health: deps.health, principal })) synced.set(id, t);
  }
  for (const t of tenants) tx.record({ kind: 'place', tenantId: t.id });
  const answers = new Map<number, CreateAnswer>();
  const keep: Array<{ key: string; record: IdempotencyRecord }> = [];
  verdicts.forEach((v, i) => {
    const c = items[i];
    if (v.kind !== 'create' || !c) return;
    const answer = { tenant: synced.get(c.id) ?? newTenant(c, now), generated: c.generated };
    answers.set(i, answer);
    if (c.idempotencyKey !== '') keep.push({ key: c.idempotencyKey, record: { requestHash: v.hash, response: JSON.stringify(answer), createdAt: now } });
  });
  await tx.idempotency.putMany(SCOPE, keep);
  return verdicts.map((v, i): Settled => {
    const id = items[i]?.id ?? '';
    switch (v.kind) {
      case 'create':
        return { ok: true, outcome: { answer: answers.get(i) as CreateAnswer, replayed: false, initSql: initSql.get(id) } };
      case 'replay':
        return { ok: true, outcome: { answer: JSON.parse(v.stored.response) as CreateAnswer, replayed: true, initSql: 'stored' } };
      case 'replay-of':
        // As a later group would read it back: the stored answer, parsed.
        return {
          ok: true,
          outcome: { answer: JSON.parse(JSON.stringify(answers.get(v.index))) as CreateAnswer, replayed: true, initSql: initSql.get(id) },
        };
      case 'refused':
        return { ok: false, error: v.error };
    }
  });
}

/**
 * The queue of creates: the ones that arrive while a group is being written form the next group
 * (at most MAX_GROUP), so the groups grow with the load and a lone create is written at once.
 */
export class TenantCreates {
  private waiting: Array<{ create: PreparedCreate; resolve: (o: CreateOutcome) => void; reject: (e: unknown) => void }> = [];
  private draining = false;

  constructor(
    private readonly store: Store,
    private readonly deps: () => CreateDeps,
  ) {}

  /** Queues a create; resolves with its outcome once its group committed, or rejects with its own error. */
  submit(create: PreparedCreate): Promise<CreateOutcome> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ create, resolve, reject });
      if (this.draining) return;
      this.draining = true;
      // The creates that arrive in this turn of the event loop join the first group.
      setImmediate(() => void this.drain());
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.waiting.length > 0) {
        const group = this.waiting.splice(0, MAX_GROUP);
        let results: Settled[];
        try {
          results = await this.write(group.map((w) => w.create));
        } catch (error) {
          results = group.map(() => ({ ok: false, error }));
        }
        group.forEach((w, i) => {
          const r = results[i];
          if (r?.ok) w.resolve(r.outcome);
          else w.reject(r ? r.error : new Error('a create of a group got no outcome'));
        });
      }
    } finally {
      this.draining = false;
    }
  }

  private async write(creates: readonly PreparedCreate[]): Promise<Settled[]> {
    const deps = this.deps();
    try {
      // Grouped: it shares a durable commit with the other grouped transactions of its turn.
      return await this.store.transaction((tx) => writeCreates(tx, creates, deps), { grouped: true });
    } catch (error) {
      // The connection or the lease is gone: every create of the group fails alike.
      if (creates.length === 1 || error instanceof StoreUnavailableError) return creates.map(() => ({ ok: false, error }));
      // One create broke the group's shared write: each goes again alone, so only that one fails.
      return await Promise.all(creates.map(async (c) => (await this.write([c]))[0] as Settled));
    }
  }
}
